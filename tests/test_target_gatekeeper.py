"""The gatekeeper target: the documents it renders, and its Rego run by a real Rego interpreter
(rego-cpp through regopy) with Gatekeeper's input contract against the catalog fixtures, the
scenarios in tests/data/gatekeeper/ and the image-reference edge cases of the contract."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import regopy
import yaml

from polgen.admission import request_for
from polgen.catalog import Policy, load_catalog
from polgen.checks import (
    CONTAINER_TYPES,
    ContainerFieldCheck,
    ContainerListSubsetCheck,
    ImageRepositoryCheck,
    PodFieldCheck,
    PodListFieldCheck,
    resolve,
)
from polgen.fleet import Action
from polgen.imageref import is_allowed
from polgen.output import render_target
from polgen.pipeline import Inputs, load_inputs
from polgen.plan import Binding, ClusterPlan
from polgen.resources import default_catalog_dir
from polgen.targets.gatekeeper import TARGET, constraint_kind

SCENARIOS = Path(__file__).parent / "data" / "gatekeeper" / "scenarios"
EXAMPLE_CLUSTER = "dev"
EXAMPLE_GROUP = "prd"
LABELS = {"containers": "container", "initContainers": "initContainer",
          "ephemeralContainers": "ephemeralContainer"}
Review = dict[str, Any]


# ---- the example rendering: the shipped catalog and fleet, cluster "dev" ----------------------

@cache
def inputs() -> Inputs:
    return load_inputs()


@cache
def example_plan() -> ClusterPlan:
    return next(plan for plan in inputs().plans if plan.name == EXAMPLE_CLUSTER)


@cache
def rendered() -> dict[str, dict[str, Any]]:
    return {doc.file: doc.body for doc in TARGET.render(example_plan())}


def example_binding(policy_id: str) -> Binding:
    return next(b for b in example_plan().bindings
                if b.policy.id == policy_id and b.group == EXAMPLE_GROUP)


def example_parameters(policy_id: str) -> dict[str, Any]:
    """The Constraint's spec.parameters: what Gatekeeper passes as input.parameters."""
    constraint = rendered()[f"constraint-{example_binding(policy_id).name}.yaml"]
    return dict(constraint["spec"]["parameters"])


def expansions() -> list[dict[str, Any]]:
    return [body for file, body in sorted(rendered().items())
            if file.startswith("expansiontemplate-")]


def rego_of(template: dict[str, Any]) -> str:
    [target] = template["spec"]["targets"]
    [code] = target["code"]
    assert code["engine"] == "Rego" and code["source"]["version"] == "v1"
    return str(code["source"]["rego"])


class RegoTemplates:
    """Rendered ConstraintTemplates loaded into one interpreter, evaluated as Gatekeeper does:
    `violation` with input {"review": <AdmissionRequest>, "parameters": <Constraint parameters>}."""

    def __init__(self, templates: list[dict[str, Any]]) -> None:
        self.interpreter = regopy.Interpreter()
        self.interpreter.strict_built_in_errors = True
        self.packages: dict[str, str] = {}
        for template in templates:
            text = rego_of(template)
            package = re.match(r"package (\w+)\n", text)
            assert package, text[:80]
            self.interpreter.add_module(f"{template['metadata']['name']}.rego", text)
            self.packages[template["metadata"]["annotations"]["polgen.dev/policy"]] = package[1]

    def violations(self, policy_id: str, review: Review, parameters: dict[str, Any]) -> list[str]:
        # set_input(dict) mangles strings holding quotes or backslashes, and rego-cpp compares
        # strings as written (\u00fc is not ü), so pass a JSON term spelled like the modules.
        term = json.dumps({"review": review, "parameters": parameters}, ensure_ascii=False)
        self.interpreter.set_input_term(term)
        output = self.interpreter.query(f"x := data.{self.packages[policy_id]}.violation")
        assert output.ok(), str(output)
        found = json.loads(output.binding("x").json())
        assert all(set(v) == {"msg"} and isinstance(v["msg"], str) for v in found), found
        return sorted(v["msg"] for v in found)


@cache
def example_rego() -> RegoTemplates:
    return RegoTemplates([body for file, body in sorted(rendered().items())
                          if file.startswith("constrainttemplate-")])


# ---- what Gatekeeper's webhook reviews for a submitted manifest --------------------------------

def expand(obj: dict[str, Any], templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resultants as Gatekeeper builds them: the templateSource of every matching
    ExpansionTemplate becomes a `generatedGVK` object named `<parent>-<kind>` in the parent's
    namespace, itself expanded again (CronJob -> Job -> Pod)."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    resultants: list[dict[str, Any]] = []
    for template in templates:
        spec = template["spec"]
        if not any(group in rule["groups"] and obj["kind"] in rule["kinds"]
                   and version in rule["versions"] for rule in spec["applyTo"]):
            continue
        source: Any = obj
        for key in spec["templateSource"].split("."):
            source = source[key]
        gvk = spec["generatedGVK"]
        child = copy.deepcopy(source)
        child["apiVersion"] = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        child["kind"] = gvk["kind"]
        child["metadata"] = dict(child.get("metadata") or {})
        child["metadata"]["name"] = f"{obj['metadata']['name']}-{gvk['kind'].lower()}"
        child["metadata"]["namespace"] = obj["metadata"].get("namespace", "default")
        resultants += [child, *expand(child, templates)]
    return resultants


def reviews_for(obj: dict[str, Any]) -> list[Review]:
    """The AdmissionRequests Gatekeeper's Pod constraints see when `obj` is submitted.

    A workload is reviewed as its expanded Pods, which Gatekeeper reviews without admission
    metadata (empty operation). A Pod with ephemeral containers can only be the
    pods/ephemeralcontainers UPDATE of `kubectl debug`.
    """
    if obj["kind"] != "Pod":
        reviews = []
        for pod in expand(obj, expansions()):
            if pod["kind"] == "Pod":
                review = request_for(pod).to_review()
                review["operation"] = ""
                reviews.append(review)
        return reviews
    if (obj.get("spec") or {}).get("ephemeralContainers"):
        old = copy.deepcopy(obj)
        del old["spec"]["ephemeralContainers"]
        request = dataclasses.replace(request_for(obj, "UPDATE"),
                                      sub_resource="ephemeralcontainers", old_object=old)
        return [request.to_review()]
    return [request_for(obj).to_review()]


def contract_problem(policy: Policy, parameters: dict[str, Any], message: str) -> str | None:
    """Why `message` does not follow docs/architecture.md for any check of the policy."""
    for check in policy.checks:
        labels = "|".join(LABELS[t] for t in getattr(check, "containerTypes", CONTAINER_TYPES))
        container = rf'(?:{labels}) "[^"]*": '
        if isinstance(check, PodFieldCheck | ContainerFieldCheck):
            allowed = json.dumps(resolve(check.allowed, parameters))
            rule = "must be one of" if check.required else "must be unset or one of"
            prefix = "spec." if isinstance(check, PodFieldCheck) else container
            if re.fullmatch(prefix + re.escape(f"{check.field} {rule} {allowed}"), message):
                return None
        elif isinstance(check, ContainerListSubsetCheck):
            found = re.fullmatch(container + re.escape(check.field) + r' may not contain "(.*)"',
                                 message, re.DOTALL)
            allowed_items = [str(v) for v in resolve(check.allowed, parameters)]
            if found and found[1] not in allowed_items:
                return None
        elif isinstance(check, PodListFieldCheck):
            items = resolve(check.allowed, parameters)
            rule = f"must be unset or one of {json.dumps(items)}" if items else "must be unset"
            if re.fullmatch(re.escape(f"spec.{check.list} item ") + r'"[^"]*": '
                            + re.escape(f"{check.field} {rule}"), message):
                return None
        elif isinstance(check, ImageRepositoryCheck):
            repos = [str(r) for r in resolve(check.repos, parameters)]
            found = re.fullmatch(container + r'image "(.*)" is not from an allowed repository '
                                 + re.escape(f"(allowed: {', '.join(repos)})"), message)
            if found and not is_allowed(found[1], repos):
                return None
    return f"message {message!r} follows no check of {policy.id}"


# ---- rendered Rego ------------------------------------------------------------------------------

def _policy_ids() -> list[str]:
    return sorted(load_catalog(default_catalog_dir()).entries)


@pytest.mark.parametrize("policy_id", _policy_ids())
def test_rego_parses_as_v1_without_forbidden_imports(policy_id: str) -> None:
    text = rego_of(rendered()[f"constrainttemplate-{policy_id}.yaml"])
    interpreter = regopy.Interpreter()
    interpreter.add_module(f"{policy_id}.rego", text)
    assert interpreter.query("x := data").ok()
    assert "import rego.v1" not in text
    assert not re.search(r"^import\s+input", text, re.MULTILINE)
    assert set(re.findall(r"\bdata\.(\w+)", text)) <= {"lib"}
    # Rego v1 rule heads: every rule with a body says `if`, and partial sets say `contains`.
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and line.endswith("{"):
            assert line.endswith(" if {"), line
    assert re.search(r'^violation contains \{"msg": msg\} if \{$', text, re.MULTILINE)
    assert not re.search(r"^violation\[", text, re.MULTILINE)


def _fixture_cases() -> list[Any]:
    catalog = load_catalog(default_catalog_dir())
    return [pytest.param(policy_id, verdict, path, id=f"{policy_id}/{verdict}/{path.stem}")
            for policy_id, entry in catalog.entries.items()
            for verdict in ("allowed", "disallowed")
            for path in entry.fixtures(verdict)]


@pytest.mark.parametrize(("policy_id", "verdict", "path"), _fixture_cases())
def test_fixture_verdicts(policy_id: str, verdict: str, path: Path) -> None:
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    reviews = reviews_for(obj)
    assert reviews, f"{path}: Gatekeeper would review no Pod for this {obj['kind']}"
    parameters = example_parameters(policy_id)
    messages = [message for review in reviews
                for message in example_rego().violations(policy_id, review, parameters)]
    if verdict == "allowed":
        assert messages == []
        return
    assert messages, f"{path} was admitted"
    policy = inputs().catalog.get(policy_id)
    problems = [p for m in messages if (p := contract_problem(policy, parameters, m))]
    assert problems == []


def _scenario_files() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted(SCENARIOS.glob("*.yaml"))]


@pytest.mark.parametrize("path", _scenario_files())
def test_scenarios(path: Path) -> None:
    scenario = yaml.safe_load(path.read_text(encoding="utf-8"))
    obj = scenario["object"]
    operation = scenario.get("operation", "CREATE")
    if obj["kind"] == "Pod":
        request = dataclasses.replace(request_for(obj, operation or "CREATE"),
                                      sub_resource=scenario.get("subResource", ""))
        reviews = [request.to_review()]
        reviews[0]["operation"] = operation
    else:
        reviews = reviews_for(obj)
    parameters = {**example_parameters(scenario["policy"]), **scenario.get("parameters", {})}
    messages = [message for review in reviews
                for message in example_rego().violations(scenario["policy"], review, parameters)]
    assert messages == sorted(scenario["violations"])
    policy = inputs().catalog.get(scenario["policy"])
    assert [p for m in messages if (p := contract_problem(policy, parameters, m))] == []


def _pod(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{index}", "image": image} for index, image in enumerate(images)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prd"},
            "spec": {"containers": containers}}


def _denied_images(repos: list[str], images: list[str]) -> set[str]:
    review = request_for(_pod(*images)).to_review()
    messages = example_rego().violations("allowed-repos", review,
                                         {"repos": repos, "exemptImages": []})
    return {re.findall(r'image "(.*)" is not', m)[0] for m in messages}


@pytest.mark.parametrize(("image", "allowed"), [
    ("ubuntuevil/x", False),
    ("ubuntu.evil.example/x", False),
    ("ubuntu:5000/x", False),
    ("ubuntu", True),
    ("ubuntu:24.04", True),
    ("docker.io/library/ubuntu", True),
    ("ubuntu/x", True),
    ("ubuntu@sha256:" + "0123456789abcdef" * 4, True),
])
def test_lookalike_registries(image: str, allowed: bool) -> None:
    assert is_allowed(image, ["ubuntu"]) is allowed
    assert (image not in _denied_images(["ubuntu"], [image])) is allowed


IMAGES = ["nginx", "nginx:1.27", "docker.io/nginx", "index.docker.io/nginx@sha256:abc",
          "library/nginx", "nginxx", "bitnami/redis:7", "docker.io/bitnami/redis",
          "bitnamievil/redis", "ghcr.io/org/app:1", "ghcr.io/org", "ghcr.io/orgevil/app",
          "ghcr.io/other/app", "localhost:5000/x/y:2", "localhost/x", "localhost:50000/x",
          "myreg:5000/app", "quay.io/a/b", "quay.io.evil.example/a", "ubuntu:24.04@sha256:abc",
          "ubuntu/x:1", "registry.example:443/ubuntu", "UBUNTU", ""]


@pytest.mark.parametrize("entries", [
    ["ubuntu", "ghcr.io/org/", "localhost:5000", "docker.io/bitnami", "quay.io",
     "index.docker.io/library/nginx"],
    ["docker.io"],
    ["myreg:5000", "localhost", "nginx/"],
], ids=["mixed", "docker-hub", "hosts"])
def test_image_resolution_matches_the_reference(entries: list[str]) -> None:
    expected = {image for image in IMAGES if not is_allowed(image, entries)}
    assert 0 < len(expected) < len(IMAGES)
    assert _denied_images(entries, IMAGES) == expected


# ---- rendered documents -------------------------------------------------------------------------

def _plan(*bindings: Binding) -> ClusterPlan:
    return dataclasses.replace(example_plan(), bindings=bindings)


def _render(*bindings: Binding) -> dict[str, dict[str, Any]]:
    return {doc.file: doc.body for doc in TARGET.render(_plan(*bindings))}


def test_constraint_templates() -> None:
    for policy in inputs().catalog.policies:
        template = rendered()[f"constrainttemplate-{policy.id}.yaml"]
        kind = constraint_kind(policy.id)
        assert template["apiVersion"] == "templates.gatekeeper.sh/v1"
        assert template["metadata"]["name"] == kind.lower()
        assert template["metadata"]["annotations"] == {
            "polgen.dev/policy": policy.id,
            "metadata.gatekeeper.sh/title": policy.title,
            "description": policy.description,
        }
        crd = template["spec"]["crd"]["spec"]
        assert crd["names"] == {"kind": kind}
        schema = crd["validation"]["openAPIV3Schema"]
        assert schema["type"] == "object"
        container_level = any(c.kind != "pod-field" and c.kind != "pod-list-field"
                              for c in policy.checks)
        expected = {name: p.openapi_schema() for name, p in policy.parameters.items()}
        assert {k: v for k, v in schema["properties"].items() if k != "exemptImages"} == expected
        assert ("exemptImages" in schema["properties"]) is container_level
        assert template["spec"]["targets"][0]["target"] == "admission.k8s.gatekeeper.sh"


def test_kind_naming() -> None:
    assert constraint_kind("disallow-privileged") == "PolgenDisallowPrivileged"
    assert constraint_kind("allowed-repos") == "PolgenAllowedRepos"
    assert constraint_kind("psp-2fa") == "PolgenPsp2fa"


@pytest.mark.parametrize(("action", "expected"),
                         [("enforce", "deny"), ("warn", "warn"), ("audit", "dryrun")])
def test_enforcement_action(action: Action, expected: str) -> None:
    binding = dataclasses.replace(example_binding("disallow-privileged"), action=action)
    constraint = _render(binding)[f"constraint-{binding.name}.yaml"]
    assert constraint["spec"]["enforcementAction"] == expected


def test_constraint_match_and_parameters() -> None:
    named = dataclasses.replace(example_binding("allowed-repos"), namespaces=("a", "b"),
                                excluded_namespaces=(), exempt_images=("busybox:1.36",))
    catch_all = dataclasses.replace(example_binding("disallow-host-path"), group="rest",
                                    namespaces=(), excluded_namespaces=("kube-system", "prd"))
    documents = _render(named, catch_all)
    first = documents[f"constraint-{named.name}.yaml"]
    assert first["apiVersion"] == "constraints.gatekeeper.sh/v1beta1"
    assert first["kind"] == "PolgenAllowedRepos"
    assert first["metadata"]["name"] == named.name
    assert first["metadata"]["annotations"] == {"polgen.dev/policy": "allowed-repos",
                                                "polgen.dev/binding": named.name}
    assert first["spec"]["match"] == {"scope": "Namespaced",
                                      "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                                      "namespaces": ["a", "b"]}
    assert first["spec"]["parameters"] == {"repos": ["open-policy-agent", "ubuntu"],
                                           "exemptImages": ["busybox:1.36"]}
    second = documents["constraint-disallow-host-path-rest.yaml"]
    assert second["spec"]["match"] == {"scope": "Namespaced",
                                       "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                                       "excludedNamespaces": ["kube-system", "prd"]}
    assert second["spec"]["parameters"] == {}


WEIRD = ['say "hi"', "two\nlines", "{{ .Values.image }}", "{% raw %}", "key: value", "- item",
         "# comment", "%v %s", "back\\slash", "`tick`", "ünïcode"]


def test_parameter_values_survive_as_data() -> None:
    binding = dataclasses.replace(example_binding("allowed-repos"),
                                  parameters={"repos": WEIRD}, exempt_images=tuple(WEIRD))
    constraint = _render(binding)[f"constraint-{binding.name}.yaml"]
    assert constraint["spec"]["parameters"] == {"repos": WEIRD, "exemptImages": WEIRD}
    review = request_for(_pod("evil.example/x")).to_review()
    messages = example_rego().violations("allowed-repos", review, constraint["spec"]["parameters"])
    assert messages == ['container "c0": image "evil.example/x" is not from an allowed repository'
                        f" (allowed: {', '.join(WEIRD)})"]


def test_literal_values_survive_as_data() -> None:
    policy = Policy.model_validate({
        "id": "weird-literals", "title": 'A "title": {{ x }}', "severity": "low",
        "description": "key: value\n- item\n{% if %}", "category": "Test",
        "checks": [{"kind": "pod-field", "field": "hostname", "allowed": WEIRD},
                   {"kind": "pod-list-field", "list": "volumes", "field": "csi.driver",
                    "allowed": WEIRD}],
    })
    binding = dataclasses.replace(example_binding("disallow-host-path"), policy=policy)
    template = _render(binding)["constrainttemplate-weird-literals.yaml"]
    assert template["metadata"]["annotations"]["metadata.gatekeeper.sh/title"] == policy.title
    assert template["metadata"]["annotations"]["description"] == policy.description
    rego = RegoTemplates([template])
    pod = _pod("ubuntu")
    pod["spec"]["volumes"] = [{"name": "v", "csi": {"driver": value}} for value in [*WEIRD, "x"]]
    for value in WEIRD:
        pod["spec"]["hostname"] = value
        messages = rego.violations("weird-literals", request_for(pod).to_review(), {})
        assert messages == [f'spec.volumes item "v": csi.driver must be unset or one of'
                            f" {json.dumps(WEIRD, ensure_ascii=False)}"]
    pod["spec"]["hostname"] = "other"
    messages = rego.violations("weird-literals", request_for(pod).to_review(), {})
    expected = f"spec.hostname must be unset or one of {json.dumps(WEIRD, ensure_ascii=False)}"
    assert expected in messages


@pytest.mark.parametrize(("drivers", "rule"), [
    ([], "must be unset"),
    (["nfs.csi.k8s.io"], 'must be unset or one of ["nfs.csi.k8s.io"]'),
])
def test_parameter_driven_pod_list_field(drivers: list[str], rule: str) -> None:
    """The message of a pod-list-field check depends on whether the Constraint's list is empty."""
    policy = Policy.model_validate({
        "id": "csi-drivers", "title": "t", "description": "d", "severity": "low",
        "category": "Test",
        "parameters": {"drivers": {"type": "array", "items": "string", "description": "d",
                                   "default": []}},
        "checks": [{"kind": "pod-list-field", "list": "volumes", "field": "csi.driver",
                    "allowed": {"param": "drivers"}}],
    })
    binding = dataclasses.replace(example_binding("disallow-host-path"), policy=policy,
                                  parameters={"drivers": drivers})
    documents = _render(binding)
    rego = RegoTemplates([documents["constrainttemplate-csi-drivers.yaml"]])
    parameters = documents[f"constraint-{binding.name}.yaml"]["spec"]["parameters"]
    pod = _pod("ubuntu")
    pod["spec"]["volumes"] = [{"name": name, "csi": {"driver": name}}
                              for name in ["nfs.csi.k8s.io", "other"]]
    messages = rego.violations("csi-drivers", request_for(pod).to_review(), parameters)
    expected = [f'spec.volumes item "{name}": csi.driver {rule}'
                for name in ["nfs.csi.k8s.io", "other"] if name not in drivers]
    assert messages == expected


def test_expansion_templates() -> None:
    documents = expansions()
    names = [document["metadata"]["name"] for document in documents]
    assert names == ["polgen-cronjobs", "polgen-pod-controllers"]
    for document in documents:
        assert document["apiVersion"] == "expansion.gatekeeper.sh/v1beta1"
    pods = documents[1]["spec"]
    assert pods["templateSource"] == "spec.template"
    assert pods["generatedGVK"] == {"group": "", "version": "v1", "kind": "Pod"}
    kinds = {(g, k) for rule in pods["applyTo"] for g in rule["groups"] for k in rule["kinds"]}
    assert kinds == {("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "StatefulSet"),
                     ("apps", "ReplicaSet"), ("batch", "Job"), ("", "ReplicationController")}
    cron = documents[0]["spec"]
    assert cron["applyTo"] == [{"groups": ["batch"], "kinds": ["CronJob"], "versions": ["v1"]}]
    assert (cron["templateSource"], cron["generatedGVK"]) == (
        "spec.jobTemplate", {"group": "batch", "version": "v1", "kind": "Job"})
    assert TARGET.render(_plan()) == []


def test_every_document_is_labelled_and_round_trips() -> None:
    for body in rendered().values():
        assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "polgen"}
    files = render_target(example_plan(), TARGET)
    assert files == render_target(example_plan(), TARGET)
    assert "constrainttemplate-disallow-privileged.yaml" in files


def test_support_and_versions() -> None:
    for policy in inputs().catalog.policies:
        support = TARGET.support(policy)
        assert support.supported and "Rego" in support.reason
    assert "3.19" in TARGET.minimum_versions and "3.13" in TARGET.minimum_versions

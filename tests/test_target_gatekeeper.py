"""The gatekeeper target: the documents it renders, and its Rego run by a real Rego interpreter
(rego-cpp through regopy) with Gatekeeper's input contract, compared with the reference semantics
(polgen.semantics) on every catalog fixture, on the scenarios in tests/data/gatekeeper/ and on the
image-reference edge cases of the contract; the Rego v0 of legacy mode must judge alike."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
import regopy
import yaml
from click.testing import Result

from polgen.admission import AdmissionRequest, debug_request, request_for
from polgen.catalog import Catalog, Policy
from polgen.checks import CHECK_KINDS
from polgen.fleet import Action, GatekeeperSettings, load_fleet
from polgen.imageref import is_allowed, parse_image
from polgen.output import render_target
from polgen.pipeline import load_inputs
from polgen.plan import Binding, ClusterPlan
from polgen.semantics import evaluate_policy
from polgen.targets.base import Support
from polgen.targets.cel_code import gatekeeper_native_validation, unsupported_reason
from polgen.targets.gatekeeper import REGO_HELPERS, TARGET, constraint_kind, rego_module

SCENARIOS = Path(__file__).parent / "data" / "gatekeeper" / "scenarios"
FIXTURE_NAMESPACE = "prd"
Mode = Literal["v1", "legacy"]
MODES: tuple[Mode, ...] = ("v1", "legacy")
SETTINGS: dict[str, GatekeeperSettings] = {
    "v1": GatekeeperSettings(),
    "legacy": GatekeeperSettings(legacyRego=True),
    "native": GatekeeperSettings(nativeValidation=True),
    "native-legacy": GatekeeperSettings(nativeValidation=True, legacyRego=True),
}
FUTURE_KEYWORDS = ("contains", "if", "in")
WORKLOADS = frozenset({"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job",
                       "ReplicationController", "CronJob"})
Review = dict[str, Any]
Documents = dict[str, dict[str, Any]]


# ---- bindings and renderings ---------------------------------------------------------------------

@cache
def catalog() -> Catalog:
    return load_inputs().catalog


@cache
def fleet_parameters() -> dict[str, dict[str, Any]]:
    """The example fleet's shared parameters: the values the catalog fixtures assume."""
    return load_fleet(catalog().root / "fleet.yaml")[0].parameters


def binding_of(policy: Policy, **changes: Any) -> Binding:
    """An enforcing binding of `policy` in namespace prd with the fixtures' parameters."""
    parameters = {**policy.default_parameters(), **fleet_parameters().get(policy.id, {})}
    base = Binding(cluster="test", group="prd", policy=policy, parameters=parameters,
                   action="enforce", namespaces=("prd",), excluded_namespaces=(),
                   exempt_images=())
    return dataclasses.replace(base, **changes)


def plan_of(*bindings: Binding, settings: str = "v1") -> ClusterPlan:
    return ClusterPlan(name="test", description="", targets=("gatekeeper",),
                       kyverno_flavor="ClusterPolicy", bindings=bindings, namespaces=(),
                       gatekeeper=SETTINGS[settings])


def render(*bindings: Binding, settings: str = "v1") -> Documents:
    return {doc.file: doc.body for doc in TARGET.render(plan_of(*bindings, settings=settings))}


@cache
def rendered(settings: str = "v1") -> Documents:
    """Every catalog policy bound once (opt-in policies too)."""
    return render(*(binding_of(policy) for policy in catalog().policies), settings=settings)


def templates(documents: Documents) -> list[dict[str, Any]]:
    return [body for file, body in sorted(documents.items())
            if file.startswith("constrainttemplate-")]


def expansions(documents: Documents) -> list[dict[str, Any]]:
    return [body for file, body in sorted(documents.items())
            if file.startswith("expansiontemplate-")]


def rego_of(template: dict[str, Any]) -> tuple[Mode, str]:
    """The Rego Gatekeeper runs for a template: legacy `rego` (v0) or the code[] Rego entry."""
    [target] = template["spec"]["targets"]
    rego_entries = [code for code in target.get("code", []) if code["engine"] == "Rego"]
    if "rego" in target:
        assert rego_entries == []
        return "legacy", str(target["rego"])
    [code] = rego_entries
    assert code["source"]["version"] == "v1"
    return "v1", str(code["source"]["rego"])


# ---- Gatekeeper's evaluation, offline -----------------------------------------------------------

@cache
def runner() -> regopy.Interpreter:
    interpreter = regopy.Interpreter()
    interpreter.strict_built_in_errors = True
    return interpreter


class RegoTemplate:
    """One ConstraintTemplate's Rego compiled by rego-cpp, evaluated as Gatekeeper does:
    `violation` with input {"review": <AdmissionRequest>, "parameters": <Constraint parameters>}."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.mode, text = rego_of(template)
        package = re.match(r"package (\w+)\n", text)
        assert package, text[:80]
        self.entrypoint = f"{package[1]}/violation"
        interpreter = regopy.Interpreter()
        interpreter.add_module(f"{template['metadata']['name']}.rego", text)
        self.bundle = interpreter.build(None, [self.entrypoint])

    def violations(self, review: Review, parameters: dict[str, Any]) -> set[str]:
        # set_input(dict) mangles strings holding quotes or backslashes, and rego-cpp compares
        # strings as written (\u00fc is not ü), so pass a JSON term spelled like the modules.
        term = json.dumps({"review": review, "parameters": parameters}, ensure_ascii=False)
        runner().set_input_term(term)
        output = runner().query_bundle_entrypoint(self.bundle, self.entrypoint)
        assert output.ok(), str(output)
        found = output.results[0].expressions[0] if output.results else []
        assert all(set(v) == {"msg"} and isinstance(v["msg"], str) for v in found), found
        return {v["msg"] for v in found}


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
        child["metadata"]["namespace"] = obj["metadata"]["namespace"]
        resultants += [child, *expand(child, templates)]
    return resultants


class Gatekeeper:
    """Rendered documents of one binding per policy, reviewing requests like the webhook: a Pod
    or Service as sent, a workload through the Pods its ExpansionTemplates generate (reviewed
    without admission metadata, as Gatekeeper reviews resultants)."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.rego = {t["metadata"]["annotations"]["polgen.dev/policy"]: RegoTemplate(t)
                     for t in templates(documents)}
        self.constraints = {body["metadata"]["annotations"]["polgen.dev/policy"]: body["spec"]
                            for file, body in documents.items() if file.startswith("constraint-")}

    def reviews(self, request: AdmissionRequest, operation: str | None = None) -> list[Review]:
        """`operation` overrides the review's (audit and gator send none)."""
        if request.kind not in WORKLOADS:
            review = request.to_review()
            review["operation"] = request.operation if operation is None else operation
            return [review]
        assert request.object is not None
        parent = copy.deepcopy(request.object)
        parent["metadata"] = {**parent.get("metadata", {}), "namespace": request.namespace}
        reviews = []
        for pod in expand(parent, expansions(self.documents)):
            if pod["kind"] == "Pod":
                review = request_for(pod).to_review()
                review["operation"] = ""
                reviews.append(review)
        assert reviews, f"Gatekeeper would review no Pod for this {request.kind}"
        return reviews

    def messages(
        self, policy_id: str, request: AdmissionRequest, operation: str | None = None
    ) -> list[str]:
        """Violations of the policy's Constraint; it sees only reviews of the kinds it matches
        (namespace matching is not modelled: the tests choose namespaces freely)."""
        template = self.rego[policy_id]
        constraint = self.constraints[policy_id]
        kinds = {(group, kind) for rule in constraint["match"]["kinds"]
                 for group in rule["apiGroups"] for kind in rule["kinds"]}
        return sorted({message for review in self.reviews(request, operation)
                       if (review["kind"]["group"], review["kind"]["kind"]) in kinds
                       for message in template.violations(review, constraint["parameters"])})


@cache
def catalog_gatekeeper(settings: str) -> Gatekeeper:
    return Gatekeeper(rendered(settings))


def oracle(binding: Binding, request: AdmissionRequest) -> list[str]:
    """What the reference semantics ask for; Rego reports a set, so duplicates collapse."""
    return sorted(set(evaluate_policy(binding.policy, binding.parameters, request,
                                      binding.exempt_images)))


# ---- every catalog fixture, Rego v1 and legacy v0, against the oracle --------------------------

def load_yaml(path: Path) -> Any:
    """PyYAML's safe loading through libyaml: the pure-Python parser dominated this file's time."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def fixture_request(path: Path) -> AdmissionRequest:
    """CREATE of the manifest; `kubectl debug` (pods/ephemeralcontainers UPDATE) for an
    `ephemeral-*` fixture; in namespace prd unless it names one (tests/test_catalog_fixtures.py
    sends them so)."""
    obj = load_yaml(path)
    if path.name.startswith("ephemeral-"):
        return debug_request(obj, FIXTURE_NAMESPACE)
    return request_for(obj, default_namespace=FIXTURE_NAMESPACE)


def _fixture_cases() -> list[Any]:
    return [pytest.param(policy_id, verdict, path, id=f"{policy_id}/{verdict}/{path.stem}")
            for policy_id, entry in catalog().entries.items()
            for verdict in ("allowed", "disallowed")
            for path in entry.fixtures(verdict)]


@pytest.mark.parametrize(("policy_id", "verdict", "path"), _fixture_cases())
def test_fixture_verdicts_and_messages_match_the_oracle(
    policy_id: str, verdict: str, path: Path
) -> None:
    request = fixture_request(path)
    expected = oracle(binding_of(catalog().get(policy_id)), request)
    assert bool(expected) == (verdict == "disallowed")
    for mode in MODES:
        assert catalog_gatekeeper(mode).messages(policy_id, request) == expected, mode


# ---- scenarios: skipIf gating, UPDATE rules, subjects, every kind's edge cases ----------------

def scenario_policy(entry: Any) -> Policy:
    """A catalog policy by id, or a policy written inline in the scenario."""
    if isinstance(entry, str):
        return catalog().get(entry)
    return Policy.model_validate({"title": entry["id"], "description": entry["id"],
                                  "severity": "low", "category": "Test", **entry})


def scenario_request(scenario: dict[str, Any]) -> AdmissionRequest:
    """The scenario's request; an empty operation (audit, gator) counts as a CREATE."""
    obj = copy.deepcopy(scenario["object"])
    request = request_for(obj, scenario.get("operation") or "CREATE")
    return dataclasses.replace(request, sub_resource=scenario.get("subResource", ""))


def _scenario_files() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted(SCENARIOS.glob("*.yaml"))]


@pytest.mark.parametrize("path", _scenario_files())
def test_scenarios(path: Path) -> None:
    scenario = load_yaml(path)
    policy = scenario_policy(scenario["policy"])
    overrides = dict(scenario.get("parameters", {}))
    exempt = tuple(overrides.pop("exemptImages", ()))
    binding = binding_of(policy)
    binding = dataclasses.replace(binding, parameters={**binding.parameters, **overrides},
                                  exempt_images=exempt)
    request = scenario_request(scenario)
    expected = sorted(scenario["violations"])
    assert oracle(binding, request) == expected, "the reference semantics disagree"
    for mode in MODES:
        gatekeeper = Gatekeeper(render(binding, settings=mode))
        assert gatekeeper.messages(policy.id, request, scenario.get("operation")) == expected, mode


def _pod(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{index}", "image": image} for index, image in enumerate(images)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prd"},
            "spec": {"containers": containers}}


def _messages(policy: Policy, obj: dict[str, Any], **parameters: Any) -> list[str]:
    binding = binding_of(policy)
    binding = dataclasses.replace(binding, parameters={**binding.parameters, **parameters})
    request = request_for(obj)
    messages = Gatekeeper(render(binding)).messages(policy.id, request)
    assert messages == oracle(binding, request)
    return messages


# ---- images: repositories, tags and digests as polgen.imageref resolves them --------------------

def _denied_images(repos: list[str], images: list[str]) -> set[str]:
    messages = _messages(catalog().get("allowed-repos"), _pod(*images), repos=repos)
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
          "ubuntu/x:1", "registry.example:443/ubuntu", "UBUNTU", "", "ubuntu:", "ubuntu@",
          "ubuntu:latest@sha256:abc", "reg:5000/x:latest", "reg:5000/x", "a@b@c", "x:y:z"]


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


def test_image_tags_and_digests_match_the_reference() -> None:
    messages = _messages(catalog().get("disallow-latest-tag"), _pod(*IMAGES),
                         forbiddenTags=["latest", "", "z"])
    untagged = {re.findall(r'image "(.*)" must name', m)[0] for m in messages if "must name" in m}
    forbidden = {re.findall(r'image "(.*)" uses', m)[0] for m in messages if "uses" in m}
    refs = {image: parse_image(image) for image in IMAGES}
    assert untagged == {i for i, r in refs.items() if r.tag is None and r.digest is None}
    assert forbidden == {i for i, r in refs.items() if r.tag in ("latest", "", "z")}
    assert untagged and forbidden
    messages = _messages(catalog().get("require-image-digest"), _pod(*IMAGES))
    unpinned = {re.findall(r'image "(.*)" must be pinned', m)[0] for m in messages}
    assert unpinned == {i for i, r in refs.items() if r.digest is None}
    assert "ubuntu@" in unpinned and "a@b@c" not in unpinned


# ---- values are data ----------------------------------------------------------------------------

WEIRD = ['say "hi"', "two\nlines", "{{ .Values.image }}", "{% raw %}", "key: value", "- item",
         "# comment", "%v %s", "back\\slash", "`tick`", "ünïcode"]


def test_parameter_values_survive_as_data() -> None:
    binding = dataclasses.replace(binding_of(catalog().get("allowed-repos")),
                                  parameters={"repos": WEIRD}, exempt_images=tuple(WEIRD))
    documents = render(binding)
    constraint = documents[f"constraint-{binding.name}.yaml"]
    assert constraint["spec"]["parameters"] == {"repos": WEIRD, "exemptImages": WEIRD}
    request = request_for(_pod("evil.example/x"))
    assert Gatekeeper(documents).messages("allowed-repos", request) == [
        'container "c0": image "evil.example/x" is not from an allowed repository'
        f" (allowed: {', '.join(WEIRD)})"]
    pod = _pod("ubuntu")
    pod["spec"]["securityContext"] = {"seLinuxOptions": {"type": "other"}}
    assert _messages(catalog().get("restrict-selinux"), pod, allowedTypes=WEIRD) == [
        "spec.securityContext.seLinuxOptions.type must be one of"
        f" {json.dumps(WEIRD, ensure_ascii=False)}"]


def test_literal_values_survive_as_data() -> None:
    policy = Policy.model_validate({
        "id": "weird-literals", "title": 'A "title": {{ x }}', "severity": "low",
        "description": "key: value\n- item\n{% if %}", "category": "Test",
        "checks": [{"kind": "pod-field", "field": "hostname", "allowed": WEIRD},
                   {"kind": "pod-list-field", "list": "volumes", "field": "csi.driver",
                    "allowed": WEIRD},
                   {"kind": "pod-annotation", "keyPrefix": 'we"ird/\n', "allowed": WEIRD},
                   {"kind": "container-list-contains", "field": "args", "values": WEIRD}],
    })
    for mode in MODES:
        documents = render(binding_of(policy), settings=mode)
        template = documents["constrainttemplate-weird-literals.yaml"]
        assert template["metadata"]["annotations"]["metadata.gatekeeper.sh/title"] == policy.title
        assert template["metadata"]["annotations"]["description"] == policy.description
        gatekeeper = Gatekeeper(documents)
        pod = _pod("ubuntu")
        pod["spec"]["containers"][0]["args"] = WEIRD
        pod["spec"]["volumes"] = [{"name": "v", "csi": {"driver": v}} for v in [*WEIRD, "x"]]
        pod["metadata"]["annotations"] = {'we"ird/\nkey': "other"}
        shown = json.dumps(WEIRD, ensure_ascii=False)
        for value in WEIRD:
            pod["spec"]["hostname"] = value
            assert gatekeeper.messages("weird-literals", request_for(pod)) == [
                f'metadata.annotations["we"ird/\nkey"] must be one of {shown}',
                f'spec.volumes item "v": csi.driver must be unset or one of {shown}']
        pod["spec"]["hostname"] = "other"
        assert f"spec.hostname must be unset or one of {shown}" in gatekeeper.messages(
            "weird-literals", request_for(pod))


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
    pod = _pod("ubuntu")
    pod["spec"]["volumes"] = [{"name": name, "csi": {"driver": name}}
                              for name in ["nfs.csi.k8s.io", "other"]]
    assert _messages(policy, pod, drivers=drivers) == [
        f'spec.volumes item "{name}": csi.driver {rule}'
        for name in ["nfs.csi.k8s.io", "other"] if name not in drivers]


# ---- the Rego modules: v1 syntax, and the legacy v0 module --------------------------------------

def _policy_ids() -> list[str]:
    return sorted(catalog().entries)


def _rule_heads(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line and not line[0].isspace() and not line.startswith("#") and line.endswith("{")]


@pytest.mark.parametrize("policy_id", _policy_ids())
def test_rego_is_v1_without_forbidden_imports(policy_id: str) -> None:
    mode, text = rego_of(rendered()[f"constrainttemplate-{policy_id}.yaml"])
    assert mode == "v1"
    assert not re.search(r"^import\b", text, re.MULTILINE)
    assert set(re.findall(r"\bdata\.(\w+)", text)) <= {"lib"}
    # Rego v1 rule heads: every rule with a body says `if`, and partial sets say `contains`.
    for line in _rule_heads(text):
        assert line.endswith(" if {"), line
    assert re.search(r'^violation contains \{"msg": msg\} if \{$', text, re.MULTILINE)
    assert not re.search(r"^violation\[", text, re.MULTILINE)


@pytest.mark.parametrize("policy_id", _policy_ids())
def test_legacy_rego_is_the_v1_module_with_future_keywords(policy_id: str) -> None:
    """Gatekeeper 3.14-3.18 parse `rego` as v0: the same rules, each keyword they use imported
    from `future.keywords` (rego-cpp has no v0 mode, so the v0 grammar is checked here and the
    verdicts of both modules are compared on every fixture and scenario)."""
    mode, legacy = rego_of(rendered("legacy")[f"constrainttemplate-{policy_id}.yaml"])
    assert mode == "legacy"
    modern = rego_module(catalog().get(policy_id))
    imports = re.findall(r"^import (.*)$", legacy, re.MULTILINE)
    assert imports == [f"future.keywords.{keyword}" for keyword in FUTURE_KEYWORDS]

    def rules(text: str) -> list[str]:
        return [line for line in text.splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "import "))]

    assert rules(legacy) == rules(modern)
    code = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', "\n".join(rules(legacy)))
    assert not re.search(r"\bevery\b", code), "`every` would need its own import"
    for line in _rule_heads(legacy):
        assert line.endswith(" if {"), line
    assert not re.search(r"^\w+\[", legacy, re.MULTILINE), "v0 partial rules read differently"


# ---- rendered documents -------------------------------------------------------------------------

def test_constraint_templates() -> None:
    for policy in catalog().policies:
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
        container_level = any(hasattr(check, "containerTypes") for check in policy.checks)
        expected = {name: p.openapi_schema() for name, p in policy.parameters.items()}
        assert {k: v for k, v in schema["properties"].items() if k != "exemptImages"} == expected
        assert ("exemptImages" in schema["properties"]) is container_level
        [target] = template["spec"]["targets"]
        assert target["target"] == "admission.k8s.gatekeeper.sh"
        assert [code["engine"] for code in target["code"]] == ["Rego"]


def test_skip_parameters_reach_schema_and_constraint() -> None:
    """A skipIf `param` is read from input.parameters: the Constraint carries it and the
    template's schema declares it, or Gatekeeper would reject the Constraint."""
    gated = [(policy, skip.param) for policy in catalog().policies for check in policy.checks
             for skip in getattr(check, "skipIf", []) if skip.param]
    assert gated
    for policy, param in gated:
        template = rendered()[f"constrainttemplate-{policy.id}.yaml"]
        schema = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]
        assert schema["properties"][param]["type"] == "boolean"
        constraint = rendered()[f"constraint-{policy.id}-prd.yaml"]
        assert isinstance(constraint["spec"]["parameters"][param], bool)
        rego = rego_of(template)[1]
        assert f"input.parameters[{json.dumps(param)}]" in rego


def test_native_validation_comes_before_the_rego() -> None:
    for policy in catalog().policies:
        file = f"constrainttemplate-{policy.id}.yaml"
        [target] = rendered("native")[file]["spec"]["targets"]
        rego = {"engine": "Rego", "source": {"version": "v1", "rego": rego_module(policy)}}
        if unsupported_reason(policy) is not None:
            assert target["code"] == [rego]
            continue
        cel: dict[str, Any] = {"engine": "K8sNativeValidation",
                               "source": gatekeeper_native_validation(policy)}
        assert target["code"] == [cel, rego]
        assert cel["source"]["validations"]
        [legacy] = rendered("native-legacy")[file]["spec"]["targets"]
        assert legacy["code"] == [cel]
        assert legacy["rego"] == rego_module(policy, legacy=True)


def test_cli_flags_choose_the_code(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """`--gatekeeper-*` override the fleet's `gatekeeper:` settings of every cluster."""
    out = tmp_path / "out"
    result = run_cli("render", "--out", str(out), "--cluster", "dev", "--target", "gatekeeper",
                     "--gatekeeper-native-validation", "--gatekeeper-legacy-rego")
    assert result.exit_code == 0, result.output
    file = out / "dev" / "gatekeeper" / "constrainttemplate-disallow-privileged.yaml"
    [target] = yaml.safe_load(file.read_text(encoding="utf-8"))["spec"]["targets"]
    assert [code["engine"] for code in target["code"]] == ["K8sNativeValidation"]
    assert target["rego"] == rego_module(catalog().get("disallow-privileged"), legacy=True)


def test_kind_naming() -> None:
    assert constraint_kind("disallow-privileged") == "PolgenDisallowPrivileged"
    assert constraint_kind("allowed-repos") == "PolgenAllowedRepos"
    assert constraint_kind("psp-2fa") == "PolgenPsp2fa"


@pytest.mark.parametrize(("action", "expected"),
                         [("enforce", "deny"), ("warn", "warn"), ("audit", "dryrun")])
def test_enforcement_action(action: Action, expected: str) -> None:
    binding = binding_of(catalog().get("disallow-privileged"), action=action)
    assert render(binding)[f"constraint-{binding.name}.yaml"]["spec"]["enforcementAction"] == (
        expected)


def test_constraint_match_and_parameters() -> None:
    named = binding_of(catalog().get("allowed-repos"), namespaces=("a", "b"),
                       exempt_images=("busybox:1.36",))
    catch_all = binding_of(catalog().get("disallow-host-path"), group="rest", namespaces=(),
                           excluded_namespaces=("kube-system", "prd"))
    documents = render(named, catch_all)
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


def test_service_policies_match_services_and_need_no_expansion() -> None:
    services = [policy for policy in catalog().policies if policy.subject == "service"]
    assert services
    documents = render(*(binding_of(policy) for policy in services))
    assert expansions(documents) == []
    for policy in services:
        constraint = documents[f"constraint-{policy.id}-prd.yaml"]
        assert constraint["spec"]["match"]["kinds"] == [{"apiGroups": [""], "kinds": ["Service"]}]
    assert len(expansions(render(binding_of(catalog().get("disallow-privileged"))))) == 2


def test_expansion_templates() -> None:
    documents = expansions(rendered())
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
    assert TARGET.render(plan_of()) == []


def test_every_document_is_labelled_and_round_trips() -> None:
    for settings in SETTINGS:
        for body in rendered(settings).values():
            assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "polgen"}
    plan = next(plan for plan in load_inputs().plans if plan.name == "dev")
    files = render_target(plan, TARGET)
    assert files == render_target(plan, TARGET)
    assert "constrainttemplate-disallow-privileged.yaml" in files


def test_support_and_versions() -> None:
    assert set(REGO_HELPERS) == set(CHECK_KINDS)
    for policy in catalog().policies:
        support = TARGET.support(policy)
        assert support.supported and "Rego" in support.reason
        assert ("Services" in support.reason) is (policy.subject == "service")
    unknown = catalog().get("disallow-privileged").model_copy(
        update={"checks": [SimpleNamespace(kind="made-up", subject="pod")]})
    assert TARGET.support(unknown) == Support(False, "no Rego template for check kind made-up")
    for version in ("3.19", "3.14", "3.16", "3.13"):
        assert version in TARGET.minimum_versions

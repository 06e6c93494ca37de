"""The vap target: ValidatingAdmissionPolicies and bindings, run with the real CEL runtime.

Every catalog fixture is evaluated as the object it is and, for Pods, as every pod controller;
the failed validations and their messages must equal the reference semantics (polgen.semantics).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from polgen.admission import AdmissionRequest, request_for
from polgen.checks import CHECK_KINDS, ImageRepositoryCheck
from polgen.imageref import is_allowed
from polgen.pipeline import load_inputs
from polgen.plan import Binding, ClusterPlan
from polgen.targets.base import Document
from polgen.targets.vap import TARGET
from tests.celharness import (
    CONTROLLERS,
    TableCase,
    as_controller,
    binding_of,
    canonical,
    catalog,
    compile_expression,
    debug_update,
    evaluate,
    example_bindings,
    expected_failures,
    failures,
    fixture_cases,
    manifests,
    namespace_selected,
    plain_update,
    pod,
    rules_match,
    service,
    subjects,
    table_cases,
)


def plan_of(*bindings: Binding) -> ClusterPlan:
    return ClusterPlan("test", "", ("vap",), "ClusterPolicy", bindings, ())


def render(binding: Binding) -> dict[str, Document]:
    return {doc.body["kind"]: doc for doc in TARGET.render(plan_of(binding))}


def policy_spec(binding: Binding) -> dict[str, Any]:
    spec: dict[str, Any] = render(binding)["ValidatingAdmissionPolicy"].body["spec"]
    return spec


def expected_by_check(binding: Binding, request: AdmissionRequest) -> list[tuple[int, str]]:
    return [(f.index, f.message) for f in expected_failures(binding, request)]


def verdicts(binding: Binding, request: AdmissionRequest) -> list[tuple[int, str]]:
    return [(f.index, f.message) for f in failures(policy_spec(binding), request)]


def offenders(binding: Binding, request: AdmissionRequest) -> set[str]:
    """Names of the containers the messages blame (each message names one first)."""
    return {
        part.split('"')[1]
        for _, message in verdicts(binding, request)
        for part in message.split("; ")
    }


@cache
def example_spec(policy_id: str) -> dict[str, Any]:
    """The policy spec of the example binding of a catalog policy, rendered once per run."""
    return policy_spec(example_bindings()[policy_id])


@pytest.mark.parametrize(("policy_id", "verdict", "file"), fixture_cases(catalog()))
def test_catalog_fixture(policy_id: str, verdict: str, file: Path) -> None:
    binding = example_bindings()[policy_id]
    spec = example_spec(policy_id)
    rules = spec["matchConstraints"]["resourceRules"]
    for manifest in manifests(file):
        for request in subjects(manifest):
            assert rules_match(rules, request), request.kind
            found = canonical(failures(spec, request), binding.policy)
            where = f"{request.kind} {request.operation} {request.sub_resource}"
            assert found == canonical(expected_failures(binding, request), binding.policy), where
            assert bool(found) == (verdict == "disallowed"), where


@pytest.mark.parametrize(("policy_id", "verdict", "file"), fixture_cases(catalog()))
def test_catalog_fixture_as_plain_pod_update(policy_id: str, verdict: str, file: Path) -> None:
    """A label edit on an existing Pod: only kinds about mutable fields (images, labels) run, so
    old pods stay manageable."""
    binding = example_bindings()[policy_id]
    spec = example_spec(policy_id)
    mutable = {check.mutable for check in binding.policy.checks}
    for manifest in manifests(file):
        if manifest["kind"] != "Pod":
            continue
        request = plain_update(manifest)
        found = canonical(failures(spec, request), binding.policy)
        assert found == canonical(expected_failures(binding, request), binding.policy)
        if mutable == {False}:
            assert found == []
        if mutable == {True}:
            assert bool(found) == (verdict == "disallowed")


@pytest.mark.parametrize("case", table_cases())
def test_check_kind_table(case: TableCase) -> None:
    """Every row of tests/data/cel_checks: the exact messages, equal to the reference semantics,
    for the object and (Pods) every controller around it and the debug UPDATE. On a Pod UPDATE
    without subresource (labels, finalizers, pods/resize) only image and label checks run."""
    spec = policy_spec(case.binding)
    policy = case.binding.policy
    for request in subjects(case.manifest):
        assert rules_match(spec["matchConstraints"]["resourceRules"], request)
        found = canonical(failures(spec, request), policy)
        where = f"{request.kind} {request.operation} {request.sub_resource}"
        assert found == canonical(case.expected(), policy), where
        assert found == canonical(expected_failures(case.binding, request), policy), where
    update = plain_update(case.manifest)
    runs = policy.checks[0].mutable or case.manifest["kind"] != "Pod"
    found = canonical(failures(spec, update), policy)
    assert found == canonical(case.expected() if runs else [], policy)


def test_tables_cover_every_check_kind() -> None:
    kinds = {case.values[0].binding.policy.checks[0].kind for case in table_cases()}
    assert kinds == set(CHECK_KINDS)


def test_catalog_has_fixtures_for_every_policy() -> None:
    for policy_id, entry in catalog().entries.items():
        assert entry.fixtures("allowed") and entry.fixtures("disallowed"), policy_id


def all_documents() -> list[Document]:
    documents = []
    for plan in load_inputs().plans:
        documents.extend(TARGET.render(plan))
    return documents


def test_every_expression_compiles() -> None:
    count = 0
    for document in all_documents():
        spec = document.body["spec"]
        for item in spec.get("variables", []):
            compile_expression(item["expression"])
            count += 1
        for item in spec.get("validations", []):
            compile_expression(item["expression"])
            compile_expression(item["messageExpression"])
            assert "\n" not in item["message"]
            count += 2
    assert count > 0


def test_files_names_labels_and_annotations() -> None:
    binding = example_bindings()["disallow-privileged"]
    documents = TARGET.render(plan_of(binding))
    assert [doc.file for doc in documents] == [
        f"validatingadmissionpolicy-{binding.name}.yaml",
        f"validatingadmissionpolicybinding-{binding.name}.yaml",
    ]
    for document in documents:
        metadata = document.body["metadata"]
        assert document.body["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert metadata["name"] == f"polgen-{binding.name}"
        assert metadata["labels"] == {"app.kubernetes.io/managed-by": "polgen"}
        assert metadata["annotations"] == {
            "polgen.dev/policy": "disallow-privileged",
            "polgen.dev/binding": binding.name,
        }


def test_policy_matches_pods_debug_and_every_controller() -> None:
    spec = policy_spec(binding_of(catalog().get("disallow-privileged")))
    assert spec["failurePolicy"] == "Fail"
    assert "paramKind" not in spec
    rules = spec["matchConstraints"]["resourceRules"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    assert rules_match(rules, debug_update(pod, pod))
    for operation in ("CREATE", "UPDATE"):
        assert rules_match(rules, request_for(pod, operation))
        for kind in CONTROLLERS:
            assert rules_match(rules, request_for(as_controller(pod, kind), operation))
    assert not rules_match(rules, request_for(pod, "DELETE"))
    status = dataclasses.replace(request_for(pod, "UPDATE"), sub_resource="status")
    assert not rules_match(rules, status)


@pytest.mark.parametrize(
    ("action", "expected"), [("enforce", ["Deny"]), ("warn", ["Warn"]), ("audit", ["Audit"])]
)
def test_validation_actions(action: str, expected: list[str]) -> None:
    binding = binding_of(catalog().get("disallow-privileged"), action=action)
    spec = render(binding)["ValidatingAdmissionPolicyBinding"].body["spec"]
    assert spec["validationActions"] == expected
    assert spec["policyName"] == f"polgen-{binding.name}"


@pytest.mark.parametrize(
    ("namespaces", "excluded", "selected", "not_selected"),
    [
        (("prd", "web"), (), ["prd", "web"], ["sbx", "kube-system"]),
        ((), ("kube-system", "prd"), ["sbx", "default"], ["kube-system", "prd"]),
        ((), (), ["sbx", "kube-system"], []),
    ],
)
def test_binding_namespace_selector(
    namespaces: tuple[str, ...],
    excluded: tuple[str, ...],
    selected: list[str],
    not_selected: list[str],
) -> None:
    binding = binding_of(
        catalog().get("disallow-privileged"), namespaces=namespaces, excluded_namespaces=excluded
    )
    spec = render(binding)["ValidatingAdmissionPolicyBinding"].body["spec"]
    selector = spec["matchResources"]["namespaceSelector"]
    assert all(namespace_selected(selector, ns) for ns in selected)
    assert not any(namespace_selected(selector, ns) for ns in not_selected)


PRIVILEGED = {"name": "app", "image": "ubuntu:24.04", "securityContext": {"privileged": True}}
PLAIN = {"name": "app", "image": "ubuntu:24.04"}


def test_pod_update_with_new_image_meets_image_checks() -> None:
    privileged = binding_of(catalog().get("disallow-privileged"))
    old, new = pod(PRIVILEGED), pod({**PRIVILEGED, "image": "ubuntu:25.04"})
    update = dataclasses.replace(request_for(new, "UPDATE"), old_object=old)
    assert verdicts(privileged, request_for(new)) != []
    assert verdicts(privileged, update) == []
    repos = binding_of(catalog().get("allowed-repos"), parameters={"repos": ["ubuntu"]})
    bad = pod({**PLAIN, "image": "nginx:1.27"})
    bad_update = dataclasses.replace(request_for(bad, "UPDATE"), old_object=pod(PLAIN))
    assert verdicts(repos, bad_update) == expected_by_check(repos, bad_update) != []


def test_ephemeral_containers_update_is_denied() -> None:
    binding = binding_of(catalog().get("disallow-privileged"))
    debugger = {**PRIVILEGED, "name": "debugger"}
    request = debug_update(pod(PLAIN, ephemeral=(debugger,)), pod(PLAIN))
    assert verdicts(binding, request) == [
        (
            0,
            'ephemeralContainer "debugger":'
            " securityContext.privileged must be unset or one of [false]",
        )
    ]


def test_request_without_operation_fields_is_judged_like_create() -> None:
    binding = binding_of(catalog().get("disallow-privileged"))
    request = request_for(pod(PRIVILEGED))
    review = {"object": request.object}
    spec = policy_spec(binding)
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    assert evaluate(variables["podUpdate"], {"object": request.object, "request": review}) is False


@pytest.mark.parametrize(
    ("patterns", "exempt"),
    [
        (("ubuntu:24.04",), True),
        (("ubuntu:*",), True),
        (("ubuntu",), False),
        (("ubuntu:24.04*",), True),
        (("registry.example/ubuntu:*",), False),
    ],
)
def test_exempt_images_skip_container_checks_only(patterns: tuple[str, ...], exempt: bool) -> None:
    privileged = binding_of(catalog().get("disallow-privileged"), exempt_images=patterns)
    request = request_for(pod(PRIVILEGED, {**PRIVILEGED, "name": "other", "image": "busybox"}))
    assert offenders(privileged, request) == ({"other"} if exempt else {"app", "other"})
    assert verdicts(privileged, request) == expected_by_check(privileged, request)
    host = binding_of(catalog().get("disallow-host-namespaces"), exempt_images=patterns)
    host_request = request_for(pod(PRIVILEGED, hostPID=True))
    assert verdicts(host, host_request) == [(0, "spec.hostPID must be unset or one of [false]")]


DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGES = [
    "ubuntu",
    "ubuntu:24.04",
    f"ubuntu@{DIGEST}",
    f"ubuntu:24.04@{DIGEST}",
    "docker.io/library/ubuntu",
    "index.docker.io/library/ubuntu",
    "docker.io/ubuntu",
    "ubuntu/x",
    "ubuntu/x/y:1",
    "ubuntuevil/x",
    "ubuntu.evil.example/x",
    "ubuntu:5000/x",
    "localhost/ubuntu",
    "localhost:5000/ubuntu",
    "ghcr.io/org/app:1",
    "ghcr.io/org",
    "ghcr.io/orgevil/app",
    "ghcr.io/other/app",
    "ghcr.io:443/org/app",
    "GHCR.io/org/app",
    "docker.io/open-policy-agent/opa",
    "open-policy-agent/opa:0.68",
    "openpolicyagent/opa",
    "registry.k8s.io/pause:3.9",
    "",
]
ENTRIES = [
    ["ubuntu"],
    ["ubuntu/"],
    ["ghcr.io/org"],
    ["ghcr.io/org/"],
    ["ghcr.io"],
    ["localhost:5000"],
    ["docker.io/library/ubuntu"],
    ["index.docker.io/ubuntu"],
    ["docker.io"],
    ["open-policy-agent", "ubuntu//"],
    ["registry.k8s.io/pause"],
    ["localhost"],
    [],
]


@pytest.mark.parametrize("entries", ENTRIES, ids=lambda e: ",".join(e) or "none")
def test_image_resolution_matches_reference(entries: list[str]) -> None:
    check = ImageRepositoryCheck(kind="image-repository", repos=entries)
    policy = catalog().get("allowed-repos").model_copy(update={"checks": [check], "parameters": {}})
    binding = binding_of(policy, parameters={})
    containers = [{"name": f"c{index}", "image": image} for index, image in enumerate(IMAGES)]
    denied = offenders(binding, request_for(pod(*containers)))
    for index, image in enumerate(IMAGES):
        assert (f"c{index}" in denied) == (not is_allowed(image, entries)), image


def test_ubuntu_entry_lookalikes() -> None:
    allowed = [
        "ubuntu",
        "ubuntu:24.04",
        "docker.io/library/ubuntu",
        "index.docker.io/library/ubuntu",
        "ubuntu/x",
        f"ubuntu@{DIGEST}",
    ]
    denied = ["ubuntuevil/x", "ubuntu.evil.example/x", "ubuntu:5000/x"]
    binding = binding_of(catalog().get("allowed-repos"), parameters={"repos": ["ubuntu"]})
    for image in allowed + denied:
        found = verdicts(binding, request_for(pod({"name": "app", "image": image})))
        assert (found == []) == (image in allowed), image


TRICKY = [
    'quote"d',
    "new\nline",
    "{{ request.object.metadata.name }}",
    "key: [yaml, {flow}] # comment",
    "back\\slash",
    "'single'",
    "ünïcode",
]


def test_parameter_values_stay_data() -> None:
    caps = binding_of(
        catalog().get("restrict-capabilities"), parameters={"allowedCapabilities": TRICKY}
    )
    request = request_for(
        pod({**PLAIN, "securityContext": {"capabilities": {"add": [*TRICKY, "SYS_ADMIN"]}}})
    )
    expected = 'container "app": securityContext.capabilities.add may not contain "SYS_ADMIN"'
    assert verdicts(caps, request) == [(0, expected)]
    repos = binding_of(catalog().get("allowed-repos"), parameters={"repos": TRICKY})
    found = verdicts(repos, request_for(pod(PLAIN)))
    assert found == expected_by_check(repos, request_for(pod(PLAIN)))
    assert found[0][1].endswith(f"(allowed: {', '.join(TRICKY)})")


def test_exempt_image_patterns_stay_data() -> None:
    image = 'evil"{{x}}:[a]'
    binding = binding_of(catalog().get("disallow-privileged"), exempt_images=(image,))
    request = request_for(pod({**PRIVILEGED, "image": image}))
    assert verdicts(binding, request) == []


def test_mixed_type_allowed_list_is_a_homogeneous_cel_literal() -> None:
    policy = catalog().get("disallow-privileged")
    check = policy.checks[0].model_copy(update={"allowed": [False, "no"]})
    binding = binding_of(policy.model_copy(update={"checks": [check]}))
    expression = policy_spec(binding)["variables"][-1]["expression"]
    assert '[dyn(false), dyn("no")].exists(' in expression
    ok = request_for(pod({**PLAIN, "securityContext": {"privileged": "no"}}))
    assert verdicts(binding, ok) == []
    bad = request_for(pod({**PLAIN, "securityContext": {"privileged": "false"}}))
    assert verdicts(binding, bad) == [
        (0, 'container "app": securityContext.privileged must be unset or one of [false, "no"]')
    ]


def service_policy() -> Binding:
    policies = [p for p in catalog().policies if p.subject == "service"]
    assert policies, "the catalog has a service policy"
    return binding_of(policies[0])


def test_service_policies_match_services_only() -> None:
    binding = service_policy()
    rules = policy_spec(binding)["matchConstraints"]["resourceRules"]
    services = service(type="ClusterIP")
    assert rules == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["services"],
        }
    ]
    for operation in ("CREATE", "UPDATE"):
        assert rules_match(rules, request_for(services, operation))
    assert not rules_match(rules, request_for(pod(PLAIN)))
    pod_rules = policy_spec(binding_of(catalog().get("disallow-privileged")))["matchConstraints"]
    assert not rules_match(pod_rules["resourceRules"], request_for(services))


def test_policies_pass_objects_of_another_subject() -> None:
    """Only matching selects objects in a cluster; the CEL still judges nothing it does not
    review, as the reference semantics do (Gatekeeper may send anything its Constraint matches)."""
    nodeport = service(type="NodePort")
    for policy in catalog().policies:
        binding = example_bindings()[policy.id]
        other = pod(PRIVILEGED) if policy.subject == "service" else nodeport
        for operation in ("CREATE", "UPDATE"):
            assert verdicts(binding, request_for(other, operation)) == [], policy.id
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": {}}
    assert verdicts(binding_of(catalog().get("disallow-privileged")), request_for(config)) == []


def test_support_and_versions() -> None:
    for policy in catalog().policies:
        support = TARGET.support(policy)
        assert support.supported, policy.id
        assert ("Services" in support.reason) == (policy.subject == "service")
    assert "1.30" in TARGET.minimum_versions
    assert TARGET.name == "vap"


def test_render_is_deterministic() -> None:
    first = [(doc.file, doc.body) for doc in all_documents()]
    assert first == [(doc.file, doc.body) for doc in all_documents()]

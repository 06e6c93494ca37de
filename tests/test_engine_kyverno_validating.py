"""The Kyverno ValidatingPolicy engine: Kyverno's evaluation order, actions and autogen."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import AdmissionRequest, request_for
from polgen.engines.base import EngineError
from polgen.engines.kyverno_validating import ENGINE, PolicyResult, autogen_specs
from polgen.pipeline import load_inputs
from polgen.semantics import evaluate_policy
from polgen.targets import TARGETS

DATA = Path(__file__).parent / "data" / "cel_engine"
CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "kyverno" / "cases.yaml").read_text())
INVALID = [c for c in yaml.safe_load((DATA / "invalid" / "cases.yaml").read_text())
           if c["engine"] == "kyverno-validating"]


def _documents(folder: Path, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(folder / name), document)
        for name in names
        for document in yaml.safe_load_all((folder / name).read_text())
        if document
    ]


def _request(case: dict[str, Any]) -> AdmissionRequest:
    resource = yaml.safe_load((DATA / "resources" / case["resource"]).read_text())
    request = request_for(resource, case.get("operation", "CREATE"),
                          default_namespace=case.get("namespace", "default"))
    return dataclasses.replace(request, sub_resource=case.get("subResource", ""))


def _matches(found: Any, want: dict[str, Any]) -> bool:
    if "message" in want:
        return bool(found.message == want["message"])
    return "messageContains" not in want or want["messageContains"] in found.message


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    policies = ENGINE.load(_documents(DATA / "kyverno", case["load"]))
    request = _request(case)
    results = policies.results(request)
    assert [(r.policy, r.status) for r in results] == [
        (want["policy"], want["status"]) for want in case["results"]
    ]
    for found, want in zip(results, case["results"], strict=True):
        assert _matches(found, want), (found, want)
    violations = policies.review(request)
    assert [(v.policy, v.action) for v in violations] == [
        (want["policy"], want["action"]) for want in case["violations"]
    ]
    for violation, want in zip(violations, case["violations"], strict=True):
        assert _matches(violation, want), (violation, want)


@pytest.mark.parametrize("case", INVALID, ids=[c["file"] for c in INVALID])
def test_unsupported_or_malformed_policies_do_not_load(case: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as raised:
        ENGINE.load(_documents(DATA / "invalid", [case["file"]]))
    assert case["error"] in raised.value.reason


def _pods_spec(**extra: Any) -> dict[str, Any]:
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["pods"]}
    return {
        "matchConstraints": {"resourceRules": [rule], **extra},
        "matchConditions": [{"name": "named", "expression": "object.metadata.name != ''"}],
        "validations": [{
            "expression": "object.spec.hostPID != true && oldObject.spec.hostPID != true",
            "messageExpression": "object.metadata.namespace + '/' + object.metadata.name "
                                 "+ object.metadata.nameSuffix",
        }],
    }


def test_autogen_copies_for_pod_controllers_and_cronjobs() -> None:
    cronjobs, defaults = autogen_specs(_pods_spec())  # sorted by replacement set, as Kyverno
    assert defaults["matchConstraints"] == {"resourceRules": [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"]},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["jobs"]},
    ]}
    assert cronjobs["matchConstraints"]["resourceRules"] == [
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["cronjobs"]},
    ]
    assert defaults["validations"] == [{
        "expression": "object.spec.template.spec.hostPID != true && "
                      "oldObject.spec.template.spec.hostPID != true",
        "messageExpression": "object.metadata.namespace + '/' + object.metadata.name "
                             "+ object.spec.template.metadata.nameSuffix",
    }]
    assert cronjobs["validations"][0]["expression"].startswith(
        "object.spec.jobTemplate.spec.template.spec.hostPID != true")
    assert defaults["matchConditions"] == _pods_spec()["matchConditions"]


def test_autogen_controllers_setting() -> None:
    only = autogen_specs({**_pods_spec(), "autogen": {"podControllers": {"controllers": ["jobs"]}}})
    assert [s["matchConstraints"]["resourceRules"][0]["resources"] for s in only] == [["jobs"]]
    assert autogen_specs({**_pods_spec(), "autogen": {"podControllers": {"controllers": []}}}) == []


INELIGIBLE = [
    {"objectSelector": {"matchLabels": {"a": "b"}}},
    {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
    {"excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]},
]


@pytest.mark.parametrize("extra", INELIGIBLE)
def test_no_autogen_unless_the_match_is_exactly_pods(extra: dict[str, Any]) -> None:
    assert autogen_specs(_pods_spec(**extra)) == []


def test_no_autogen_with_a_subresource_or_more_resources() -> None:
    spec = _pods_spec()
    spec["matchConstraints"]["resourceRules"][0]["resources"] = ["pods", "pods/ephemeralcontainers"]
    assert autogen_specs(spec) == []


def test_results_are_per_policy_and_sorted() -> None:
    policies = ENGINE.load(_documents(DATA / "kyverno", ["vpol-evaluation-order.yaml"]))
    pod = request_for(yaml.safe_load((DATA / "resources" / "pod-privileged.yaml").read_text()))
    assert [r.policy for r in policies.results(pod)] == [
        "error-first", "false-first", "message-expression-error",
    ]
    assert all(isinstance(r, PolicyResult) for r in policies.results(pod))


PRIVILEGED_FIXTURES = Path(__file__).resolve().parents[1] / "catalog" / "policies" / (
    "disallow-privileged/fixtures")
ACTION_OF = {"enforce": "deny", "warn": "warn", "audit": "audit"}


@pytest.mark.parametrize("fixture", ["disallowed/breakout-privileged-container.yaml",
                                     "allowed/pod-privileged-false.yaml"])
def test_rendered_example_fleet_matches_the_reference_semantics(fixture: str) -> None:
    """polgen's ValidatingPolicy flavour for every binding of the example fleet, on a catalog Pod
    fixture: Kyverno reports the first check with offenders, as polgen.semantics words it."""
    pod = yaml.safe_load((PRIVILEGED_FIXTURES / fixture).read_text())
    checked = 0
    for plan in load_inputs().plans:
        flavoured = dataclasses.replace(plan, kyverno_flavor="ValidatingPolicy")
        documents = TARGETS["kyverno"].render(flavoured)
        policies = ENGINE.load([(d.file, d.body) for d in documents])
        for binding in plan.bindings:
            names = {d.body["metadata"]["name"] for d in documents
                     if d.body["metadata"]["annotations"]["polgen.dev/binding"] == binding.name}
            namespace = binding.namespaces[0] if binding.namespaces else "polgen-fixture"
            request = request_for(pod, default_namespace=namespace)
            found = [(v.message, v.action) for v in policies.review(request) if v.policy in names]
            expected = []
            for check in binding.policy.checks:
                single = binding.policy.model_copy(update={"checks": [check]})
                messages = evaluate_policy(single, binding.parameters, request,
                                           binding.exempt_images)
                if messages:
                    expected = [("; ".join(messages), ACTION_OF[binding.action])]
                    break
            assert found == expected, (plan.name, binding.name)
            checked += bool(expected)
    assert checked > 0 or fixture.startswith("allowed/")

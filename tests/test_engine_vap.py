"""The ValidatingAdmissionPolicy engine: matching, bindings, params, failures and actions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import AdmissionRequest, Violation, request_for
from polgen.engines.base import EngineError
from polgen.engines.vap import ENGINE
from polgen.engines.vap_match import resources_match, selector_matches
from polgen.pipeline import load_inputs
from polgen.semantics import evaluate_policy
from polgen.targets import TARGETS

DATA = Path(__file__).parent / "data" / "cel_engine"
CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "vap" / "cases.yaml").read_text())
INVALID = [c for c in yaml.safe_load((DATA / "invalid" / "cases.yaml").read_text())
           if c["engine"] == "vap"]


def _documents(folder: Path, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(folder / name), document)
        for name in names
        for document in yaml.safe_load_all((folder / name).read_text())
        if document
    ]


def _resource(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DATA / "resources" / name).read_text())
    return loaded


def request_of(case: dict[str, Any]) -> AdmissionRequest:
    """The admission request a case describes."""
    request = request_for(_resource(case["resource"]), case.get("operation", "CREATE"),
                          default_namespace=case.get("namespace", "default"))
    if request.operation == "DELETE":
        request = dataclasses.replace(request, object=None, old_object=request.object)
    return dataclasses.replace(
        request,
        sub_resource=case.get("subResource", ""),
        old_object=_resource(case["oldResource"]) if "oldResource" in case else request.old_object,
    )


def assert_violations(found: list[Violation], expected: list[dict[str, Any]]) -> None:
    """Same violations, in any order; `messageContains` matches a fragment."""
    remaining = list(found)
    for want in expected:
        match = next((v for v in remaining if v.policy == want["policy"]
                      and v.action == want["action"]
                      and (v.message == want["message"] if "message" in want
                           else want["messageContains"] in v.message)), None)
        assert match is not None, f"missing {want} in {found}"
        remaining.remove(match)
    assert not remaining, f"unexpected violations {remaining}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    policies = ENGINE.load(_documents(DATA / "vap", case["load"]))
    namespace = _resource(case["namespaceObject"]) if "namespaceObject" in case else None
    violations = policies.review(request_of(case), namespace)
    assert_violations(violations, case["violations"])
    assert all(v.rule is None for v in violations)


@pytest.mark.parametrize("case", INVALID, ids=[c["file"] for c in INVALID])
def test_unsupported_or_malformed_documents_do_not_load(case: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as raised:
        ENGINE.load(_documents(DATA / "invalid", [case["file"]]))
    assert case["error"] in raised.value.reason
    assert raised.value.source.endswith(case["file"])


def test_accepts_policies_and_bindings_of_both_versions() -> None:
    accepted = [d for _, d in _documents(DATA / "vap", ["policy-privileged.yaml",
                                                        "binding-prod.yaml", "policy-params.yaml"])
                if ENGINE.accepts(d)]
    assert [(d["apiVersion"], d["kind"]) for d in accepted] == [
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ]
    assert not ENGINE.accepts({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy"})


IN, NOT_IN = "In", "NotIn"
SELECTORS = [
    ({}, {}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": IN, "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": NOT_IN, "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": NOT_IN, "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTORS)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_namespace_selector_applies_to_namespaces_themselves_and_not_to_cluster_objects() -> None:
    match = {"namespaceSelector": {"matchLabels": {"env": "prod"}},
             "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"],
                                "resources": ["*"]}]}
    namespace = request_for(_resource("namespace-prod.yaml"))
    assert resources_match(match, namespace, None)
    other = request_for({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    assert not resources_match(match, other, None)
    node = dataclasses.replace(other, kind="Node", resource="nodes")
    assert resources_match(match, node, None)


def test_scope_cluster_and_namespaced() -> None:
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["*"]}
    pod = request_for(_resource("pod-privileged.yaml"))
    namespace = request_for(_resource("namespace-prod.yaml"))
    for scope, pod_matches, namespace_matches in (("Namespaced", True, False),
                                                  ("Cluster", False, True), ("*", True, True)):
        match = {"resourceRules": [{**rule, "scope": scope}]}
        assert resources_match(match, pod, None) is pod_matches
        assert resources_match(match, namespace, None) is namespace_matches


PRIVILEGED_FIXTURES = Path(__file__).resolve().parents[1] / "catalog" / "policies" / (
    "disallow-privileged/fixtures")
ACTION_OF = {"enforce": "deny", "warn": "warn", "audit": "audit"}


@pytest.mark.parametrize("fixture", ["disallowed/breakout-privileged-container.yaml",
                                     "allowed/pod-privileged-false.yaml"])
def test_rendered_example_fleet_matches_the_reference_semantics(fixture: str) -> None:
    """polgen's own VAP output for every binding of the example fleet, on a catalog Pod fixture:
    one violation per check with offenders, messages as polgen.semantics computes them."""
    pod = yaml.safe_load((PRIVILEGED_FIXTURES / fixture).read_text())
    checked = 0
    for plan in load_inputs().plans:
        documents = TARGETS["vap"].render(plan)
        policies = ENGINE.load([(d.file, d.body) for d in documents])
        for binding in plan.bindings:
            names = {d.body["metadata"]["name"] for d in documents
                     if d.body["kind"] == "ValidatingAdmissionPolicy"
                     and d.body["metadata"]["annotations"]["polgen.dev/binding"] == binding.name}
            namespace = binding.namespaces[0] if binding.namespaces else "polgen-fixture"
            request = request_for(pod, default_namespace=namespace)
            found = [(v.message, v.action) for v in policies.review(request) if v.policy in names]
            expected = []
            for check in binding.policy.checks:
                single = binding.policy.model_copy(update={"checks": [check]})
                messages = evaluate_policy(single, binding.parameters, request,
                                           binding.exempt_images)
                if messages:
                    expected.append(("; ".join(messages), ACTION_OF[binding.action]))
            assert found == expected, (plan.name, binding.name)
            checked += bool(expected)
    assert checked > 0 or fixture.startswith("allowed/")

"""The Kyverno ValidatingPolicy flavour: one policies.kyverno.io/v1 ValidatingPolicy per binding,
run with the real CEL runtime against every catalog fixture and the reference semantics.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from polgen.admission import request_for
from polgen.plan import Binding, ClusterPlan
from polgen.targets.kyverno_validating import MINIMUM_VERSION, render_validating_policies
from polgen.targets.vap import TARGET as VAP
from tests.celharness import (
    binding_of,
    canonical,
    catalog,
    compile_expression,
    debug_update,
    example_bindings,
    expected_failures,
    failures,
    fixture_cases,
    manifests,
    namespace_selected,
    pod,
    rules_match,
    service,
    subjects,
)


def plan_of(*bindings: Binding) -> ClusterPlan:
    return ClusterPlan("test", "", ("kyverno",), "ValidatingPolicy", bindings, ())


def policy_of(binding: Binding) -> dict[str, Any]:
    (document,) = render_validating_policies(plan_of(binding))
    assert document.file == f"validatingpolicy-{binding.name}.yaml"
    return document.body


@cache
def example_spec(policy_id: str) -> dict[str, Any]:
    """The spec of the example binding's ValidatingPolicy, rendered once per run."""
    spec: dict[str, Any] = policy_of(example_bindings()[policy_id])["spec"]
    return spec


@pytest.mark.parametrize(("policy_id", "verdict", "file"), fixture_cases(catalog()))
def test_catalog_fixture(policy_id: str, verdict: str, file: Path) -> None:
    """Each fixture as it is. The CEL and rules equal the vap target's (tested below), whose
    tests also run every fixture as every controller and debug UPDATE."""
    binding = example_bindings()[policy_id]
    spec = example_spec(policy_id)
    for manifest in manifests(file):
        request = request_for(manifest)
        assert rules_match(spec["matchConstraints"]["resourceRules"], request)
        found = canonical(failures(spec, request), binding.policy)
        assert found == canonical(expected_failures(binding, request), binding.policy)
        assert bool(found) == (verdict == "disallowed")


def test_one_policy_per_binding_with_metadata() -> None:
    bindings = tuple(example_bindings().values())
    documents = render_validating_policies(plan_of(*bindings))
    assert [doc.file for doc in documents] == [f"validatingpolicy-{b.name}.yaml" for b in bindings]
    for binding, document in zip(bindings, documents, strict=True):
        body = document.body
        assert (body["apiVersion"], body["kind"]) == ("policies.kyverno.io/v1", "ValidatingPolicy")
        assert body["metadata"] == {
            "name": f"polgen-{binding.name}",
            "labels": {"app.kubernetes.io/managed-by": "polgen"},
            "annotations": {
                "polgen.dev/policy": binding.policy.id,
                "polgen.dev/binding": binding.name,
            },
        }
        for item in body["spec"]["variables"]:
            compile_expression(item["expression"])
        for item in body["spec"]["validations"]:
            compile_expression(item["expression"])
            compile_expression(item["messageExpression"])


def test_same_cel_and_rules_as_the_vap_target() -> None:
    for binding in example_bindings().values():
        spec = policy_of(binding)["spec"]
        vap = VAP.render(plan_of(binding))[0].body["spec"]
        assert spec["variables"] == vap["variables"]
        assert spec["validations"] == vap["validations"]
        assert spec["matchConstraints"]["resourceRules"] == vap["matchConstraints"]["resourceRules"]


def test_background_evaluation_and_failure_policy() -> None:
    spec = policy_of(binding_of(catalog().get("disallow-privileged")))["spec"]
    assert spec["evaluation"] == {"admission": {"enabled": True}, "background": {"enabled": True}}
    assert spec["failurePolicy"] == "Fail"


def test_debug_subresource_and_controllers_are_listed() -> None:
    """Kyverno adds neither for ValidatingPolicies; listing them also turns vpol autogen off."""
    rules = policy_of(binding_of(catalog().get("disallow-privileged")))["spec"]["matchConstraints"]
    resources = {r for rule in rules["resourceRules"] for r in rule["resources"]}
    assert "pods/ephemeralcontainers" in resources
    assert {"deployments", "daemonsets", "statefulsets", "replicasets"} <= resources
    assert {"jobs", "cronjobs", "replicationcontrollers"} <= resources
    privileged = {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    plain = {"name": "app", "image": "ubuntu"}
    assert rules_match(
        rules["resourceRules"], debug_update(pod(plain, ephemeral=(privileged,)), pod(plain))
    )


def test_service_policies_match_services() -> None:
    policy = next(p for p in catalog().policies if p.subject == "service")
    rules = policy_of(binding_of(policy))["spec"]["matchConstraints"]["resourceRules"]
    assert [rule["resources"] for rule in rules] == [["services"]]
    nodeport = service(type="NodePort")
    for operation in ("CREATE", "UPDATE"):
        request = request_for(nodeport, operation)
        assert rules_match(rules, request)
        assert failures(policy_of(binding_of(policy))["spec"], request) != []
    assert not rules_match(rules, request_for(pod({"name": "a", "image": "x"})))


@pytest.mark.parametrize(
    ("action", "expected"), [("enforce", ["Deny"]), ("warn", ["Warn"]), ("audit", ["Audit"])]
)
def test_validation_actions(action: str, expected: list[str]) -> None:
    binding = binding_of(catalog().get("disallow-privileged"), action=action)
    assert policy_of(binding)["spec"]["validationActions"] == expected


@pytest.mark.parametrize(
    ("namespaces", "excluded", "selected", "not_selected"),
    [
        (("prd",), (), ["prd"], ["sbx", "kube-system"]),
        ((), ("kube-system",), ["prd", "sbx"], ["kube-system"]),
        ((), (), ["prd", "kube-system"], []),
    ],
)
def test_namespace_selector(
    namespaces: tuple[str, ...],
    excluded: tuple[str, ...],
    selected: list[str],
    not_selected: list[str],
) -> None:
    binding = binding_of(
        catalog().get("disallow-privileged"), namespaces=namespaces, excluded_namespaces=excluded
    )
    selector = policy_of(binding)["spec"]["matchConstraints"]["namespaceSelector"]
    assert all(namespace_selected(selector, ns) for ns in selected)
    assert not any(namespace_selected(selector, ns) for ns in not_selected)


def test_template_braces_in_data_are_not_escaped() -> None:
    """ValidatingPolicies are plain CEL: Kyverno substitutes no `{{ }}` there, so a value keeps
    its braces; a `\\{{` escape would show in messages (and is no valid CEL string escape)."""
    value = "{{ request.object.metadata.name }}"
    binding = binding_of(catalog().get("allowed-repos"), parameters={"repos": [value, "ubuntu"]})
    body = policy_of(binding)
    assert "\\{{" not in json.dumps(body)
    request = pod({"name": "app", "image": "nginx"})
    (failure,) = failures(body["spec"], subjects(request)[0])
    assert failure.message.endswith(f"(allowed: {value}, ubuntu)")


def test_minimum_version() -> None:
    assert "1.17" in MINIMUM_VERSION

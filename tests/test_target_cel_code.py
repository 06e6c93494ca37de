"""Gatekeeper's CEL (K8sNativeValidation) from the shared check library, run with the real CEL
runtime: parameters and exempt images come from the Constraint (`variables.params`), never
inlined, and every catalog fixture and check-kind table row must give the reference verdicts.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from polgen.admission import AdmissionRequest, request_for
from polgen.catalog import Policy
from polgen.checks import ParamRef
from polgen.plan import Binding
from polgen.targets import cel_code
from polgen.targets.cel_code import (
    EXEMPT_IMAGES_PARAMETER,
    ValueMode,
    gatekeeper_native_validation,
    gatekeeper_values,
    inline_values,
    unsupported_reason,
)
from tests.celharness import (
    Failure,
    TableCase,
    binding_of,
    canonical,
    catalog,
    compile_expression,
    example_bindings,
    expected_failures,
    failures,
    fixture_cases,
    manifests,
    plain_update,
    pod,
    subjects,
    table_cases,
)


def constraint(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A Constraint as Gatekeeper binds it to `params`; None: one that sets no parameters."""
    spec: dict[str, Any] = {"enforcementAction": "deny"}
    if parameters is not None:
        spec["parameters"] = parameters
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "X", "spec": spec}


def constraint_of(binding: Binding) -> dict[str, Any]:
    """The binding's parameters and exempt images as its Constraint carries them."""
    return constraint({**binding.parameters, EXEMPT_IMAGES_PARAMETER: list(binding.exempt_images)})


@cache
def source_of(policy_id: str) -> dict[str, Any]:
    """A catalog policy's code source, rendered once per test run."""
    return gatekeeper_native_validation(catalog().get(policy_id))


def judged(
    binding: Binding,
    request: AdmissionRequest,
    params: dict[str, Any],
    source: dict[str, Any] | None = None,
) -> list[Failure]:
    """The failures of the policy's Gatekeeper CEL (`source`, rendered when not given)."""
    code = gatekeeper_native_validation(binding.policy) if source is None else source
    return canonical(failures(code, request, params), binding.policy)


def expected(
    binding: Binding, request: AdmissionRequest, parameters: dict[str, Any] | None = None
) -> list[Failure]:
    return canonical(expected_failures(binding, request, parameters), binding.policy)


@pytest.mark.parametrize(("policy_id", "verdict", "file"), fixture_cases(catalog()))
def test_catalog_fixture(policy_id: str, verdict: str, file: Path) -> None:
    binding = example_bindings()[policy_id]
    params = constraint_of(binding)
    source = source_of(policy_id)
    for manifest in manifests(file):
        for request in subjects(manifest):
            where = f"{request.kind} {request.operation} {request.sub_resource}"
            found = judged(binding, request, params, source)
            assert found == expected(binding, request), where
            assert bool(found) == (verdict == "disallowed"), where
        defaults = request_for(manifest)
        without = judged(binding, defaults, constraint(None), source)
        assert without == expected(binding, defaults, {})


@pytest.mark.parametrize("case", table_cases())
def test_check_kind_table(case: TableCase) -> None:
    params = constraint(case.binding.parameters)
    policy = case.binding.policy
    source = gatekeeper_native_validation(policy)
    for request in subjects(case.manifest):
        where = f"{request.kind} {request.operation} {request.sub_resource}"
        found = judged(case.binding, request, params, source)
        assert found == canonical(case.expected(), policy), where
    update = plain_update(case.manifest)
    assert judged(case.binding, update, params, source) == expected(case.binding, update)


def test_parameters_are_read_at_run_time() -> None:
    """The template holds no binding's values: only defaults as fallbacks, read by name."""
    policy = catalog().get("allowed-repos")
    source = gatekeeper_native_validation(policy)
    text = json.dumps(source)
    assert "open-policy-agent" not in text
    names = [variable["name"] for variable in source["variables"]]
    assert names[:3] == ["constraintParameters", "paramRepos", "shownRepos"]
    binding = binding_of(policy, parameters={"repos": ["ghcr.io/org"]})
    good = request_for(pod({"name": "a", "image": "ghcr.io/org/app:1"}))
    bad = request_for(pod({"name": "a", "image": "ubuntu:24.04"}))
    assert judged(binding, good, constraint_of(binding)) == []
    assert judged(binding, bad, constraint_of(binding)) == expected(binding, bad) != []


def test_a_constraint_without_parameters_uses_the_defaults() -> None:
    policy = catalog().get("restrict-capabilities")
    binding = binding_of(policy)
    added = {"securityContext": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}}
    request = request_for(pod({"name": "a", "image": "x", **added}))
    for params in (constraint(None), constraint({})):
        assert judged(binding, request, params) == [
            Failure(
                0, 'container "a": securityContext.capabilities.add may not contain "SYS_ADMIN"'
            )
        ]


CONTROL = "".join(chr(code) for code in [*range(1, 32), *range(127, 160), 0x2028, 0x2029, 0xFEFF])
TRICKY = ['quote"d', "back\\slash", "{{ x }}", "ünïcode", "'single'", CONTROL]


def test_parameter_values_stay_data() -> None:
    policy = catalog().get("restrict-capabilities")
    binding = binding_of(policy, parameters={"allowedCapabilities": TRICKY})
    added = {"securityContext": {"capabilities": {"add": [*TRICKY, "SYS_ADMIN"]}}}
    request = request_for(pod({"name": "a", "image": "x", **added}))
    assert judged(binding, request, constraint_of(binding)) == [
        Failure(0, 'container "a": securityContext.capabilities.add may not contain "SYS_ADMIN"')
    ]


def test_messages_show_run_time_parameters_exactly_as_to_json() -> None:
    """Every character to_json escapes (controls, quotes, YAML-unsafe ones) is escaped alike."""
    policy = Policy.model_validate(
        {
            "id": "paths",
            "title": "Paths",
            "description": "d",
            "severity": "low",
            "category": "test",
            "parameters": {
                "paths": {"type": "array", "items": "string", "description": "d", "default": []}
            },
            "checks": [
                {
                    "kind": "pod-list-field",
                    "list": "volumes",
                    "field": "hostPath.path",
                    "allowed": {"param": "paths"},
                }
            ],
        }
    )
    binding = binding_of(policy, parameters={"paths": TRICKY})
    volume = {"name": "v", "hostPath": {"path": "/"}}
    request = request_for(pod({"name": "a", "image": "x"}, volumes=[volume]))
    found = judged(binding, request, constraint_of(binding))
    assert found == expected(binding, request) != []
    assert "\\u2028" in json.dumps(found[0].message)
    assert "\\u001f" in json.dumps(found[0].message)
    empty = binding_of(policy, parameters={"paths": []})
    assert judged(empty, request, constraint_of(empty)) == [
        Failure(0, 'spec.volumes item "v": hostPath.path must be unset')
    ]


@pytest.mark.parametrize(
    ("patterns", "exempt"),
    [(["ubuntu:24.04"], True), (["ubuntu:*"], True), (["ubuntu"], False), ([], False)],
)
def test_exempt_images_come_from_the_constraint(patterns: list[str], exempt: bool) -> None:
    binding = binding_of(catalog().get("disallow-privileged"), exempt_images=tuple(patterns))
    privileged = {"name": "a", "image": "ubuntu:24.04", "securityContext": {"privileged": True}}
    request = request_for(pod(privileged))
    assert (judged(binding, request, constraint_of(binding)) == []) == exempt
    assert judged(binding, request, constraint_of(binding)) == expected(binding, request)


def test_delete_and_connect_are_not_judged() -> None:
    binding = binding_of(catalog().get("disallow-privileged"))
    privileged = pod({"name": "a", "image": "x", "securityContext": {"privileged": True}})
    delete = request_for(privileged, "DELETE")
    delete = AdmissionRequest(**{**delete.__dict__, "object": None, "old_object": privileged})
    assert judged(binding, delete, constraint_of(binding)) == []
    exec_options = {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"]}
    connect = request_for(exec_options, "CONNECT")
    assert judged(binding, connect, constraint_of(binding)) == []


def test_every_catalog_policy_compiles_with_one_validation_per_check() -> None:
    for policy in catalog().policies:
        source = gatekeeper_native_validation(policy)
        assert sorted(source) == ["validations", "variables"]
        assert len(source["validations"]) == len(policy.checks)
        for variable in source["variables"]:
            compile_expression(variable["expression"])
        for validation in source["validations"]:
            compile_expression(validation["expression"])
            compile_expression(validation["messageExpression"])
            assert validation["message"].startswith(f"{policy.id}: ")
        assert source == gatekeeper_native_validation(policy)


def test_value_modes() -> None:
    policy = catalog().get("allowed-repos")
    binding = binding_of(policy, parameters={"repos": ["a"]}, exempt_images=("x*",))
    inline = inline_values(binding)
    assert inline == ValueMode(True, {"repos": ["a"]}, ("x*",))
    assert inline.resolve(ParamRef(param="repos")) == ["a"]
    assert not inline.is_runtime(ParamRef(param="repos"))
    assert inline.runtime_parameters(policy) == []
    runtime = gatekeeper_values(policy)
    assert runtime.parameters == policy.default_parameters()
    assert runtime.is_runtime(ParamRef(param="repos"))
    assert not runtime.is_runtime(["literal"])
    assert runtime.runtime_parameters(policy) == ["repos"]


def test_unsupported_kinds_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = catalog().get("allowed-repos")
    assert unsupported_reason(policy) is None
    monkeypatch.setattr(cel_code, "cel_check_kinds", lambda: frozenset({"pod-field"}))
    assert unsupported_reason(policy) == "no CEL template for check kind image-repository"

"""Run rendered CEL policies (ValidatingAdmissionPolicy, Kyverno ValidatingPolicy) with the real
CEL runtime, cel-expr-python, for the target tests.

Test support, not an admission engine: it evaluates a policy's `variables` in order and then each
validation and its messageExpression against one request, as the API server and Kyverno do, and
matches `resourceRules` and In/NotIn namespace selectors. Any CEL error fails the test. It also
turns catalog fixtures into requests and asks the reference semantics what they should yield.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from polgen.admission import AdmissionRequest, request_for
from polgen.catalog import Catalog, Policy
from polgen.pipeline import load_inputs
from polgen.plan import Binding
from polgen.semantics import evaluate_policy


@cache
def environment() -> cel.Env:
    """The variables Kubernetes and Kyverno declare, with optional types and the strings ext."""
    return cel.NewEnv(
        variables={
            "object": cel.Type.DYN,
            "oldObject": cel.Type.DYN,
            "request": cel.Type.DYN,
            "variables": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
        },
        extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings()],
    )


@cache
def compile_expression(expression: str) -> cel.Expression:
    """Compile (parse and type-check) one expression; raises on invalid CEL."""
    return environment().compile(expression)


def evaluate(expression: str, data: dict[str, Any]) -> Any:
    """The plain Python value of an expression; a CEL runtime error raises."""
    value = compile_expression(expression).eval(data=data)
    if value.type() == cel.Type.ERROR:
        raise AssertionError(f"CEL error {value.plain_value()!r} in: {expression}")
    return value.plain_value()


@dataclass(frozen=True)
class Failure:
    """A validation that evaluated to false, and its message."""

    index: int
    message: str


def failures(spec: dict[str, Any], request: AdmissionRequest) -> list[Failure]:
    """Every failed validation of a policy spec for one request (after matching)."""
    data: dict[str, Any] = {
        "object": request.object,
        "oldObject": request.old_object,
        "request": request.to_review(),
    }
    variables: dict[str, Any] = {}
    for variable in spec.get("variables", []):
        variables[variable["name"]] = evaluate(
            variable["expression"], {**data, "variables": variables}
        )
    data["variables"] = variables
    found = []
    for index, validation in enumerate(spec["validations"]):
        passed = evaluate(validation["expression"], data)
        if passed is not True:
            assert passed is False, f"validation {index} returned {passed!r}"
            found.append(Failure(index, evaluate(validation["messageExpression"], data)))
    return found


def rules_match(rules: list[dict[str, Any]], request: AdmissionRequest) -> bool:
    """Does any resourceRule name the request's group, version, resource and operation?"""
    resource = request.resource + (f"/{request.sub_resource}" if request.sub_resource else "")
    return any(
        request.group in rule["apiGroups"]
        and request.version in rule["apiVersions"]
        and request.operation in rule["operations"]
        and resource in rule["resources"]
        for rule in rules
    )


def namespace_selected(selector: dict[str, Any], namespace: str) -> bool:
    """A namespaceSelector of `kubernetes.io/metadata.name` In / NotIn expressions."""
    for expression in selector.get("matchExpressions", []):
        assert expression["key"] == "kubernetes.io/metadata.name", expression
        inside = namespace in expression["values"]
        if inside != (expression["operator"] == "In"):
            return False
    return True


CONTROLLERS: dict[str, str] = {
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "ReplicationController": "v1",
    "CronJob": "batch/v1",
}
"""Every pod controller and its apiVersion."""


def as_controller(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    """The Pod's spec as the pod template of a controller of `kind`."""
    template = {"metadata": {"labels": {"app": "fixture"}}, "spec": pod["spec"]}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@hourly", "jobTemplate": {"spec": spec}}
    return {
        "apiVersion": CONTROLLERS[kind],
        "kind": kind,
        "metadata": {"name": pod["metadata"]["name"], "namespace": "prd"},
        "spec": spec,
    }


def debug_update(pod: dict[str, Any], old: dict[str, Any]) -> AdmissionRequest:
    """The pods/ephemeralcontainers UPDATE `kubectl debug` sends."""
    return dataclasses.replace(
        request_for(pod, "UPDATE"), old_object=old, sub_resource="ephemeralcontainers"
    )


def subjects(manifest: dict[str, Any]) -> list[AdmissionRequest]:
    """CREATE of the manifest and, for a Pod, of every controller around it; a Pod with
    ephemeral containers also as the pods/ephemeralcontainers UPDATE that adds them."""
    requests = [request_for(manifest)]
    if manifest["kind"] != "Pod":
        return requests
    requests.extend(request_for(as_controller(manifest, kind)) for kind in CONTROLLERS)
    if manifest["spec"].get("ephemeralContainers"):
        old = {**manifest, "spec": {**manifest["spec"], "ephemeralContainers": []}}
        requests.append(debug_update(manifest, old))
    return requests


def expected_failures(binding: Binding, request: AdmissionRequest) -> list[Failure]:
    """The failed validations the reference semantics (polgen.semantics) ask for: one per check
    with offenders, its messages joined with "; "."""
    expected = []
    for index, check in enumerate(binding.policy.checks):
        single = binding.policy.model_copy(update={"checks": [check]})
        messages = evaluate_policy(single, binding.parameters, request, binding.exempt_images)
        if messages:
            expected.append(Failure(index, "; ".join(messages)))
    return expected


def fixture_cases(catalog: Catalog) -> list[Any]:
    """pytest params (policy id, verdict, file) for every catalog fixture that exists now."""
    return [
        pytest.param(policy_id, verdict, file, id=f"{policy_id}/{verdict}/{file.stem}")
        for policy_id, entry in catalog.entries.items()
        for verdict in ("allowed", "disallowed")
        for file in entry.fixtures(verdict)
    ]


def manifests(file: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(file.read_text()) if document]


@cache
def catalog() -> Catalog:
    return load_inputs().catalog


@cache
def example_bindings() -> dict[str, Binding]:
    """One binding per policy from the example fleet: the parameters the fixtures assume."""
    found: dict[str, Binding] = {}
    for plan in load_inputs().plans:
        for binding in plan.bindings:
            found.setdefault(binding.policy.id, binding)
    return found


def binding_of(policy: Policy, **changes: Any) -> Binding:
    """An enforcing binding of `policy` in namespace prd with its defaults, then `changes`."""
    base = Binding(
        cluster="test",
        group="grp",
        policy=policy,
        parameters=policy.default_parameters(),
        action="enforce",
        namespaces=("prd",),
        excluded_namespaces=(),
        exempt_images=(),
    )
    return dataclasses.replace(base, **changes)


def pod(
    *containers: dict[str, Any], ephemeral: tuple[dict[str, Any], ...] = (), **spec: Any
) -> dict[str, Any]:
    """A Pod manifest in namespace prd."""
    body: dict[str, Any] = {"containers": list(containers), **spec}
    if ephemeral:
        body["ephemeralContainers"] = list(ephemeral)
    metadata = {"name": "p", "namespace": "prd"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body}

"""Run rendered CEL policies (ValidatingAdmissionPolicy, Kyverno ValidatingPolicy, Gatekeeper
K8sNativeValidation) with the real CEL runtime, cel-expr-python, for the target tests.

Test support, not an admission engine: it evaluates a policy's `variables` in order and then each
validation and its messageExpression against one request, as the API server, Kyverno and
Gatekeeper do, and matches `resourceRules` and In/NotIn namespace selectors. Variables are lazy
there, so a variable whose evaluation fails is left unset and only fails the expression that reads
it; any CEL error in a validation fails the test. It also turns catalog fixtures into requests and
asks the reference semantics what they should yield.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from polgen.admission import AdmissionRequest, request_for
from polgen.catalog import Catalog, Parameter, Policy
from polgen.pipeline import load_inputs
from polgen.plan import Binding
from polgen.semantics import evaluate_policy

STRINGS_VERSION = 2
"""The strings extension version of the Kubernetes CEL environment (ext.StringsVersion(2))."""

GATEKEEPER_VARIABLES: dict[str, str] = {
    "params": "has(params.spec) && has(params.spec.parameters) ? params.spec.parameters : null",
    "anyObject": "object == null ? oldObject : object",
}
"""The variables Gatekeeper declares before a template's own: `params` is the Constraint."""

UNORDERED_KINDS = frozenset({"pod-annotation", "pod-list-keys"})
"""Kinds whose messages follow map keys, which CEL iterates in no defined order."""


@cache
def environment() -> cel.Env:
    """The variables Kubernetes, Kyverno and Gatekeeper declare, with optional types and the
    strings ext."""
    return cel.NewEnv(
        variables={
            "object": cel.Type.DYN,
            "oldObject": cel.Type.DYN,
            "request": cel.Type.DYN,
            "params": cel.Type.DYN,
            "variables": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
        },
        extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings(STRINGS_VERSION)],
    )


@cache
def compile_expression(expression: str) -> cel.Expression:
    """Compile (parse and type-check) one expression; raises on invalid CEL."""
    return environment().compile(expression)


class CelError(AssertionError):
    """A CEL runtime error."""


@cache
def references(expression: str) -> tuple[frozenset[str], frozenset[str]]:
    """The top-level variables and the `variables.<name>` an expression may read."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression))
    names = set(re.findall(r"variables\.([A-Za-z_][A-Za-z0-9_]*)", expression))
    return frozenset(words & TOP_LEVEL), frozenset(names)


TOP_LEVEL = frozenset({"object", "oldObject", "request", "params", "variables"})


def evaluate(expression: str, data: dict[str, Any]) -> Any:
    """The plain Python value of an expression; a CEL runtime error raises CelError.

    Only the data the expression reads is handed to CEL: converting a whole object for every
    expression would dominate the test run time.
    """
    top, names = references(expression)
    used = {key: data[key] for key in top if key in data}
    if "variables" in used:
        used["variables"] = {k: v for k, v in used["variables"].items() if k in names}
    value = compile_expression(expression).eval(data=used)
    if value.type() == cel.Type.ERROR:
        raise CelError(f"CEL error {value.plain_value()!r} in: {expression}")
    return value.plain_value()


@dataclass(frozen=True)
class Failure:
    """A validation that evaluated to false, and its message."""

    index: int
    message: str


def failures(
    spec: dict[str, Any], request: AdmissionRequest, constraint: dict[str, Any] | None = None
) -> list[Failure]:
    """Every failed validation of a policy spec (or Gatekeeper code source) for one request, after
    matching. With a `constraint`, Gatekeeper's variables come first, `params` being it."""
    data: dict[str, Any] = {
        "object": request.object,
        "oldObject": request.old_object,
        "request": request.to_review(),
        "params": constraint,
    }
    declared = [{"name": k, "expression": v} for k, v in GATEKEEPER_VARIABLES.items()]
    variables: dict[str, Any] = {}
    for variable in (declared if constraint is not None else []) + spec.get("variables", []):
        compile_expression(variable["expression"])
        try:
            variables[variable["name"]] = evaluate(
                variable["expression"], {**data, "variables": variables}
            )
        except CelError:
            continue
    data["variables"] = variables
    found = []
    for index, validation in enumerate(spec["validations"]):
        passed = evaluate(validation["expression"], data)
        if passed is not True:
            assert passed is False, f"validation {index} returned {passed!r}"
            found.append(Failure(index, evaluate(validation["messageExpression"], data)))
    return found


def canonical(found: list[Failure], policy: Policy) -> list[Failure]:
    """Failures comparable across engines: the messages of kinds that follow map keys sorted."""
    return [
        Failure(f.index, "; ".join(sorted(f.message.split("; "))))
        if policy.checks[f.index].kind in UNORDERED_KINDS
        else f
        for f in found
    ]


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
    """The Pod's spec, labels and annotations as the pod template of a controller of `kind`."""
    metadata = pod.get("metadata") or {}
    template_metadata = {k: metadata[k] for k in ("labels", "annotations") if k in metadata}
    template = {"metadata": template_metadata, "spec": pod["spec"]}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@hourly", "jobTemplate": {"spec": spec}}
    controller_metadata = {"name": metadata.get("name", "p")}
    if "namespace" in metadata:
        controller_metadata["namespace"] = metadata["namespace"]
    return {
        "apiVersion": CONTROLLERS[kind],
        "kind": kind,
        "metadata": controller_metadata,
        "spec": spec,
    }


def debug_update(pod: dict[str, Any], old: dict[str, Any]) -> AdmissionRequest:
    """The pods/ephemeralcontainers UPDATE `kubectl debug` sends."""
    return dataclasses.replace(
        request_for(pod, "UPDATE"), old_object=old, sub_resource="ephemeralcontainers"
    )


def plain_update(manifest: dict[str, Any]) -> AdmissionRequest:
    """An UPDATE without subresource that leaves the object as it is (a label edit)."""
    return dataclasses.replace(request_for(manifest, "UPDATE"), old_object=manifest)


def subjects(manifest: dict[str, Any]) -> list[AdmissionRequest]:
    """CREATE of the manifest and, for a Pod, of every controller around it; a Pod with
    ephemeral containers also as the pods/ephemeralcontainers UPDATE that adds them; any other
    object also as its UPDATE (workloads and Services are judged on every UPDATE)."""
    requests = [request_for(manifest)]
    if manifest["kind"] != "Pod":
        return [*requests, plain_update(manifest)]
    requests.extend(request_for(as_controller(manifest, kind)) for kind in CONTROLLERS)
    if (manifest.get("spec") or {}).get("ephemeralContainers"):
        old = {**manifest, "spec": {**manifest["spec"], "ephemeralContainers": []}}
        requests.append(debug_update(manifest, old))
    return requests


def expected_failures(
    binding: Binding, request: AdmissionRequest, parameters: dict[str, Any] | None = None
) -> list[Failure]:
    """The failed validations the reference semantics (polgen.semantics) ask for: one per check
    with offenders, its messages joined with "; ". `parameters` replace the binding's."""
    values = binding.parameters if parameters is None else parameters
    expected = []
    for index, check in enumerate(binding.policy.checks):
        single = binding.policy.model_copy(update={"checks": [check]})
        messages = evaluate_policy(single, values, request, binding.exempt_images)
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
    """The documents of a fixture file (a fresh copy each time: tests may build on them)."""
    documents: list[dict[str, Any]] = copy.deepcopy(_parsed(file))
    return documents


@cache
def _parsed(file: Path) -> list[Any]:
    """The non-empty YAML documents of a file, parsed once per run."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [document for document in yaml.load_all(file.read_text(), Loader=loader) if document]


@cache
def catalog() -> Catalog:
    return load_inputs().catalog


@cache
def example_bindings() -> dict[str, Binding]:
    """One binding per policy: the example fleet's, or the policy's defaults in namespace prd
    for a policy no cluster binds (opt-in policies). The fixtures assume these parameters."""
    found: dict[str, Binding] = {}
    for plan in load_inputs().plans:
        for binding in plan.bindings:
            found.setdefault(binding.policy.id, binding)
    for policy in catalog().policies:
        found.setdefault(policy.id, binding_of(policy))
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
    *containers: dict[str, Any],
    ephemeral: tuple[dict[str, Any], ...] = (),
    metadata: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Pod manifest in namespace prd; `metadata` adds to its name and namespace."""
    body: dict[str, Any] = {"containers": list(containers), **spec}
    if ephemeral:
        body["ephemeralContainers"] = list(ephemeral)
    meta = {"name": "p", "namespace": "prd", **(metadata or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def service(**spec: Any) -> dict[str, Any]:
    """A Service manifest in namespace prd."""
    metadata = {"name": "s", "namespace": "prd"}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


TABLES = Path(__file__).parent / "data" / "cel_checks"
"""Per check kind, tables of tricky cases and the exact messages every CEL target must give."""


@dataclass(frozen=True)
class TableCase:
    """One row of a check-kind table: a binding of a one-check policy, the object, and the
    messages its only validation must fail with (none: it passes)."""

    binding: Binding
    manifest: dict[str, Any]
    messages: tuple[str, ...]

    def expected(self) -> list[Failure]:
        return [Failure(0, "; ".join(self.messages))] if self.messages else []


def _table_case(table: dict[str, Any], case: dict[str, Any]) -> TableCase:
    parameters = {
        name: Parameter.model_validate(declared)
        for name, declared in table.get("parameters", {}).items()
    }
    policy = Policy(
        id="table",
        title=table["title"],
        description=table["title"],
        severity="low",
        category="test",
        parameters=parameters,
        checks=[table["check"]],
    )
    values = {**policy.default_parameters(), **table.get("values", {}), **case.get("values", {})}
    if "service" in case:
        manifest = service(**case["service"])
    else:
        manifest = pod(metadata=case.get("metadata"))
        manifest["spec"] = case["spec"]
    return TableCase(binding_of(policy, parameters=values), manifest, tuple(case["messages"]))


def table_cases() -> list[Any]:
    """pytest params of every row of every table in tests/data/cel_checks/<kind>.yaml."""
    params = []
    for file in sorted(TABLES.glob("*.yaml")):
        for table in _parsed(file)[0]:
            for case in table["cases"]:
                name = f"{file.stem}/{table['title']}/{case['name']}"
                params.append(pytest.param(_table_case(table, case), id=name))
    return params

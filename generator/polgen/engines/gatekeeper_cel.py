"""Gatekeeper's K8sNativeValidation engine: a ConstraintTemplate's CEL, evaluated per Constraint.

As the constraint framework's `k8scel` driver does, with the API server's validator (the same
semantics as the `vap` engine: matchConditions, then every validation; a false validation is a
violation with its messageExpression, message or `failed expression: ...`; an evaluation error is
a violation under failurePolicy Fail, the default, and ignored under Ignore):

- the environment is the ValidatingAdmissionPolicy one: `object`, `oldObject`, `request`,
  `namespaceObject` (the request's Namespace when given, null for cluster-scoped objects) and
  `params`, the whole Constraint;
- two variables come first: `variables.params` (the Constraint's `spec.parameters`, null when
  unset) and `variables.anyObject` (`object`, or `oldObject` on a DELETE without object); a
  template may not define these names or any starting `gatekeeper_internal_`;
- `params` itself is declared only for variables: Gatekeeper compiles validations, message
  expressions and `matchCondition` entries without it, so a direct reference fails there. Such a
  template is refused here instead of reporting an error on every request.

The template's matchConditions are read from `source.matchCondition` (Gatekeeper's JSON key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polgen.engines.base import EngineError
from polgen.engines.cel_admission import (
    ADMISSION_VARIABLES,
    CelPolicyExpressions,
    validation_failures,
)
from polgen.engines.cel_runtime import (
    CelCompileError,
    PreparedActivation,
    compile_expression,
    to_cel,
)

Json = dict[str, Any]
RESERVED_PREFIX = "gatekeeper_internal_"
GATEKEEPER_VARIABLES: tuple[Json, ...] = (
    {"name": "params",
     "expression": "!has(params.spec) ? null : !has(params.spec.parameters) ? null : "
                   "params.spec.parameters"},
    {"name": "anyObject",
     "expression": 'has(request.operation) && request.operation == "DELETE" && object == null '
                   "? oldObject : object"},
)
"""The variables Gatekeeper defines before a template's own, in its words."""
_RESERVED_NAMES = frozenset(variable["name"] for variable in GATEKEEPER_VARIABLES)
_WITHOUT_PARAMS = (*(name for name in ADMISSION_VARIABLES if name != "params"), "variables")
_FAILURE_POLICIES = ("Fail", "Ignore")


@dataclass(frozen=True)
class CompiledCel:
    """One ConstraintTemplate's K8sNativeValidation code, compiled."""

    kind: str
    source: str
    expressions: CelPolicyExpressions
    fail_on_error: bool

    def violations(self, review: Json, constraint: Json, namespace: Json | None) -> list[str]:
        """The violation messages of one Constraint (`constraint`, the whole document) for the
        review (Gatekeeper's AdmissionRequest, object included)."""
        data = PreparedActivation(ADMISSION_VARIABLES, activation(review, constraint, namespace))
        return validation_failures(self.expressions, data, self.fail_on_error)


def activation(review: Json, constraint: Json, namespace: Json | None) -> Json:
    """The CEL variables for a review: `request` is the review without its objects, with the
    empty-string defaults of a typed AdmissionRequest (audit, gator and expanded resources carry
    no operation)."""
    request = {key: value for key, value in review.items()
               if key not in ("object", "oldObject", "namespaceObject")}
    for key in ("uid", "name", "namespace", "operation", "subResource", "requestSubResource"):
        request.setdefault(key, "")
    request.setdefault("requestKind", request.get("kind"))
    request.setdefault("requestResource", request.get("resource"))
    request.setdefault("userInfo", {})
    namespaced = bool(request["namespace"])
    data: Json = to_cel({
        "object": review.get("object"),
        "oldObject": review.get("oldObject"),
        "request": request,
        "params": constraint,
        "namespaceObject": namespace if namespaced else None,
    })
    return data


def _entries(source: str, kind: str, code: Mapping[str, Any], key: str) -> list[Json]:
    entries = code.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise EngineError(source, f"{kind}: K8sNativeValidation source.{key} must be a list of "
                          "mappings")
    return entries


def _check_names(source: str, kind: str, variables: list[Json], conditions: list[Json]) -> None:
    for variable in variables:
        name = str(variable.get("name") or "")
        if name in _RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
            raise EngineError(source, f"{kind}: variable name {name!r} is reserved by Gatekeeper "
                              f"({', '.join(sorted(_RESERVED_NAMES))} and the {RESERVED_PREFIX} "
                              "prefix)")
    for condition in conditions:
        name = str(condition.get("name") or "")
        if name.startswith(RESERVED_PREFIX):
            raise EngineError(source, f"{kind}: matchCondition name {name!r} may not start with "
                              f"{RESERVED_PREFIX}")


def _check_no_direct_params(source: str, kind: str, field: str, expression: Any) -> None:
    try:
        compile_expression(str(expression), _WITHOUT_PARAMS)
    except CelCompileError as error:
        if re.search(r"undeclared reference to 'params\b", error.reason):
            raise EngineError(source, f"{kind}: {field} reads `params`, which Gatekeeper declares "
                              "only for variables (use variables.params for the Constraint's "
                              "parameters)") from None


def _template_fields(reason: str) -> str:
    """A compile error names fields of the composed spec; name the template's own instead."""
    reason = re.sub(r"spec\.variables\[(\d+)\]",
                    lambda m: f"variables[{int(m.group(1)) - len(GATEKEEPER_VARIABLES)}]", reason)
    return reason.replace("spec.matchConditions[", "matchCondition[").replace(
        "spec.validations[", "validations[")


def compile_native_validation(source: str, kind: str, code: Mapping[str, Any]) -> CompiledCel:
    """Compile the `source` of a K8sNativeValidation entry; EngineError when Gatekeeper would not
    accept it or the offline CEL environment cannot evaluate it."""
    variables = _entries(source, kind, code, "variables")
    conditions = _entries(source, kind, code, "matchCondition")
    validations = _entries(source, kind, code, "validations")
    _check_names(source, kind, variables, conditions)
    failure_policy = code.get("failurePolicy") or "Fail"
    if failure_policy not in _FAILURE_POLICIES:
        raise EngineError(source, f"{kind}: unrecognized failurePolicy {failure_policy!r} "
                          f"(expected {' or '.join(_FAILURE_POLICIES)})")
    for index, validation in enumerate(validations):
        for key in ("expression", "messageExpression"):
            if validation.get(key):
                _check_no_direct_params(source, kind, f"validations[{index}].{key}",
                                        validation[key])
    for index, condition in enumerate(conditions):
        _check_no_direct_params(source, kind, f"matchCondition[{index}]",
                                condition.get("expression"))
    spec = {"variables": [*GATEKEEPER_VARIABLES, *variables], "matchConditions": conditions,
            "validations": validations}
    try:
        expressions = CelPolicyExpressions.compile(spec, ADMISSION_VARIABLES)
    except CelCompileError as error:
        raise EngineError(source, f"{kind}: K8sNativeValidation does not compile: "
                          f"{_template_fields(error.reason)}") from None
    except (KeyError, TypeError) as error:
        raise EngineError(source, f"{kind}: malformed K8sNativeValidation source "
                          f"({error})") from None
    return CompiledCel(kind, source, expressions, failure_policy == "Fail")

"""The CEL parts of admission policies: the variables the API server binds (`object`, `request`,
...) and a policy's matchConditions, variables, validations and auditAnnotations, compiled and
evaluated the way ValidatingAdmissionPolicy does, for every engine that speaks it (VAP, Kyverno
ValidatingPolicy and `validate.cel`, Gatekeeper's CEL templates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polgen.admission import AdmissionRequest
from polgen.engines.cel_runtime import (
    Bindings,
    CelEvaluationError,
    CelProgram,
    PreparedActivation,
    to_cel,
)
from polgen.engines.cel_variables import ScopedProgram, VariableScope

ADMISSION_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject")


def admission_activation(
    request: AdmissionRequest, namespace: dict[str, Any] | None, params: Any = None
) -> dict[str, Any]:
    """`object`, `oldObject`, `request`, `params`, `namespaceObject` as the API server binds them.

    `request` is the AdmissionRequest without its objects (they are separate variables), with the
    empty-string defaults of a typed request; `namespaceObject` is null when cluster-scoped.
    """
    review = request.to_review()
    del review["object"], review["oldObject"]
    review.setdefault("subResource", "")
    review.setdefault("requestSubResource", "")
    activation: dict[str, Any] = to_cel(
        {
            "object": request.object,
            "oldObject": request.old_object,
            "request": review,
            "params": params,
            "namespaceObject": namespace if request.namespace else None,
        }
    )
    return activation


@dataclass(frozen=True)
class CelValidation:
    """One `validations[]` entry, compiled (expression and message read the policy variables)."""

    expression: str
    program: ScopedProgram
    message: str
    message_program: ScopedProgram | None
    reason: str


@dataclass(frozen=True)
class CelPolicyExpressions:
    """The CEL parts admission policies share: matchConditions, variables, validations and
    auditAnnotations (the `spec` of ValidatingAdmissionPolicy and Kyverno ValidatingPolicy)."""

    match_conditions: tuple[tuple[str, CelProgram], ...]
    validations: tuple[CelValidation, ...]
    audit_annotations: tuple[tuple[str, ScopedProgram], ...]

    @classmethod
    def compile(cls, spec: Mapping[str, Any], names: Sequence[str]) -> CelPolicyExpressions:
        """Compile a policy spec; raises CelCompileError naming the failing field."""
        scope = VariableScope(names)
        for index, variable in enumerate(spec.get("variables") or []):
            scope.define(f"spec.variables[{index}]", str(variable["name"]),
                         str(variable["expression"]))
        conditions = tuple(
            (str(c["name"]), scope.compile(f"spec.matchConditions[{i}]", str(c["expression"]),
                                           with_variables=False).program)
            for i, c in enumerate(spec.get("matchConditions") or [])
        )
        validations = tuple(
            _validation(f"spec.validations[{i}]", v, scope)
            for i, v in enumerate(spec.get("validations") or [])
        )
        annotations = tuple(
            (str(a["key"]), scope.compile(f"spec.auditAnnotations[{i}]", str(a["valueExpression"])))
            for i, a in enumerate(spec.get("auditAnnotations") or [])
        )
        return cls(conditions, validations, annotations)

    def match(self, data: Bindings) -> tuple[bool, str | None]:
        """matchConditions: any false skips, errors matter only when none is false."""
        errors: list[str] = []
        for name, program in self.match_conditions:
            try:
                result = program.evaluate_prepared(data)
            except CelEvaluationError as error:
                errors.append(f"matchCondition {name!r}: {error.reason}")
                continue
            if result is False:
                return False, None
            if result is not True:
                errors.append(f"matchCondition {name!r} must evaluate to bool")
        return (False, "; ".join(errors)) if errors else (True, None)


def _validation(where: str, entry: Mapping[str, Any], scope: VariableScope) -> CelValidation:
    expression = str(entry["expression"])
    message_expression = entry.get("messageExpression")
    return CelValidation(
        expression=expression,
        program=scope.compile(f"{where}.expression", expression),
        message=str(entry.get("message") or ""),
        message_program=None if not message_expression else scope.compile(
            f"{where}.messageExpression", str(message_expression)
        ),
        reason=str(entry.get("reason") or ""),
    )


def validation_failures(
    expressions: CelPolicyExpressions, data: PreparedActivation, fail_on_error: bool
) -> list[str]:
    """Every failure message of one evaluation, Kubernetes style (all validations run)."""
    matched, error = expressions.match(data)
    if error is not None:
        return [error] if fail_on_error else []
    if not matched:
        return []
    failures: list[str] = []
    for validation in expressions.validations:
        try:
            result = validation.program.evaluate_prepared(data)
            if not isinstance(result, bool):
                raise CelEvaluationError(f"expected a bool, got {type(result).__name__}")
        except CelEvaluationError as failure:
            if fail_on_error:
                failures.append(
                    f"expression '{validation.expression}' resulted in error: {failure.reason}"
                )
            continue
        if not result:
            failures.append(failure_message(validation, data))
    for key, program in expressions.audit_annotations:
        try:
            value = program.evaluate_prepared(data)
            if value is not None and not isinstance(value, str):
                raise CelEvaluationError("valueExpression must evaluate to a string or null")
        except CelEvaluationError as failure:
            if fail_on_error:
                failures.append(f"auditAnnotation {key!r} resulted in error: {failure.reason}")
    return failures


def failure_message(validation: CelValidation, data: PreparedActivation) -> str:
    """messageExpression if it yields a non-blank single line, else message, else the expression."""
    if validation.message_program is not None:
        try:
            text = validation.message_program.evaluate_prepared(data)
        except CelEvaluationError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return text
    return validation.message or f"failed expression: {validation.expression.strip()}"

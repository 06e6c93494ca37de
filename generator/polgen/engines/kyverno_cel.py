"""`validate.cel` rules of a ClusterPolicy, on polgen's shared CEL runtime.

The rule's `cel.variables` and `cel.expressions` and its `celPreconditions` are compiled like a
ValidatingAdmissionPolicy's variables, validations and matchConditions. A false precondition
skips the rule, a false expression fails it (its message, messageExpression or Kyverno's
"failed expression" text), a runtime error makes the rule error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from polgen.engines.base import EngineError
from polgen.engines.cel_admission import ADMISSION_VARIABLES, CelPolicyExpressions
from polgen.engines.cel_runtime import CelEvaluationError, to_cel
from polgen.engines.kyverno_context import KyvernoRequest


@dataclass(frozen=True)
class CelOutcome:
    status: Literal["pass", "fail", "skip", "error"]
    message: str


def compile_rule(source: str, where: str, rule: dict[str, Any]) -> CelPolicyExpressions:
    cel = (rule.get("validate") or {}).get("cel") or {}
    if cel.get("paramKind") or cel.get("paramRef"):
        raise EngineError(
            source, f"{where}: validate.cel parameters (paramKind/paramRef) are not supported"
        )
    spec = {
        "variables": cel.get("variables") or [],
        "matchConditions": rule.get("celPreconditions") or [],
        "validations": cel.get("expressions") or [],
        "auditAnnotations": cel.get("auditAnnotations") or [],
    }
    try:
        return CelPolicyExpressions.compile(spec, ADMISSION_VARIABLES)
    except EngineError as exc:
        raise EngineError(source, f"{where}: {exc.reason}") from None


def activation(request: KyvernoRequest, namespace: dict[str, Any] | None) -> dict[str, Any]:
    review: dict[str, Any] = {
        "operation": request.operation,
        "kind": {"group": request.group, "version": request.version, "kind": request.kind},
        "namespace": request.namespace,
        "name": request.name,
        "subResource": request.subresource,
        "userInfo": request.user_info or {},
    }
    data: dict[str, Any] = to_cel(
        {
            "object": request.object,
            "oldObject": request.old_object,
            "request": review,
            "params": None,
            "namespaceObject": namespace if request.namespace else None,
        }
    )
    return data


def evaluate(
    expressions: CelPolicyExpressions, data: dict[str, Any], rule_message: str = ""
) -> CelOutcome:
    matched, error = expressions.match(data)
    if error is not None:
        return CelOutcome("error", error)
    if not matched:
        return CelOutcome("skip", "cel preconditions not met")
    for validation in expressions.validations:
        try:
            outcome = validation.program.evaluate_prepared(data)
        except CelEvaluationError as failure:
            return CelOutcome(
                "error", f"expression '{validation.expression}' resulted in error: {failure.reason}"
            )
        if not isinstance(outcome, bool):
            return CelOutcome(
                "error", f"expression '{validation.expression}' must evaluate to bool"
            )
        if not outcome:
            return CelOutcome("fail", _message(validation, data, rule_message))
    return CelOutcome("pass", "")


def _message(validation: Any, data: dict[str, Any], rule_message: str) -> str:
    if validation.message_program is not None:
        try:
            text = validation.message_program.evaluate_prepared(data)
        except CelEvaluationError as failure:
            return f"failed to evaluate message expression: {failure.reason}"
        if isinstance(text, str) and text.strip():
            return text
    text = validation.message or rule_message
    return text or f"failed expression: {validation.expression.strip()}"

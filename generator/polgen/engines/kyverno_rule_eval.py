"""Evaluate one matched rule, including Kyverno's allowExistingViolations replay on UPDATE.

When the rule's action is Enforce, the request is an UPDATE and `validate.allowExistingViolations`
is not false (its default is true), a failing rule is replayed on the old object as a CREATE; if
the old object matched and failed too, the rule is skipped. That keeps an already-violating Pod
updatable, and it also lets a violating ephemeral container through `kubectl debug` into a Pod
that was admitted while the policy audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polgen.engines.base import EngineError
from polgen.engines.kyverno_cel import activation, compile_rule
from polgen.engines.kyverno_cel import evaluate as evaluate_cel
from polgen.engines.kyverno_conditions import evaluate_conditions
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_jmespath import JMESPathError
from polgen.engines.kyverno_pss import evaluate as evaluate_pss
from polgen.engines.kyverno_pss import failure_message, pod_of
from polgen.engines.kyverno_rules import RuleBody, RuleResult, load_context
from polgen.engines.kyverno_variables import SubstitutionError


def evaluate_rule(
    rule: dict[str, Any],
    request: KyvernoRequest,
    namespace: dict[str, Any] | None,
    enforce: bool,
    matches_old: Callable[[KyvernoRequest], bool],
) -> RuleResult | None:
    """The rule response, or None when Kyverno reports nothing for this rule."""
    result = _evaluate(rule, request, namespace)
    validate = rule.get("validate") or {}
    if (
        result is not None
        and result.status == "fail"
        and enforce
        and request.operation == "UPDATE"
        and validate.get("allowExistingViolations") is not False
        and request.old_object
    ):
        old = request.as_old_create()
        if matches_old(old):
            prior = _evaluate(rule, old, namespace)
            if prior is not None and prior.status == "fail":
                return RuleResult(
                    result.rule,
                    "skip",
                    "skipping the rule evaluation as pre-existing violations are allowed",
                )
    return result


def _evaluate(
    rule: dict[str, Any], request: KyvernoRequest, namespace: dict[str, Any] | None
) -> RuleResult | None:
    name = str(rule.get("name", ""))
    validate = rule.get("validate") or {}
    if validate.get("podSecurity") is not None or validate.get("cel") is not None:
        return _special(rule, request, namespace)
    if not any(validate.get(k) is not None for k in ("deny", "pattern", "anyPattern", "foreach")):
        return _gate(rule, request, name, request.context())
    body = {**validate, "context": rule.get("context") or []}
    return RuleBody(rule, request).run(body, request.context(), rule.get("preconditions"))


def _gate(
    rule: dict[str, Any], request: KyvernoRequest, name: str, context: dict[str, Any]
) -> RuleResult | None:
    """Context entries and preconditions: a result when they stop the rule, else None."""
    try:
        load_context(rule.get("context") or [], context, request.deleting)
    except (JMESPathError, SubstitutionError) as exc:
        return RuleResult(name, "error", f"failed to load context: {exc}")
    if rule.get("preconditions") is None:
        return None
    try:
        outcome = evaluate_conditions(rule["preconditions"], context, request.deleting)
    except SubstitutionError as exc:
        return RuleResult(name, "error", f"failed to evaluate preconditions: {exc}")
    if not outcome.holds:
        return RuleResult(name, "skip", "; ".join(("preconditions not met", *outcome.messages)))
    return None


def _special(
    rule: dict[str, Any], request: KyvernoRequest, namespace: dict[str, Any] | None
) -> RuleResult | None:
    name = str(rule.get("name", ""))
    validate = rule["validate"]
    gate = _gate(rule, request, name, request.context())
    if gate is not None:
        return gate
    if validate.get("podSecurity") is not None:
        if request.deleting:
            return None
        definition = validate["podSecurity"]
        failures = evaluate_pss(definition, pod_of(request.resource, request.kind))
        if failures:
            return RuleResult(name, "fail", failure_message(name, definition, failures))
        return RuleResult(name, "pass", f"Validation rule '{name}' passed.")
    try:
        expressions = compile_rule("policy", f"rule {name!r}", rule)
    except EngineError as exc:
        return RuleResult(name, "error", exc.reason)
    outcome = evaluate_cel(
        expressions, activation(request, namespace), str(validate.get("message") or "")
    )
    return RuleResult(name, outcome.status, outcome.message)

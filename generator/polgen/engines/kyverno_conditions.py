"""Condition blocks: `preconditions` and `deny.conditions` ({any, all} or a legacy list).

Each condition's key and value are substituted on their own, so `any` stops at the first true
condition and `all` at the first false one before a later condition can fail to resolve. A
resolution failure (e.g. JMESPath's `Unknown key`) is an error, never a false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polgen.engines.kyverno_operators import evaluate
from polgen.engines.kyverno_variables import substitute


@dataclass(frozen=True)
class ConditionsOutcome:
    """Whether the block holds, and the `message` of the conditions that decided it."""

    holds: bool
    messages: tuple[str, ...] = ()


def _blocks(conditions: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    if isinstance(conditions, list):
        return None, conditions
    if isinstance(conditions, dict):
        return conditions.get("any"), conditions.get("all")
    return None, None


def _one(condition: dict[str, Any], context: dict[str, Any], deleting: bool) -> bool:
    key = substitute(condition.get("key"), context, deleting)
    value = substitute(condition.get("value"), context, deleting)
    return evaluate(key, str(condition.get("operator", "")), value)


def evaluate_conditions(
    conditions: Any, context: dict[str, Any], deleting: bool = False
) -> ConditionsOutcome:
    """Evaluate a condition block; raises SubstitutionError when a variable does not resolve."""
    any_block, all_block = _blocks(conditions)
    messages: list[str] = []
    if any_block is not None:
        decided = next((c for c in any_block if _one(c, context, deleting)), None)
        if decided is None:
            return ConditionsOutcome(
                False, tuple(str(c.get("message")) for c in any_block if c.get("message"))
            )
        if decided.get("message"):
            messages.append(str(decided["message"]))
    for condition in all_block or []:
        if not _one(condition, context, deleting):
            return ConditionsOutcome(
                False, (str(condition["message"]),) if condition.get("message") else ()
            )
        if condition.get("message"):
            messages.append(str(condition["message"]))
    return ConditionsOutcome(True, tuple(messages))

"""Kyverno's condition operators (preconditions, deny.conditions), names case-insensitive.

Equality is typed by the key: a string key compares as a duration, then a quantity, then as a
wildcard with the *value* as the pattern. Set operators print every element like Go's
fmt.Sprint and match wildcards in both directions, so a resource value holding `*` can satisfy
an allow-list. A null key (JMESPath null) is false for every operator, NotEquals included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from polgen.engines.k8s_quantity import parse_quantity
from polgen.engines.kyverno_scalars import (
    go_equal,
    go_parse_float,
    go_sprint,
    parse_duration,
    wildcard_match,
)
from polgen.engines.kyverno_semver import parse_version
from polgen.engines.kyverno_value_pattern import IN_RANGE, NOT_IN_RANGE, matches_condition

_SECOND = Fraction(10**9)


def _duration_pair(key: Any, value: Any) -> tuple[Fraction, Fraction] | None:
    """Kyverno's parseDuration: one side a duration string (not "0"), numbers as seconds."""

    def as_duration(side: Any) -> Fraction | None:
        return parse_duration(side) if isinstance(side, str) and side != "0" else None

    key_duration, value_duration = as_duration(key), as_duration(value)
    if key_duration is None and value_duration is None:
        return None

    key_duration = key_duration if key_duration is not None else as_seconds(key)
    value_duration = value_duration if value_duration is not None else as_seconds(value)
    if key_duration is None or value_duration is None:
        return None
    return key_duration, value_duration


def as_seconds(side: Any) -> Fraction | None:
    """A number on one side of a duration comparison counts whole seconds."""
    if not _is_number(side) or side in (float("inf"), float("-inf")) or side != side:
        return None
    return Fraction(int(side)) * _SECOND


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equals(key: Any, value: Any) -> bool:
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if _is_number(key):
        if _is_number(value):
            return float(key) == float(value)
        parsed = go_parse_float(value) if isinstance(value, str) else None
        return parsed is not None and parsed == float(key)
    if isinstance(key, str):
        return _string_equals(key, value)
    if isinstance(key, dict | list):
        return go_equal(key, value)
    return False


def _string_equals(key: str, value: Any) -> bool:
    durations = _duration_pair(key, value)
    if durations is not None:
        return durations[0] == durations[1]
    key_quantity = parse_quantity(key)
    if key_quantity is not None and isinstance(value, str):
        value_quantity = parse_quantity(value)
        return value_quantity is not None and key_quantity == value_quantity
    return isinstance(value, str) and wildcard_match(value, key)


def not_equals(key: Any, value: Any) -> bool:
    return key is not None and not equals(key, value)


def _ordered(key: Any, value: Any) -> int | None:
    """-1/0/1 comparing key to value the way the numeric operators do; None if incomparable."""
    if isinstance(key, str):
        durations = _duration_pair(key, value)
        if durations is not None:
            return _sign(durations[0] - durations[1])
        key_quantity = parse_quantity(key)
        value_quantity = parse_quantity(value) if isinstance(value, str) else None
        if key_quantity is not None and value_quantity is not None:
            return _sign(key_quantity - value_quantity)
        as_number = go_parse_float(key)
        if as_number is not None:
            return _ordered(as_number, value)
        return _ordered_versions(key, value)
    if not _is_number(key):
        return None
    if _is_number(value):
        return _float_order(key, value)
    if isinstance(value, str):
        durations = _duration_pair(key, value)
        if durations is not None:
            return _sign(durations[0] - durations[1])
        parsed = go_parse_float(value)
        return None if parsed is None else _float_order(key, parsed)
    return None


def _float_order(key: float, value: float) -> int | None:
    """Go compares float64s: NaN orders against nothing (every numeric operator is false)."""
    left, right = float(key), float(value)
    if left != left or right != right:
        return None
    return (left > right) - (left < right)


def _ordered_versions(key: str, value: Any) -> int | None:
    try:
        key_version = parse_version(key)
        value_version = parse_version(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if value_version is None:
        return None
    return (key_version > value_version) - (key_version < value_version)


def _sign(number: Fraction) -> int:
    return (number > 0) - (number < 0)


def _numeric(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def compare(key: Any, value: Any) -> bool:
        order = _ordered(key, value)
        return order is not None and test(order)

    return compare


def _duration_only(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    """Deprecated Duration* operators: both sides durations (numbers are seconds)."""

    def compare(key: Any, value: Any) -> bool:
        def seconds(side: Any) -> Fraction | None:
            return parse_duration(side) if isinstance(side, str) else as_seconds(side)

        left, right = seconds(key), seconds(value)
        return left is not None and right is not None and test(_sign(left - right))

    return compare


def _keys(key: Any) -> list[str] | None:
    if isinstance(key, list):
        return [go_sprint(item) for item in key]
    if isinstance(key, str) or _is_number(key):
        return [go_sprint(key)]
    return None


def _membership(keys: list[str], value: Any) -> list[bool] | None:
    """For each key: is it in the value (a list, a JSON list, a range or a single string)?"""
    if isinstance(value, list):
        allowed = [go_sprint(item) for item in value]
        return [any(_wild_either(k, v) for v in allowed) for k in keys]
    if not isinstance(value, str):
        return None
    if len(keys) == 1 and keys[0] == value:
        return [True]
    if IN_RANGE.match(value) or NOT_IN_RANGE.match(value):
        return [matches_condition(k, value) for k in keys]
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = [value]
    if not isinstance(parsed, list):
        parsed = [value]
    allowed = [go_sprint(item) for item in parsed]
    return [any(_wild_either(k, v) for v in allowed) for k in keys]


def _wild_either(key: str, value: str) -> bool:
    return wildcard_match(key, value) or wildcard_match(value, key)


def _set(combine: Callable[[list[bool]], bool]) -> Callable[[Any, Any], bool]:
    def compare(key: Any, value: Any) -> bool:
        keys = _keys(key)
        found = None if keys is None else _membership(keys, value)
        return found is not None and combine(found)

    return compare


def _legacy_in(key: Any, value: Any) -> bool:
    """Deprecated In: every key exactly equal to some value (no wildcards)."""
    keys = _keys(key)
    if keys is None:
        return False
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    if not isinstance(value, list):
        return False
    allowed = {go_sprint(item) for item in value}
    return all(k in allowed for k in keys)


def _legacy_not_in(key: Any, value: Any) -> bool:
    return _keys(key) is not None and not _legacy_in(key, value)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equal": equals,
    "equals": equals,
    "notequal": not_equals,
    "notequals": not_equals,
    "anyin": _set(any),
    "allin": _set(all),
    "anynotin": _set(lambda found: not all(found)),
    "allnotin": _set(lambda found: not any(found)),
    "in": _legacy_in,
    "notin": _legacy_not_in,
    "greaterthan": _numeric(lambda order: order > 0),
    "greaterthanorequals": _numeric(lambda order: order >= 0),
    "lessthan": _numeric(lambda order: order < 0),
    "lessthanorequals": _numeric(lambda order: order <= 0),
    "durationgreaterthan": _duration_only(lambda order: order > 0),
    "durationgreaterthanorequals": _duration_only(lambda order: order >= 0),
    "durationlessthan": _duration_only(lambda order: order < 0),
    "durationlessthanorequals": _duration_only(lambda order: order <= 0),
}


def is_operator(name: str) -> bool:
    return name.lower() in OPERATORS


def evaluate(key: Any, operator: str, value: Any) -> bool:
    """One condition; the operator must be known (checked when the policy loads)."""
    if key is None:
        return False
    return OPERATORS[operator.lower()](key, value)

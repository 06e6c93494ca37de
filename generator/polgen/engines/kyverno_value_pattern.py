"""One resource value against one pattern leaf (Kyverno's pattern.Validate).

A string leaf is a small language: `|` alternatives of `&` conjunctions of `>=`, `<=`, `>`, `<`,
`!` comparisons, `a-b` / `a!-b` ranges and wildcard equality. Each comparison is tried as a Go
duration, then as a Kubernetes quantity, then as a string; a missing value counts as "0" for the
first two (so `"<10"` holds on a missing key while `">0"` fails).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from polgen.engines.k8s_quantity import parse_quantity
from polgen.engines.kyverno_scalars import (
    parse_duration,
    wildcard_match,
)

_ENDPOINT = r"[-+]?\d+(?:\.\d+)?[A-Za-z]*"
IN_RANGE = re.compile(rf"\A({_ENDPOINT})-({_ENDPOINT})\Z")
NOT_IN_RANGE = re.compile(rf"\A({_ENDPOINT})!-({_ENDPOINT})\Z")
_PREFIXES = (">=", "<=", ">", "<", "!")

_COMPARE: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "": lambda a, b: a == b,
    "!": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def operator_of(pattern: str) -> str:
    """The comparison a pattern string starts with ('' is equality), or 'range' / 'not-range'."""
    if len(pattern) >= 2:
        for prefix in _PREFIXES:
            if pattern.startswith(prefix):
                return prefix
    if IN_RANGE.match(pattern):
        return "range"
    if NOT_IN_RANGE.match(pattern):
        return "not-range"
    return ""


def matches(value: Any, pattern: Any) -> bool:
    """Does a resource value satisfy a scalar pattern (bool, number, null, map or string)?"""
    if isinstance(pattern, bool):
        return isinstance(value, bool) and value == pattern
    if isinstance(pattern, int | float):
        return _matches_number(value, float(pattern))
    if pattern is None:
        return _matches_null(value)
    if isinstance(pattern, dict):
        return isinstance(value, dict)
    if isinstance(pattern, str):
        return _matches_string(value, pattern)
    return False


def _matches_number(value: Any, pattern: float) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return float(value) == pattern
    if isinstance(value, str):
        try:
            return float(value) == pattern
        except ValueError:
            return False
    return False


def _matches_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return value == ""
    return False


def _matches_string(value: Any, pattern: str) -> bool:
    if isinstance(value, str) and value == pattern:
        return True
    for alternative in pattern.split("|"):
        conjunction = alternative.strip(" ")
        if all(matches_condition(value, part.strip(" ")) for part in conjunction.split("&")):
            return True
    return False


def matches_condition(value: Any, condition: str) -> bool:
    """One operator-prefixed condition or range, without `|` / `&`."""
    operator = operator_of(condition)
    in_range = IN_RANGE.match(condition) if operator == "range" else None
    if in_range is not None:
        return matches_condition(value, ">= " + in_range.group(1)) and matches_condition(
            value, "<= " + in_range.group(2)
        )
    not_in_range = NOT_IN_RANGE.match(condition) if operator == "not-range" else None
    if not_in_range is not None:
        return matches_condition(value, "< " + not_in_range.group(1)) or matches_condition(
            value, "> " + not_in_range.group(2)
        )
    operand = condition[len(operator) :].strip()
    for compare in (_compare_duration, _compare_quantity):
        outcome = compare(value, operand, operator)
        if outcome is not None:
            return outcome
    return _compare_string(value, operand, operator)


def _number_text(value: Any) -> str | None:
    """Kyverno's convertNumberToString: nil is "0", floats print with six decimals."""
    if value is None:
        return "0"
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:f}"
    return None


def _compare_duration(value: Any, operand: str, operator: str) -> bool | None:
    expected = parse_duration(operand)
    text = _number_text(value)
    actual = parse_duration(text) if expected is not None and text is not None else None
    if expected is None or actual is None:
        return None
    return _COMPARE[operator](actual, expected)


def _compare_quantity(value: Any, operand: str, operator: str) -> bool | None:
    expected = parse_quantity(operand)
    text = _number_text(value)
    actual = parse_quantity(text) if expected is not None and text is not None else None
    if expected is None or actual is None:
        return None
    return _COMPARE[operator](actual, expected)


def _compare_string(value: Any, operand: str, operator: str) -> bool:
    if operator not in ("", "!"):
        return False
    text = _string_form(value)
    if text is None:
        return False
    found = wildcard_match(operand, text)
    return not found if operator == "!" else found


def _string_form(value: Any) -> str | None:
    """How compareString prints a value: Go %E for floats, bools as words, nil not at all."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_exponent(value)
    return str(value)


def _go_exponent(value: float) -> str:
    """strconv.FormatFloat(v, 'E', -1, 64): the shortest round-trip digits, e.g. 1E+00."""
    for precision in range(17):
        candidate = f"{value:.{precision}E}"
        if float(candidate) == value:
            return candidate
    return f"{value:.17E}"

"""Kyverno's scalar vocabulary: wildcards, Go durations, Kubernetes quantities, Go printing.

Every comparison Kyverno makes on a single value goes through one of these, so they reproduce
the Go libraries' edge cases (a bare "0" is a duration, `?` is exactly one character, floats
print like Go's `fmt.Sprint`) rather than Python's defaults.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any


@cache
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = ["\\A"]
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    parts.append("\\Z")
    return re.compile("".join(parts), re.DOTALL)


def wildcard_match(pattern: str, text: str) -> bool:
    """Kyverno's wildcard: `*` is any run of any characters (`/` and `:` included), `?` one."""
    return _wildcard_regex(pattern).match(text) is not None


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


_DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> Fraction | None:
    """Go's time.ParseDuration in nanoseconds; None when Go would return an error."""
    rest = text
    sign = 1
    if rest[:1] in "+-" and rest:
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return Fraction(0)
    if not rest:
        return None
    total = Fraction(0)
    position = 0
    while position < len(rest):
        found = _DURATION_PART.match(rest, position)
        if found is None:
            return None
        total += Fraction(found.group(1)) * _DURATION_UNITS[found.group(2)]
        position = found.end()
    return sign * total


_QUANTITY = re.compile(r"\A([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?\Z")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def parse_quantity(text: str) -> Fraction | None:
    """Kubernetes resource.ParseQuantity as an exact number; None when it would not parse."""
    found = _QUANTITY.match(text)
    if found is None:
        return None
    sign, number, suffix = found.groups()
    value = Fraction(number)
    if suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= _DECIMAL[suffix]
    elif suffix:
        value *= Fraction(10) ** int(suffix[1:])
    return -value if sign == "-" else value


def go_float(value: float) -> str:
    """Go's `%v` for a float64: shortest digits, exponent form from 1e+06 up or below 1e-04."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    parsed = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exponent = parsed.as_tuple()
    digits = "".join(str(digit) for digit in digit_tuple)
    point = len(digits) + int(exponent)
    magnitude = point - 1
    if magnitude < -4 or magnitude >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_sprint(value: Any) -> str:
    """Go's fmt.Sprint of a JSON value as Kyverno holds it (numbers are float64)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(item) for item in value) + "]"
    if isinstance(value, dict):
        items = " ".join(f"{key}:{go_sprint(value[key])}" for key in sorted(value))
        return "map[" + items + "]"
    return str(value)

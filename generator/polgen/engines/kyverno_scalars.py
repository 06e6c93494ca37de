"""Kyverno's scalar vocabulary: wildcards, Go durations, Kubernetes quantities, Go printing.

Every comparison Kyverno makes on a single value goes through one of these, so they reproduce
the Go libraries' edge cases (a bare "0" is a duration, `?` is exactly one character, floats
print like Go's `fmt.Sprint`) rather than Python's defaults.
"""

from __future__ import annotations

import re
import struct
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
    plain = isinstance(pattern, str) and "*" not in pattern and "?" not in pattern
    if plain and isinstance(text, str):
        return pattern == text
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


def go_equal(left: Any, right: Any) -> bool:
    """reflect.DeepEqual on decoded JSON (numbers all float64): a bool never equals a number,
    as Python's `0 == False` would have it, at any depth."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float) or isinstance(right, int | float):
        both = isinstance(left, int | float) and isinstance(right, int | float)
        return both and float(left) == float(right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(go_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(go_equal(left[k], right[k]) for k in left)
    if left is None or right is None:
        return left is None and right is None
    return type(left) is type(right) and bool(left == right)


_DIGITS = r"\d(?:_?\d)*"
_HEX_DIGITS = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_GO_DECIMAL = re.compile(
    rf"\A[+-]?({_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?\Z"
)
_GO_HEX = re.compile(
    rf"\A[+-]?0[xX](_?{_HEX_DIGITS}\.?(?:{_HEX_DIGITS})?|\.{_HEX_DIGITS})[pP][+-]?{_DIGITS}\Z"
)
_GO_SPECIAL = re.compile(r"\A([+-]?(inf|infinity)|nan)\Z", re.IGNORECASE)


def go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64); None where Go returns an error: surrounding spaces, an
    underscore not between digits, a sign on NaN, a finite text beyond float64 range."""
    if _GO_SPECIAL.match(text):
        return float(text)
    try:
        if _GO_HEX.match(text):
            return float.fromhex(text.replace("_", ""))
    except OverflowError:
        return None
    if not _GO_DECIMAL.match(text):
        return None
    value = float(text)
    return None if value in (float("inf"), float("-inf")) else value


def go_float32_text(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 32): the shortest digits that round-trip as a float32,
    in plain notation; how Kyverno's regex and wildcard functions print a number argument."""
    if value != value:
        return "NaN"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = value * float("inf")
    if single in (float("inf"), float("-inf")):
        return "+Inf" if single > 0 else "-Inf"
    for digits in range(1, 10):
        candidate = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == single:
            break
    return format(Decimal(candidate), "f")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}
_JSON_ESCAPES.update({"\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_JSON_ESCAPES.update({"\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_json(value: Any) -> str:
    """encoding/json.Marshal of decoded JSON: sorted keys, numbers as float64 (`1`, `1e+21`,
    `1e-7`), and `<`, `>`, `&`, U+2028/2029 escaped. ValueError for NaN and infinities."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _json_number(float(value))
    if isinstance(value, str):
        return '"' + "".join(_json_char(char) for char in value) + '"'
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (go_json(str(key)) + ":" + go_json(value[key]) for key in sorted(value))
        return "{" + ",".join(items) + "}"
    raise ValueError(f"json: unsupported type {type(value).__name__}")


def _json_char(char: str) -> str:
    if char in _JSON_ESCAPES:
        return _JSON_ESCAPES[char]
    return f"\\u{ord(char):04x}" if ord(char) < 0x20 else char


def _json_number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"json: unsupported value: {go_float(value)}")
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)), "f").removesuffix(".0")
    mantissa, exponent = f"{Decimal(repr(value)).normalize():E}".split("E")
    digits = mantissa.lower()
    power = int(exponent)
    return f"{digits}e{'-' if power < 0 else '+'}{abs(power):02d}".replace("e-0", "e-")

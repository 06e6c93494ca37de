"""Kyverno's custom JMESPath functions that policies use, on top of the standard library.

A function Kyverno has but polgen does not (time_*, x509_decode, random, ...) stays unknown:
calling it raises, and the rule reports error, never pass. Arithmetic is plain numbers only;
Kyverno's quantity and duration arithmetic raises here for the same reason. Values compare the
way Go compares decoded JSON (a bool is never a number), and regular expressions run with Go's
RE2 semantics (`kyverno_regex`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import posixpath
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from jmespath import functions

from polgen.engines.kyverno_regex import GoRegexp, RegexError, compile_go, replace_all
from polgen.engines.kyverno_scalars import go_equal, go_float32_text, wildcard_match
from polgen.engines.kyverno_semver import satisfies
from polgen.imageref import parse_image

F = TypeVar("F", bound=Callable[..., Any])


class KyvernoFunctionError(Exception):
    """A Kyverno function rejected its arguments (Kyverno reports the rule as error)."""


def signature(*types: list[str]) -> Callable[[F], F]:
    """jmespath's @signature, typed: one list of allowed JMESPath types per argument."""

    def record(function: F) -> F:
        function.signature = tuple({"types": allowed} for allowed in types)  # type: ignore[attr-defined]
        return function

    return record


def _text(value: Any, name: str) -> str:
    """Kyverno's ifaceToString: a number prints as a float32 in plain notation (`1000000`,
    never `1e+06`), a bool as true/false; anything else is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_float32_text(float(value))
    raise KyvernoFunctionError(f"{name}: {value!r} is not a string or a number")


def _regex(pattern: str, name: str) -> GoRegexp:
    try:
        return compile_go(pattern)
    except RegexError as exc:
        raise KyvernoFunctionError(f"{name}: {exc}") from exc


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KyvernoFunctionError(f"{name}: only plain numbers are supported, got {value!r}")
    return value


class KyvernoFunctions(functions.Functions):  # type: ignore[misc]
    """The standard JMESPath functions plus Kyverno's string, regex, encoding and data helpers."""

    @signature(["string"], ["string"])
    def _func_compare(self, a: str, b: str) -> int:
        return (a > b) - (a < b)

    @signature(["string"], ["string"])
    def _func_equal_fold(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold()

    @signature(["string"], ["string"], ["string"], ["number"])
    def _func_replace(self, text: str, old: str, new: str, count: float) -> str:
        return text.replace(old, new, int(count)) if count >= 0 else text.replace(old, new)

    @signature(["string"], ["string"], ["string"])
    def _func_replace_all(self, text: str, old: str, new: str) -> str:
        return text.replace(old, new)

    @signature(["string"])
    def _func_to_upper(self, text: str) -> str:
        return text.upper()

    @signature(["string"])
    def _func_to_lower(self, text: str) -> str:
        return text.lower()

    @signature(["string"], ["string"])
    def _func_trim(self, text: str, cutset: str) -> str:
        return text.strip(cutset)

    @signature(["string"], ["string"])
    def _func_trim_prefix(self, text: str, prefix: str) -> str:
        return text.removeprefix(prefix)

    @signature(["string"], ["string"])
    def _func_split(self, text: str, separator: str) -> list[str]:
        return list(text) if separator == "" else text.split(separator)

    @signature(["array", "string"], [])
    def _func_contains(self, subject: Any, search: Any) -> bool:
        """go-jmespath: substring for a string subject (false for a non-string search),
        reflect.DeepEqual membership for an array."""
        if isinstance(subject, str):
            return isinstance(search, str) and search in subject
        return any(go_equal(item, search) for item in subject)

    @signature(["string"], ["string", "number"])
    def _func_regex_match(self, pattern: str, value: Any) -> bool:
        return bool(_regex(pattern, "regex_match").search(_text(value, "regex_match")))

    @signature(["string"], ["string", "number"], ["string", "number"])
    def _func_regex_replace_all(self, pattern: str, value: Any, replacement: Any) -> str:
        name = "regex_replace_all"
        text, template = _text(value, name), _text(replacement, name)
        return replace_all(_regex(pattern, name), text, template, literal=False)

    @signature(["string"], ["string", "number"], ["string", "number"])
    def _func_regex_replace_all_literal(self, pattern: str, value: Any, replacement: Any) -> str:
        name = "regex_replace_all_literal"
        text, template = _text(value, name), _text(replacement, name)
        return replace_all(_regex(pattern, name), text, template, literal=True)

    @signature(["string"], ["string", "number"])
    def _func_pattern_match(self, pattern: str, value: Any) -> bool:
        return wildcard_match(pattern, _text(value, "pattern_match"))

    @signature(["object"], ["object"])
    def _func_label_match(self, selector: dict[str, Any], labels: dict[str, Any]) -> bool:
        """Go compares the interface values: a bool never equals a number, and two maps or two
        arrays cannot be compared at all (Go panics; here: an error)."""
        for key, value in selector.items():
            if key not in labels:
                return False
            actual = labels[key]
            if isinstance(value, dict | list) and type(actual) is type(value):
                raise KyvernoFunctionError("label_match: comparing uncomparable values")
            if not go_equal(actual, value):
                return False
        return True

    @signature(["string"])
    def _func_to_boolean(self, text: str) -> bool:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise KyvernoFunctionError(f"to_boolean: {text!r} is not a boolean")
        return lowered == "true"

    @signature([], [])
    def _func_add(self, a: Any, b: Any) -> Any:
        return _number(a, "add") + _number(b, "add")

    @signature([], [])
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return _number(a, "subtract") - _number(b, "subtract")

    @signature([], [])
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return _number(a, "multiply") * _number(b, "multiply")

    @signature([], [])
    def _func_divide(self, a: Any, b: Any) -> Any:
        divisor = _number(b, "divide")
        if divisor == 0:
            raise KyvernoFunctionError("divide: division by zero")
        return _number(a, "divide") / divisor

    @signature([], [])
    def _func_modulo(self, a: Any, b: Any) -> Any:
        divisor = _number(b, "modulo")
        if divisor == 0 or not float(a).is_integer() or not float(divisor).is_integer():
            raise KyvernoFunctionError("modulo: needs non-zero whole numbers")
        return math.fmod(_number(a, "modulo"), divisor)

    @signature(["number"], ["number"])
    def _func_round(self, value: float, digits: float) -> float:
        scale = float(10 ** int(digits))
        rounded: float = math.floor(value * scale + 0.5) / scale
        return rounded

    @signature(["string"])
    def _func_base64_decode(self, text: str) -> str:
        try:
            return base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise KyvernoFunctionError(f"base64_decode: {exc}") from exc

    @signature(["string"])
    def _func_base64_encode(self, text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    @signature(["string"])
    def _func_path_canonicalize(self, text: str) -> str:
        return posixpath.normpath(text) if text else "."

    @signature(["string"], ["number"])
    def _func_truncate(self, text: str, length: float) -> str:
        return text[: max(0, int(length))]

    @signature(["string"], ["string"])
    def _func_semver_compare(self, version: str, constraint: str) -> bool:
        try:
            return satisfies(version, constraint)
        except ValueError as exc:
            raise KyvernoFunctionError(f"semver_compare: {exc}") from exc

    @signature(["string"])
    def _func_parse_json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise KyvernoFunctionError(f"parse_json: {exc}") from exc

    @signature(["string"])
    def _func_parse_yaml(self, text: str) -> Any:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KyvernoFunctionError(f"parse_yaml: {exc}") from exc

    @signature(["object", "array"], ["string"], ["string"])
    def _func_items(self, data: Any, key_name: str, value_name: str) -> list[dict[str, Any]]:
        pairs = sorted(data.items()) if isinstance(data, dict) else list(enumerate(data))
        return [{key_name: key, value_name: value} for key, value in pairs]

    @signature(["array"], ["array"])
    def _func_object_from_lists(self, keys: list[Any], values: list[Any]) -> dict[str, Any]:
        return {
            _text(key, "object_from_lists"): values[i] if i < len(values) else None
            for i, key in enumerate(keys)
        }

    @signature(["object", "array"], ["string", "number"])
    def _func_lookup(self, data: Any, key: Any) -> Any:
        if isinstance(data, dict):
            return data.get(key) if isinstance(key, str) else None
        if isinstance(key, int | float) and float(key).is_integer() and 0 <= int(key) < len(data):
            return data[int(key)]
        return None

    @signature(["string"])
    def _func_image_normalize(self, image: str) -> str:
        ref = parse_image(image)
        name = f"{ref.registry}/{ref.path}"
        return f"{name}@{ref.digest}" if ref.digest else f"{name}:{ref.tag or 'latest'}"

    @signature(["string"])
    def _func_sha256(self, text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    @signature(["string"])
    def _func_sha1(self, text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    @signature(["string"])
    def _func_md5(self, text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

"""Kyverno's `$(...)` reference and `{{ }}` variable substitution (pkg/engine/variables/vars.go).

Every string of the substituted value goes through both passes, map keys included. References
come first: an escaped `\\$(...)` loses its backslash; an unescaped `$(...)` would be resolved
against the pattern document, which polgen does not do (an error, never a silent pass).
Variables then: a string that is exactly one variable takes the variable's typed value as it
is, not scanned again; otherwise every round resolves the variables found, splices them in as
text (Go's JSON for non-strings) and scans again, so a value may produce a further variable. At
the end `\\{{ }}` escapes lose their backslash. On a DELETE every `request.object` in a variable
reads `request.oldObject`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from polgen.engines.kyverno_jmespath import JMESPathError, query
from polgen.engines.kyverno_scalars import go_json

_VARIABLE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
_ESCAPED_VARIABLE = re.compile(r"\\\{\{(\{[^{}]*\}|[^{}])*\}\}")
_REFERENCE = re.compile(r"^\$\(.[^ ]*\)|[^\\]\$\(.[^ ]*\)")
_ESCAPED_REFERENCE = re.compile(r"\\\$\(.[^ ]*\)")
_MAX_ROUNDS = 1000


class SubstitutionError(Exception):
    """A variable could not be resolved: Kyverno reports the rule as error."""


def has_reference(text: str) -> bool:
    """Does the string hold an unescaped `$(...)` pattern reference?"""
    return _REFERENCE.search(text) is not None


def substitute(value: Any, context: dict[str, Any], deleting: bool = False) -> Any:
    """Substitute every reference and variable in the strings and keys of a JSON-like value."""
    if isinstance(value, dict):
        substituted: dict[str, Any] = {}
        for key, item in value.items():
            new_key = substitute_text(str(key), context, deleting)
            if not isinstance(new_key, str):
                raise SubstitutionError(
                    f'expected string after substituting variables in key "{key}"'
                )
            substituted[new_key] = substitute(item, context, deleting)
        return substituted
    if isinstance(value, list):
        return [substitute(item, context, deleting) for item in value]
    if isinstance(value, str):
        return substitute_text(value, context, deleting)
    return value


def substitute_text(text: str, context: dict[str, Any], deleting: bool = False) -> Any:
    """One string: references, then variables round by round, then the `\\{{` escapes."""
    if "{{" not in text and "$(" not in text:
        return text
    if has_reference(text):
        raise SubstitutionError(f"$(...) references are not supported by polgen: {text!r}")
    current = _unescape(text, _ESCAPED_REFERENCE)
    for _ in range(_MAX_ROUNDS):
        found = _variables(current)
        if not found:
            return _unescape(current, _ESCAPED_VARIABLE)
        original = current
        for prefix, token in found:
            resolved = _resolve(token, context, deleting)
            if original == token:
                return resolved
            spliced = resolved if isinstance(resolved, str) else _json(resolved)
            current = original.replace(prefix + token, prefix + spliced, 1)
    raise SubstitutionError(f"variable substitution did not settle in {text!r}")


@lru_cache(maxsize=4096)
def _variables(text: str) -> tuple[tuple[str, str], ...]:
    """The (prefix, `{{ }}` token) pairs of one string: policies repeat the same strings."""
    return tuple((m.group(1), m.group(2)) for m in _VARIABLE.finditer(text))


def _unescape(text: str, escaped: re.Pattern[str]) -> str:
    """Go's loop: every escaped occurrence found loses its leading backslash."""
    for found in [m.group(0) for m in escaped.finditer(text)]:
        text = text.replace(found, found[1:])
    return text


def _resolve(token: str, context: dict[str, Any], deleting: bool) -> Any:
    expression = token.replace("{{", "").replace("}}", "").strip()
    if expression.startswith("-"):
        expression = expression[1:].strip()
    if expression == "@":
        raise SubstitutionError("the {{@}} pattern-path variable is not supported")
    if deleting:
        expression = expression.replace("request.object", "request.oldObject")
    try:
        return query(expression, context)
    except JMESPathError as exc:
        raise SubstitutionError(f"failed to resolve {expression}: {exc}") from exc


def _json(value: Any) -> str:
    try:
        return go_json(value)
    except ValueError as exc:
        raise SubstitutionError(str(exc)) from exc

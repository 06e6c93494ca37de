"""Kyverno's `{{ }}` variable substitution over any policy value.

A string that is exactly one variable takes the variable's typed value; otherwise each variable
is spliced in as text (JSON for non-strings) and the result is scanned again, so a variable may
produce another. `\\{{ }}` is an escape: never evaluated, the backslash dropped at the end. On a
DELETE every `request.object` in a variable reads `request.oldObject`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from polgen.engines.kyverno_jmespath import JMESPathError, query

_VARIABLE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
_ESCAPED = re.compile(r"\\(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
_MAX_ROUNDS = 64


class SubstitutionError(Exception):
    """A variable could not be resolved: Kyverno reports the rule as error."""


def substitute(value: Any, context: dict[str, Any], deleting: bool = False) -> Any:
    """Substitute every variable in strings of a JSON-like value (map keys are left alone)."""
    if isinstance(value, dict):
        return {key: substitute(item, context, deleting) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, context, deleting) for item in value]
    if isinstance(value, str):
        return substitute_text(value, context, deleting)
    return value


def substitute_text(text: str, context: dict[str, Any], deleting: bool = False) -> Any:
    current: Any = text
    for _ in range(_MAX_ROUNDS):
        if not isinstance(current, str):
            return current
        found = _VARIABLE.search(current)
        if found is None:
            return _ESCAPED.sub(r"\1", current)
        token = found.group(2)
        resolved = _resolve(token, context, deleting)
        if current == token:
            current = resolved
            continue
        replacement = resolved if isinstance(resolved, str) else _json(resolved)
        start = found.start(2)
        current = current[:start] + replacement + current[found.end(2) :]
    raise SubstitutionError(f"variable substitution did not settle in {text!r}")


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
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

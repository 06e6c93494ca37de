"""Load-time checks: constructs the offline engine cannot evaluate faithfully are EngineErrors.

Rejected: verifyImages, validate.manifests / validate.assert, context entries that read the
cluster or a registry (apiCall, configMap, imageRegistry, globalReference), unknown condition
operators, unescaped `$(...)` pattern references (in values or keys; the escape `\\$(` is
fine), cel parameters, unsupported podSecurity exclusions.
mutate and generate rules are ignored: they never deny a request on their own.
"""

from __future__ import annotations

from typing import Any

from polgen.engines.base import EngineError
from polgen.engines.kyverno_cel import compile_rule
from polgen.engines.kyverno_operators import is_operator
from polgen.engines.kyverno_pss import check_definition
from polgen.engines.kyverno_variables import has_reference

_BODIES = ("pattern", "anyPattern", "deny", "foreach", "podSecurity", "cel")
_UNSUPPORTED_BODIES = ("manifests", "assert")


def check_policy(source: str, document: dict[str, Any]) -> None:
    """Raise EngineError for the first construct this engine would evaluate wrongly."""
    name = str((document.get("metadata") or {}).get("name") or "")
    spec = document.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
        raise EngineError(source, f"{document.get('kind')} {name!r}: spec.rules must be a list")
    for index, rule in enumerate(spec["rules"]):
        where = f"{document.get('kind')} {name!r} rule {rule.get('name', index)!r}"
        _check_rule(source, where, rule)


def _check_rule(source: str, where: str, rule: dict[str, Any]) -> None:
    if rule.get("verifyImages"):
        raise EngineError(source, f"{where}: verifyImages rules need a registry")
    validate = rule.get("validate")
    if validate is None:
        return
    for key in _UNSUPPORTED_BODIES:
        if validate.get(key) is not None:
            raise EngineError(source, f"{where}: validate.{key} is not supported")
    bodies = [key for key in _BODIES if validate.get(key) is not None]
    if len(bodies) > 1:
        raise EngineError(source, f"{where}: validate has more than one of {', '.join(bodies)}")
    _check_context(source, where, rule.get("context") or [])
    _check_conditions(source, where, rule.get("preconditions"))
    if validate.get("deny") is not None:
        _check_conditions(source, where, (validate["deny"] or {}).get("conditions"))
    for key in ("pattern", "anyPattern"):
        if validate.get(key) is not None:
            _check_pattern(source, where, validate[key])
    _check_foreach(source, where, validate.get("foreach") or [])
    if validate.get("podSecurity") is not None:
        check_definition(source, where, validate["podSecurity"])
    if validate.get("cel") is not None:
        compile_rule(source, where, rule)


def _check_context(source: str, where: str, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        kinds = [k for k in entry if k != "name"]
        if kinds != ["variable"]:
            raise EngineError(
                source,
                f"{where}: context entry {entry.get('name')!r} ({', '.join(kinds)})"
                " needs a cluster; only `variable` entries are supported",
            )


def _check_conditions(source: str, where: str, conditions: Any) -> None:
    if conditions is None:
        return
    if isinstance(conditions, dict):
        blocks = [conditions.get("any") or [], conditions.get("all") or []]
    elif isinstance(conditions, list):
        blocks = [conditions]
    else:
        raise EngineError(source, f"{where}: conditions must be a list or {{any, all}}")
    for block in blocks:
        for condition in block:
            operator = str((condition or {}).get("operator", ""))
            if not is_operator(operator):
                raise EngineError(source, f"{where}: unknown condition operator {operator!r}")


def _check_pattern(source: str, where: str, pattern: Any) -> None:
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            _check_pattern(source, where, str(key))
            _check_pattern(source, where, value)
    elif isinstance(pattern, list):
        for value in pattern:
            _check_pattern(source, where, value)
    elif isinstance(pattern, str) and has_reference(pattern):
        raise EngineError(
            source, f"{where}: pattern reference {pattern!r} ($(...)) is not supported"
        )


def _check_foreach(source: str, where: str, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if not entry.get("list"):
            raise EngineError(source, f"{where}: foreach entry without list")
        _check_context(source, where, entry.get("context") or [])
        _check_conditions(source, where, entry.get("preconditions"))
        if entry.get("deny") is not None:
            _check_conditions(source, where, (entry["deny"] or {}).get("conditions"))
        for key in ("pattern", "anyPattern"):
            if entry.get(key) is not None:
                _check_pattern(source, where, entry[key])
        _check_foreach(source, where, entry.get("foreach") or [])

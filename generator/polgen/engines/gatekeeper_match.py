"""Gatekeeper's `spec.match`: which objects a Constraint reviews.

Each matcher that is set must hold (AND); an unset matcher matches everything. Semantics follow
gatekeeper `pkg/mutation/match` (kinds, scope, namespaces, excludedNamespaces, labelSelector,
namespaceSelector, name with generateName, source) and its wildcard type.
"""

from __future__ import annotations

from typing import Any, Literal

Source = Literal["Original", "Generated"]
_SOURCES = ("All", "Original", "Generated")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class MatchError(Exception):
    """Gatekeeper cannot decide the match (its webhook and gator report an error)."""


def wildcard(pattern: str, candidate: str) -> bool:
    """Exact name, or a glob with `*` at the front (suffix), the end (prefix) or both (contains)."""
    if len(pattern) > 1 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in candidate
    if pattern.startswith("*"):
        return candidate.endswith(pattern[1:])
    if pattern.endswith("*"):
        return candidate.startswith(pattern[:-1])
    return pattern == candidate


def _generate_name_wildcard(pattern: str, candidate: str) -> bool:
    """A generateName is a prefix, so only globs open at the end can match it."""
    if len(pattern) > 1 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in candidate
    if pattern.endswith("*"):
        return candidate.startswith(pattern[:-1])
    return False


def selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A metav1.LabelSelector: every matchLabels pair and every matchExpression holds."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selector_problem(selector: Any) -> str | None:
    """Why a label selector is invalid (as LabelSelectorAsSelector would refuse it), or None."""
    if not isinstance(selector, dict):
        return "must be a mapping"
    if not isinstance(selector.get("matchLabels") or {}, dict):
        return "matchLabels must be a mapping"
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return "matchExpressions must be a list"
    for expression in expressions:
        if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
            return "each matchExpression needs a key"
        operator = expression.get("operator")
        values = expression.get("values") or []
        if operator not in _OPERATORS:
            return f"unknown operator {operator!r} (expected one of {', '.join(_OPERATORS)})"
        if operator in ("In", "NotIn") and not values:
            return f"operator {operator} needs values"
        if operator in ("Exists", "DoesNotExist") and values:
            return f"operator {operator} takes no values"
    return None


def match_problem(match: Any) -> str | None:
    """Why a Constraint's spec.match is invalid, or None."""
    if match is None:
        return None
    if not isinstance(match, dict):
        return "spec.match must be a mapping"
    if match.get("source", "All") not in _SOURCES:
        return f"spec.match.source must be one of {', '.join(_SOURCES)}"
    for field in ("labelSelector", "namespaceSelector"):
        if match.get(field) is not None:
            problem = selector_problem(match[field])
            if problem:
                return f"spec.match.{field}: {problem}"
    for field in ("kinds", "namespaces", "excludedNamespaces"):
        if not isinstance(match.get(field) or [], list):
            return f"spec.match.{field} must be a list"
    return None


def group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    """(API group, kind) from an object's apiVersion and kind."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind") or "")


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def is_namespace(obj: dict[str, Any]) -> bool:
    """Is the object itself a core Namespace?"""
    return group_kind(obj) == ("", "Namespace")


def _kinds(match: dict[str, Any], obj: dict[str, Any]) -> bool:
    kinds = match.get("kinds") or []
    if not kinds:
        return True
    group, kind = group_kind(obj)
    for entry in kinds:
        entry_kinds = entry.get("kinds") or []
        entry_groups = entry.get("apiGroups") or []
        if entry_kinds and "*" not in entry_kinds and kind not in entry_kinds:
            continue
        if not entry_groups or "*" in entry_groups or group in entry_groups:
            return True
    return False


def _scope(match: dict[str, Any], obj: dict[str, Any], namespace: dict[str, Any] | None) -> bool:
    has_namespace = bool(_metadata(obj).get("namespace")) or namespace is not None
    if match.get("scope") == "Cluster":
        return is_namespace(obj) or not has_namespace
    if match.get("scope") == "Namespaced":
        return not is_namespace(obj) and has_namespace
    return True


def _namespace_name(obj: dict[str, Any], namespace: dict[str, Any] | None) -> str | None:
    if is_namespace(obj):
        return str(_metadata(obj).get("name") or "")
    if namespace is not None:
        return str(_metadata(namespace).get("name") or "")
    return _metadata(obj).get("namespace") or None


def _namespaces(
    match: dict[str, Any], obj: dict[str, Any], namespace: dict[str, Any] | None
) -> bool:
    name = _namespace_name(obj, namespace)
    included = match.get("namespaces") or []
    if name is not None and included and not any(wildcard(p, name) for p in included):
        return False
    excluded = match.get("excludedNamespaces") or []
    return name is None or not any(wildcard(p, name) for p in excluded)


def _namespace_selector(
    match: dict[str, Any], obj: dict[str, Any], namespace: dict[str, Any] | None
) -> bool:
    selector = match.get("namespaceSelector")
    if selector is None:
        return True
    if is_namespace(obj):
        return selector_matches(selector, _metadata(obj).get("labels") or {})
    if namespace is None:
        if not _metadata(obj).get("namespace"):
            return True
        raise MatchError("namespaceSelector for a namespaced object but its Namespace object was "
                         "not given")
    return selector_matches(selector, _metadata(namespace).get("labels") or {})


def matches(
    match: dict[str, Any] | None, obj: dict[str, Any], namespace: dict[str, Any] | None,
    source: Source,
) -> bool:
    """Does a Constraint with this `spec.match` review this object? May raise MatchError."""
    if not match:
        return True
    labels = _metadata(obj).get("labels") or {}
    metadata = _metadata(obj)
    label_selector = match.get("labelSelector")
    name = match.get("name") or ""
    wanted_source = match.get("source") or "All"
    return (
        _kinds(match, obj)
        and _scope(match, obj, namespace)
        and _namespaces(match, obj, namespace)
        and (label_selector is None or selector_matches(label_selector, labels))
        and _namespace_selector(match, obj, namespace)
        and (
            not name
            or wildcard(name, str(metadata.get("name") or ""))
            or _generate_name_wildcard(name, str(metadata.get("generateName") or ""))
        )
        and (wanted_source == "All" or wanted_source == source)
    )

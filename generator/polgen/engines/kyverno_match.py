"""Does a rule apply to a request? Kyverno's match/exclude (pkg/engine/utils/match.go).

A filter is AND across its attributes and OR inside each list. `match.any` needs one filter,
`match.all` every filter, the legacy form is one filter; `exclude` works the same way but is
only looked at once match succeeded. A bare kind (`Pod`) does not match subresources, except
that `Pod` also matches `pods/ephemeralcontainers` (what `kubectl debug` sends).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_scalars import has_wildcard, wildcard_match

_VERSION = re.compile(r"\A(v\d+((alpha|beta)\d+)?|\*)\Z")
_RESOURCE_FIELDS = (
    "kinds",
    "name",
    "names",
    "namespaces",
    "annotations",
    "selector",
    "namespaceSelector",
    "operations",
)
_USER_FIELDS = ("roles", "clusterRoles", "subjects")


@cache
def parse_kind_selector(selector: str) -> tuple[str, str, str, str]:
    """(group, version, kind, subresource) from `Kind`, `v1/Kind`, `g/v/Kind`, `Kind/sub`..."""
    parts = selector.split("/")
    parts = parts[:-1] + parts[-1].split(".")
    if len(parts) == 1:
        return "*", "*", parts[0], ""
    if len(parts) == 2:
        if parts == ["*", "*"]:
            return "*", "*", "*", "*"
        if parts[0] == "*" and parts[1].lower() == parts[1]:
            return "*", "*", "*", parts[1]
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], ""
        return "*", "*", parts[0], parts[1]
    if len(parts) == 3:
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], parts[2]
        return parts[0], parts[1], parts[2], ""
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], parts[3]
    return "", "", "", ""


def kind_matches(kinds: list[str], request: KyvernoRequest) -> bool:
    for selector in kinds:
        group, version, kind, sub = parse_kind_selector(selector)
        if not (
            wildcard_match(group, request.group)
            and wildcard_match(version, request.version)
            and wildcard_match(kind, request.kind)
        ):
            continue
        if wildcard_match(sub, request.subresource):
            return True
        if (request.group, request.version, request.kind, request.subresource) == (
            "",
            "v1",
            "Pod",
            "ephemeralcontainers",
        ):
            return True
    return False


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """metav1.LabelSelector after Kyverno's wildcard replacement in matchLabels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        key, value = _expand_label(str(key), str(value), labels)
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        if not _requirement(requirement, labels):
            return False
    return True


def _expand_label(key: str, value: str, labels: dict[str, str]) -> tuple[str, str]:
    if not (has_wildcard(key) or has_wildcard(value)):
        return key, value
    for actual_key, actual_value in labels.items():
        if wildcard_match(key, actual_key) and wildcard_match(value, actual_value):
            return actual_key, actual_value
    return _zeroed(key), _zeroed(value)


def _zeroed(text: str) -> str:
    return text.replace("*", "0").replace("?", "0")


def _requirement(requirement: dict[str, Any], labels: dict[str, str]) -> bool:
    key = str(requirement.get("key", ""))
    operator = requirement.get("operator")
    values = [str(v) for v in requirement.get("values") or []]
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def _subjects_match(subjects: list[dict[str, Any]], user_info: dict[str, Any]) -> bool:
    username = str(user_info.get("username", ""))
    groups = [str(g) for g in user_info.get("groups") or []]
    for subject in subjects:
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            account = f"system:serviceaccount:{subject.get('namespace', '')}:{name}"
            if wildcard_match(account, username):
                return True
        elif (kind == "Group" and any(wildcard_match(name, group) for group in groups)) or (
            kind == "User" and wildcard_match(name, username)
        ):
            return True
    return False


def _filter_matches(flt: dict[str, Any], request: KyvernoRequest, ignore_user: bool) -> bool:
    """One resource filter (resources + user info): every present attribute must hold."""
    resources = flt.get("resources") or {}
    user = {k: flt[k] for k in _USER_FIELDS if flt.get(k)}
    if ignore_user:
        user = {}
    if not any(resources.get(k) not in (None, [], {}, "") for k in _RESOURCE_FIELDS) and not user:
        return False
    return _resources_match(resources, request) and _user_matches(user, request)


def _resources_match(resources: dict[str, Any], request: KyvernoRequest) -> bool:
    operations = resources.get("operations") or []
    if operations and request.operation not in operations:
        return False
    if resources.get("kinds") and not kind_matches(resources["kinds"], request):
        return False
    metadata = request.resource.get("metadata") or {}
    name = str(metadata.get("name") or metadata.get("generateName") or "")
    if resources.get("name") and not wildcard_match(str(resources["name"]), name):
        return False
    if resources.get("names") and not any(wildcard_match(str(n), name) for n in resources["names"]):
        return False
    if resources.get("namespaces"):
        namespace = name if request.kind == "Namespace" else request.namespace
        if not any(wildcard_match(str(n), namespace) for n in resources["namespaces"]):
            return False
    if resources.get("annotations"):
        actual = metadata.get("annotations") or {}
        for key, value in resources["annotations"].items():
            if not any(
                wildcard_match(str(key), str(k)) and wildcard_match(str(value), str(v))
                for k, v in actual.items()
            ):
                return False
    if resources.get("selector") is not None:
        labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
        if not selector_matches(resources["selector"], labels):
            return False
    if resources.get("namespaceSelector") is not None:
        if request.kind == "Namespace":
            return False
        if not selector_matches(resources["namespaceSelector"], request.namespace_labels):
            return False
    return True


def _user_matches(user: dict[str, Any], request: KyvernoRequest) -> bool:
    if user.get("roles") and not set(user["roles"]) & set(request.roles):
        return False
    if user.get("clusterRoles") and not set(user["clusterRoles"]) & set(request.cluster_roles):
        return False
    if user.get("subjects"):
        return _subjects_match(user["subjects"], request.user_info or {})
    return True


def _filters(block: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [f for f in block.get(key) or [] if isinstance(f, dict)]


def _legacy(block: dict[str, Any]) -> dict[str, Any]:
    return {k: block[k] for k in ("resources", *_USER_FIELDS) if k in block}


def rule_matches(rule: dict[str, Any], request: KyvernoRequest, policy_namespace: str = "") -> bool:
    """Kyverno's MatchesResourceDescription for one (possibly autogen) rule."""
    if policy_namespace and policy_namespace != request.namespace:
        return False
    cli = request.user_info is None
    match = rule.get("match") or {}
    if _filters(match, "any"):
        matched = any(_filter_matches(f, request, cli) for f in _filters(match, "any"))
    elif _filters(match, "all"):
        matched = all(_filter_matches(f, request, cli) for f in _filters(match, "all"))
    else:
        matched = _filter_matches(_legacy(match), request, cli)
    if not matched:
        return False
    exclude = rule.get("exclude") or {}
    if _filters(exclude, "any"):
        return not any(_filter_matches(f, request, False) for f in _filters(exclude, "any"))
    if _filters(exclude, "all"):
        return not all(_filter_matches(f, request, False) for f in _filters(exclude, "all"))
    legacy = _legacy(exclude)
    return not (legacy and _filter_matches(legacy, request, False))

"""Which requests a ValidatingAdmissionPolicy (or a Kyverno ValidatingPolicy) applies to: its
MatchResources (resource rules, namespace and object selectors, matchPolicy) and the
validationActions a binding may name, as the API server's admission plugin reads them.
"""

from __future__ import annotations

from typing import Any

from polgen.admission import Action, AdmissionRequest

ACTIONS: dict[str, Action] = {"Deny": "deny", "Warn": "warn", "Audit": "audit"}
# Groups the API server treats as the same resources under matchPolicy: Equivalent.
_EQUIVALENT_GROUPS = {
    ("extensions", "deployments"): "apps",
    ("extensions", "daemonsets"): "apps",
    ("extensions", "replicasets"): "apps",
    ("extensions", "networkpolicies"): "networking.k8s.io",
    ("extensions", "ingresses"): "networking.k8s.io",
}


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any]) -> bool:
    """A metav1.LabelSelector; empty or absent selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        satisfied = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator)
        if satisfied is None:
            raise ValueError(f"unknown label selector operator {operator!r}")
        if not satisfied:
            return False
    return True


def namespace_object(request: AdmissionRequest, namespace: dict[str, Any] | None) -> dict[str, Any]:
    """The request's Namespace, with the `kubernetes.io/metadata.name` label the API server sets."""
    found = dict(namespace or {"apiVersion": "v1", "kind": "Namespace"})
    metadata = dict(found.get("metadata") or {})
    metadata.setdefault("name", request.namespace)
    labels = dict(metadata.get("labels") or {})
    labels.setdefault("kubernetes.io/metadata.name", str(metadata["name"]))
    metadata["labels"] = labels
    found["metadata"] = metadata
    return found


def object_labels(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The labels of an object (empty when it or they are absent)."""
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _rule_matches(rule: dict[str, Any], request: AdmissionRequest, equivalent: bool) -> bool:
    def listed(values: Any, wanted: str) -> bool:
        return "*" in (values or []) or wanted in (values or [])

    if not listed(rule.get("operations"), request.operation):
        return False
    group = request.group
    if not listed(rule.get("apiGroups"), group):
        group = _EQUIVALENT_GROUPS.get((group, request.resource), "") if equivalent else ""
        if not group or not listed(rule.get("apiGroups"), group):
            return False
    if not (equivalent or listed(rule.get("apiVersions"), request.version)):
        return False
    if not any(_resource_matches(entry, request) for entry in rule.get("resources") or []):
        return False
    names = rule.get("resourceNames") or []
    if names and request.name not in names:
        return False
    scope = rule.get("scope") or "*"
    is_namespace = request.group == "" and request.resource == "namespaces"
    if scope == "Namespaced":
        return bool(request.namespace) and not is_namespace
    return scope != "Cluster" or not request.namespace or is_namespace


def _resource_matches(entry: str, request: AdmissionRequest) -> bool:
    resource, _, sub = str(entry).partition("/")
    if entry == "*/*":
        return True
    return resource in ("*", request.resource) and sub in ("*", request.sub_resource)


def resources_match(
    match: dict[str, Any] | None,
    request: AdmissionRequest,
    namespace: dict[str, Any] | None,
    require_rules: bool = True,
) -> bool:
    """Does the request fall under a MatchResources? (`require_rules=False`: a binding's
    matchResources without resourceRules does not constrain resources.)"""
    match = match or {}
    equivalent = (match.get("matchPolicy") or "Equivalent") == "Equivalent"
    rules = match.get("resourceRules") or []
    if (rules or require_rules) and not any(_rule_matches(r, request, equivalent) for r in rules):
        return False
    if any(_rule_matches(r, request, equivalent) for r in match.get("excludeResourceRules") or []):
        return False
    if request.group == "" and request.resource == "namespaces":
        namespace_labels = object_labels(request.object or request.old_object)
    elif request.namespace:
        namespace_labels = object_labels(namespace_object(request, namespace))
    else:
        namespace_labels = None  # cluster-scoped: the namespaceSelector does not apply
    if namespace_labels is not None and not selector_matches(
        match.get("namespaceSelector"), namespace_labels
    ):
        return False
    object_selector = match.get("objectSelector")
    if not (object_selector or {}).get("matchLabels") and not (object_selector or {}).get(
        "matchExpressions"
    ):
        return True
    return any(
        obj is not None and selector_matches(object_selector, object_labels(obj))
        for obj in (request.object, request.old_object)
    )


def check_selectors(match: dict[str, Any] | None) -> None:
    """Raise ValueError for a selector the API server would reject (unknown operator)."""
    for selector in ("namespaceSelector", "objectSelector"):
        selector_matches((match or {}).get(selector), {})

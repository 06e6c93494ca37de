"""Kyverno's autogen: Pod rules rewritten for pod controllers (pkg/autogen/v1).

For a controller kind Kyverno evaluates generated rules instead of the Pod rules: the pattern
wrapped in `spec.template` (CronJob: `spec.jobTemplate.spec.template`), the match kinds
replaced by the controller's fully-qualified kind, and then a plain text replacement over the
whole rule: `request.object.spec` becomes `request.object.spec.template.spec` (and `metadata`,
`oldObject`, CEL's `object.`), wherever it appears, messages and match blocks included.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from polgen.engines.kyverno_match import parse_kind_selector

ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
POD_CONTROLLERS = (
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "CronJob",
)
_TEMPLATE_CONTROLLERS = POD_CONTROLLERS[:-1]
_GVK = {
    "DaemonSet": "apps/v1/DaemonSet",
    "Deployment": "apps/v1/Deployment",
    "Job": "batch/v1/Job",
    "StatefulSet": "apps/v1/StatefulSet",
    "ReplicaSet": "apps/v1/ReplicaSet",
    "ReplicationController": "v1/ReplicationController",
    "CronJob": "batch/v1/CronJob",
}
_TEMPLATE_PATH = {"template": "spec.template", "jobTemplate": "spec.jobTemplate.spec.template"}

Rule = dict[str, Any]


def _contains_pod(kinds: list[str]) -> bool:
    """Kyverno's ContainsKind(kinds, "Pod"): any selector whose kind part is Pod."""
    return any(parse_kind_selector(k)[2] == "Pod" for k in kinds)


def _descriptions(block: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not block:
        return []
    found = [block.get("resources") or {}]
    found += [
        (f.get("resources") or {}) for f in (block.get("any") or []) + (block.get("all") or [])
    ]
    return found


def can_autogen(rules: list[Rule]) -> bool:
    """Kyverno's CanAutoGen gate for the whole policy."""
    needed = False
    for rule in rules:
        if rule.get("generate") or (rule.get("mutate") or {}).get("patchesJson6902"):
            return False
        if any(f.get("patchesJson6902") for f in (rule.get("mutate") or {}).get("foreach") or []):
            return False
        for description in _descriptions(rule.get("match")) + _descriptions(rule.get("exclude")):
            kinds = [str(k) for k in description.get("kinds") or []]
            if description.get("name") or description.get("names"):
                return False
            if description.get("selector") is not None:
                return False
            if "annotations" in description or (len(kinds) > 1 and _contains_pod(kinds)):
                return False
            needed = needed or any(k in ("Pod", *POD_CONTROLLERS) for k in kinds)
    return needed


def compute_rules(policy: dict[str, Any], kind: str) -> list[Rule]:
    """The rules Kyverno evaluates for a resource of this kind (ComputeRules)."""
    rules: list[Rule] = list((policy.get("spec") or {}).get("rules") or [])
    annotations = (policy.get("metadata") or {}).get("annotations") or {}
    if not can_autogen(rules):
        return rules
    requested = annotations.get(ANNOTATION)
    controllers = set(str(requested).split(",")) if requested is not None else set(POD_CONTROLLERS)
    if kind not in controllers:
        return rules
    generated: list[Rule] = []
    for rule in rules:
        for_controllers = _for_controllers(rule, "" if kind == "CronJob" else kind)
        if for_controllers is not None:
            generated.append(_shift_text(for_controllers, "template"))
        if "CronJob" in kind:
            cron = _generate(
                f"autogen-cronjob-{rule.get('name', '')}",
                _for_controllers(rule, kind),
                "jobTemplate",
                ["CronJob"],
                replace_all=True,
            )
            if cron is not None:
                generated.append(_shift_text(cron, "jobTemplate"))
    if not generated:
        return rules
    kept = [r for r in rules if not str(r.get("name", "")).startswith("autogen-")]
    return kept + generated


def _match_kinds(block: dict[str, Any] | None) -> list[str]:
    kinds: list[str] = []
    for description in _descriptions(block):
        kinds += [str(k) for k in description.get("kinds") or []]
    return kinds


def _for_controllers(rule: Rule, controllers: str) -> Rule | None:
    name = str(rule.get("name", ""))
    if name.startswith("autogen-") or not controllers:
        return None
    exclude_kinds = _match_kinds(rule.get("exclude"))
    if not _contains_pod(_match_kinds(rule.get("match"))) or (
        exclude_kinds and not _contains_pod(exclude_kinds)
    ):
        return None
    chosen = sorted(controllers.split(","))
    if controllers == "all":
        chosen = sorted(_TEMPLATE_CONTROLLERS)
    elif any(c in _TEMPLATE_CONTROLLERS for c in chosen):
        chosen = sorted(c for c in chosen if c in _TEMPLATE_CONTROLLERS)
    return _generate(f"autogen-{name}", rule, "template", chosen, replace_all=False)


def _rewrite_filters(block: dict[str, Any], kinds: list[str], replace_all: bool) -> None:
    gvks = [_GVK.get(k, k) for k in kinds]
    for key in ("any", "all"):
        if block.get(key):
            for flt in block[key]:
                resources = flt.setdefault("resources", {})
                if replace_all or _contains_pod([str(k) for k in resources.get("kinds") or []]):
                    resources["kinds"] = list(gvks)
            return
    block.setdefault("resources", {})["kinds"] = list(gvks)


def _generate(
    name: str, rule: Rule | None, template_key: str, kinds: list[str], replace_all: bool
) -> Rule | None:
    if rule is None:
        return None
    generated = copy.deepcopy(rule)
    generated["name"] = name[:63]
    generated.setdefault("match", {})
    _rewrite_filters(generated["match"], kinds, replace_all)
    exclude = generated.get("exclude")
    if exclude:
        legacy_kinds = (exclude.get("resources") or {}).get("kinds")
        if exclude.get("any") or exclude.get("all") or legacy_kinds:
            _rewrite_filters(exclude, kinds, replace_all)
    validate = generated.get("validate")
    if validate is None:
        return None
    rewritten = _rewrite_validation(validate, template_key)
    if rewritten is None:
        return None
    generated["validate"] = rewritten
    return generated


_KEPT = ("message", "failureAction", "failureActionOverrides", "allowExistingViolations")


def _rewrite_validation(validate: dict[str, Any], template_key: str) -> dict[str, Any] | None:
    kept = {k: validate[k] for k in _KEPT if k in validate}
    if validate.get("pattern") is not None:
        return {**kept, "pattern": {"spec": {template_key: validate["pattern"]}}}
    if validate.get("deny") is not None:
        return {**kept, "deny": validate["deny"]}
    if validate.get("podSecurity") is not None:
        return {**kept, "podSecurity": validate["podSecurity"]}
    if validate.get("anyPattern") is not None:
        wrapped = [{"spec": {template_key: p}} for p in validate["anyPattern"]]
        return {**kept, "anyPattern": wrapped}
    if validate.get("foreach"):
        return {**kept, "foreach": validate["foreach"]}
    if validate.get("cel"):
        return validate
    return None


def _shift_text(rule: Rule, template_key: str) -> Rule:
    """The byte-level replacement Kyverno runs over the generated rule's JSON."""
    path = _TEMPLATE_PATH[template_key]
    text = json.dumps(rule)
    cel = bool((rule.get("validate") or {}).get("cel"))
    prefixes = ("object", "oldObject") if cel else ("request.object", "request.oldObject")
    for prefix in prefixes:
        text = text.replace(f"{prefix}.spec", f"{prefix}.{path}.spec")
    for prefix in prefixes:
        text = text.replace(f"{prefix}.metadata", f"{prefix}.{path}.metadata")
    shifted: Rule = json.loads(text)
    return shifted

"""Read a Constraint: its kind, name, match, parameters and the actions it takes offline.

`enforcementAction` maps deny→deny, warn→warn, dryrun→audit. With `scoped`, the offline engine
stands for both the admission webhook (`validation.gatekeeper.sh`) and gator
(`gator.gatekeeper.sh`): entries naming either point (or `*`) apply; a Constraint scoped to
`audit.gatekeeper.sh` only is reported as audit; one scoped only to other points (`vap.k8s.io`)
is not evaluated here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from polgen.admission import Action
from polgen.engines.base import EngineError
from polgen.engines.gatekeeper_match import match_problem

ACTIONS: dict[str, Action] = {"deny": "deny", "warn": "warn", "dryrun": "audit"}
WEBHOOK_POINTS = frozenset({"*", "validation.gatekeeper.sh", "gator.gatekeeper.sh"})
AUDIT_POINT = "audit.gatekeeper.sh"
_ORDER: tuple[Action, ...] = ("deny", "warn", "audit")


@dataclass(frozen=True)
class Constraint:
    """One Constraint, validated; `actions` is empty when it is not enforced offline."""

    kind: str
    name: str
    source: str
    match: dict[str, Any]
    parameters: dict[str, Any]
    actions: tuple[Action, ...]
    document: dict[str, Any]
    """The whole Constraint (CEL's `params`)."""


def map_action(source: str, value: Any, where: str) -> Action:
    """A Gatekeeper action (deny, warn, dryrun) as a polgen action."""
    if value not in ACTIONS:
        raise EngineError(source, f"{where}: unknown enforcement action {value!r} "
                          f"(expected one of {', '.join(ACTIONS)})")
    return ACTIONS[value]


def _scoped_actions(source: str, spec: dict[str, Any]) -> tuple[Action, ...]:
    entries = spec.get("scopedEnforcementActions")
    if not isinstance(entries, list) or not entries:
        raise EngineError(source, "enforcementAction scoped needs spec.scopedEnforcementActions")
    webhook: set[Action] = set()
    audit = False
    for index, entry in enumerate(entries):
        where = f"spec.scopedEnforcementActions[{index}]"
        if not isinstance(entry, dict):
            raise EngineError(source, f"{where} must be a mapping")
        action = map_action(source, entry.get("action"), where)
        points = {
            point.get("name") for point in entry.get("enforcementPoints") or []
            if isinstance(point, dict)
        }
        if points & WEBHOOK_POINTS:
            webhook.add(action)
        elif AUDIT_POINT in points:
            audit = True
    if webhook:
        return tuple(action for action in _ORDER if action in webhook)
    return ("audit",) if audit else ()


def parse_constraint(source: str, document: dict[str, Any]) -> Constraint:
    """A Constraint document as the engine evaluates it, or EngineError saying what is wrong."""
    kind = document.get("kind")
    name = (document.get("metadata") or {}).get("name")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise EngineError(source, "a Constraint needs a kind and metadata.name")
    spec = document.get("spec") or {}
    if not isinstance(spec, dict):
        raise EngineError(source, f"{kind}/{name}: spec must be a mapping")
    problem = match_problem(spec.get("match"))
    if problem:
        raise EngineError(source, f"{kind}/{name}: {problem}")
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise EngineError(source, f"{kind}/{name}: spec.parameters must be a mapping")
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EngineError(source, f"{kind}/{name}: spec.parameters must be plain JSON values "
                          f"({exc})") from exc
    action = spec.get("enforcementAction") or "deny"
    if action == "scoped":
        actions = _scoped_actions(source, spec)
    else:
        actions = (map_action(source, action, f"{kind}/{name} spec.enforcementAction"),)
    return Constraint(kind, name, source, spec.get("match") or {}, parameters, actions, document)

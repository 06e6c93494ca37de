"""ExpansionTemplates: review the Pod a workload would create, at the workload's admission.

As gatekeeper `pkg/expansion` does: the field at `templateSource` becomes an object of
`generatedGVK`, named `<parent name>-<kind>` in lower case, in the parent's namespace, owned by
the parent; the result is expanded again (CronJob → Job → Pod), depth first.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from polgen.admission import Action
from polgen.engines.base import EngineError
from polgen.engines.gatekeeper_constraint import map_action

MAX_DEPTH = 30


@dataclass(frozen=True)
class ApplyTo:
    """Exact groups, kinds and versions (no globs) an ExpansionTemplate expands."""

    groups: tuple[str, ...]
    kinds: tuple[str, ...]
    versions: tuple[str, ...]

    def covers(self, group: str, version: str, kind: str) -> bool:
        return group in self.groups and version in self.versions and kind in self.kinds


@dataclass(frozen=True)
class ExpansionTemplate:
    name: str
    source: str
    apply_to: tuple[ApplyTo, ...]
    template_source: tuple[str, ...]
    generated: tuple[str, str, str]
    """(group, version, kind) of the generated resource."""
    action: Action | None
    """Overrides the Constraint's action for violations of generated resources."""

    def applies(self, group: str, version: str, kind: str) -> bool:
        return any(entry.covers(group, version, kind) for entry in self.apply_to)


@dataclass(frozen=True)
class Resultant:
    """A generated resource and the ExpansionTemplate that produced it."""

    object: dict[str, Any]
    template: str
    action: Action | None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def parse_expansion(source: str, document: dict[str, Any]) -> ExpansionTemplate:
    """An ExpansionTemplate, validated as Gatekeeper's ValidateTemplate does."""
    name = (document.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise EngineError(source, "ExpansionTemplate has empty name field")
    if len(name) >= 64:
        raise EngineError(source, f"ExpansionTemplate {name}: name must be less than 64 characters")
    spec = document.get("spec") or {}
    template_source = spec.get("templateSource")
    if not isinstance(template_source, str) or not template_source:
        raise EngineError(source, f"ExpansionTemplate {name} has empty source field")
    gvk = spec.get("generatedGVK") or {}
    generated = (str(gvk.get("group") or ""), str(gvk.get("version") or ""),
                 str(gvk.get("kind") or ""))
    if generated == ("", "", ""):
        raise EngineError(source, f"ExpansionTemplate {name} has empty generatedGVK field")
    apply_to = tuple(
        ApplyTo(_strings(entry.get("groups")), _strings(entry.get("kinds")),
                _strings(entry.get("versions")))
        for entry in spec.get("applyTo") or [] if isinstance(entry, dict)
    )
    if not apply_to:
        raise EngineError(source, f"ExpansionTemplate {name} must specify ApplyTo")
    if any(entry.covers(*generated) for entry in apply_to):
        raise EngineError(source, f"ExpansionTemplate {name} generates {generated}, but also "
                          "applies to that same GVK")
    raw_action = spec.get("enforcementAction")
    action = map_action(source, raw_action, f"ExpansionTemplate {name}") if raw_action else None
    return ExpansionTemplate(name, source, apply_to, tuple(template_source.split(".")),
                             generated, action)


def _gvk(obj: dict[str, Any]) -> tuple[str, str, str]:
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    return group, version, str(obj.get("kind") or "")


def _generate(
    parent: dict[str, Any], namespace: str, template: ExpansionTemplate
) -> dict[str, Any]:
    value: Any = parent
    for key in template.template_source:
        value = value.get(key) if isinstance(value, dict) else None
    raw_meta = parent.get("metadata")
    parent_meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    if not isinstance(value, dict):
        raise EngineError(template.source, f"ExpansionTemplate {template.name}: could not find "
                          f"source field {'.'.join(template.template_source)!r} in "
                          f"{parent.get('kind')} {parent_meta.get('name')!r}")
    resource = copy.deepcopy(value)
    group, version, kind = template.generated
    resource["apiVersion"] = f"{group}/{version}" if group else version
    resource["kind"] = kind
    metadata = resource.setdefault("metadata", {})
    namespace = namespace or str(parent_meta.get("namespace") or "")
    if namespace:
        metadata["namespace"] = namespace
    metadata["name"] = (str(parent_meta.get("name") or "") + (f"-{kind}" if kind else "")).lower()
    owner = {"apiVersion": parent.get("apiVersion"), "kind": parent.get("kind"),
             "name": parent_meta.get("name")}
    if all(owner.values()):
        owners = metadata.setdefault("ownerReferences", [])
        if not any(all(ref.get(k) == v for k, v in owner.items()) for ref in owners):
            owners.append(owner)
    return resource


def expand(
    templates: list[ExpansionTemplate], obj: dict[str, Any], namespace: str, depth: int = 0
) -> list[Resultant]:
    """Every resource the object generates, grandchildren before the children that made them."""
    if depth >= MAX_DEPTH:
        raise EngineError(templates[0].source if templates else "expansion",
                          f"maximum expansion depth of {MAX_DEPTH} reached (a template cycle?)")
    children = [
        Resultant(_generate(obj, namespace, template), template.name, template.action)
        for template in templates if template.applies(*_gvk(obj))
    ]
    result: list[Resultant] = []
    for child in children:
        result.extend(expand(templates, child.object, namespace, depth + 1))
    return result + children

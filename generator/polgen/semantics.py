"""Reference semantics of the check-kind vocabulary, in plain Python.

This is the oracle: every target's offline evaluation is compared with it, so it follows
docs/architecture.md literally (subjects, container lists, exempt images, the UPDATE rule and the
exact messages) and stays small enough to read in one sitting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polgen.admission import AdmissionRequest
from polgen.catalog import Policy
from polgen.checks import (
    CONTAINER_TYPES,
    ContainerFieldCheck,
    ContainerListSubsetCheck,
    ImageRepositoryCheck,
    PodFieldCheck,
    PodListFieldCheck,
    resolve,
)
from polgen.imageref import is_allowed
from polgen.rendering import to_json

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Where each subject kind keeps its pod spec; other kinds are never checked."""

CONTAINER_LABELS: dict[str, str] = {
    "containers": "container",
    "initContainers": "initContainer",
    "ephemeralContainers": "ephemeralContainer",
}
"""How a message names a container of each list."""

EVALUATED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


def lookup(data: Any, dotted: str) -> Any:
    """The value at a dotted path, or None when any step is missing, null or not a mapping."""
    for key in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def is_exempt(image: Any, patterns: Sequence[str]) -> bool:
    """An image matches a pattern exactly, or by prefix when the pattern ends with `*`."""
    if not isinstance(image, str):
        return False
    return any(
        image.startswith(pattern[:-1]) if pattern.endswith("*") else image == pattern
        for pattern in patterns
    )


def same_value(left: Any, right: Any) -> bool:
    """Exact comparison, type included: `"true"` is not `true` and `1` is not `true`."""
    return type(left) is type(right) and bool(left == right)


def is_one_of(value: Any, allowed: Sequence[Any]) -> bool:
    return any(same_value(value, candidate) for candidate in allowed)


def _text(value: Any) -> str:
    """A value inside a message: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


@dataclass(frozen=True)
class Subject:
    """The pod spec under review and the images exempt from container-level checks."""

    spec: Mapping[str, Any]
    exempt_images: Sequence[str]

    def containers(self, types: Sequence[str]) -> list[tuple[str, Mapping[str, Any]]]:
        """(message label, container) of every non-exempt container in the chosen lists."""
        found: list[tuple[str, Mapping[str, Any]]] = []
        for container_type in CONTAINER_TYPES:
            if container_type not in types:
                continue
            items = self.spec.get(container_type)
            for container in items if isinstance(items, list) else []:
                if isinstance(container, Mapping) and not is_exempt(
                    container.get("image"), self.exempt_images
                ):
                    found.append((CONTAINER_LABELS[container_type], container))
        return found


def _name(container: Mapping[str, Any]) -> str:
    return _text(container.get("name", ""))


def field_problem(value: Any, allowed: Sequence[Any], required: bool) -> str | None:
    """The rule a field value breaks (`must be ...`), or None when it is fine."""
    if value is None and not required:
        return None
    if value is not None and is_one_of(value, allowed):
        return None
    return f"must be {'' if required else 'unset or '}one of {to_json(allowed)}"


def pod_field(check: PodFieldCheck, parameters: Mapping[str, Any], subject: Subject) -> list[str]:
    """`spec.<field>` set and not allowed, or unset while required (image exemptions ignored)."""
    allowed = resolve(check.allowed, dict(parameters))
    problem = field_problem(lookup(subject.spec, check.field), allowed, check.required)
    return [f"spec.{check.field} {problem}"] if problem else []


def container_field(
    check: ContainerFieldCheck, parameters: Mapping[str, Any], subject: Subject
) -> list[str]:
    """Per container: `<field>` set and not allowed, or unset while required."""
    allowed = resolve(check.allowed, dict(parameters))
    messages = []
    for label, container in subject.containers(check.containerTypes):
        problem = field_problem(lookup(container, check.field), allowed, check.required)
        if problem:
            messages.append(f'{label} "{_name(container)}": {check.field} {problem}')
    return messages


def container_list_subset(
    check: ContainerListSubsetCheck, parameters: Mapping[str, Any], subject: Subject
) -> list[str]:
    """Per container, one message per item of the list `<field>` that is not allowed."""
    allowed = resolve(check.allowed, dict(parameters))
    messages = []
    for label, container in subject.containers(check.containerTypes):
        items = lookup(container, check.field)
        for item in items if isinstance(items, list) else []:
            if not is_one_of(item, allowed):
                messages.append(
                    f'{label} "{_name(container)}": {check.field} may not contain "{_text(item)}"'
                )
    return messages


def pod_list_field(
    check: PodListFieldCheck, parameters: Mapping[str, Any], subject: Subject
) -> list[str]:
    """Per item of `spec.<list>`: `<field>` set and not allowed (image exemptions ignored)."""
    allowed = resolve(check.allowed, dict(parameters))
    rule = f"must be unset or one of {to_json(allowed)}" if allowed else "must be unset"
    items = lookup(subject.spec, check.list)
    messages = []
    for item in items if isinstance(items, list) else []:
        value = lookup(item, check.field)
        if value is not None and not is_one_of(value, allowed):
            name = _text(item.get("name", ""))
            messages.append(f'spec.{check.list} item "{name}": {check.field} {rule}')
    return messages


def image_repository(
    check: ImageRepositoryCheck, parameters: Mapping[str, Any], subject: Subject
) -> list[str]:
    """Per container: the image's repository is not under an allowed entry (polgen.imageref).

    A container without a string image is skipped: the API server rejects it before admission.
    """
    repos = [str(repo) for repo in resolve(check.repos, dict(parameters))]
    messages = []
    for label, container in subject.containers(check.containerTypes):
        image = container.get("image")
        if isinstance(image, str) and not is_allowed(image, repos):
            messages.append(
                f'{label} "{_name(container)}": image "{image}" is not from an allowed repository'
                f" (allowed: {', '.join(repos)})"
            )
    return messages


# Each evaluator takes its own check model; the registry is keyed by that model's `kind`.
Evaluator = Callable[[Any, Mapping[str, Any], Subject], list[str]]
EVALUATORS: dict[str, Evaluator] = {
    "pod-field": pod_field,
    "container-field": container_field,
    "container-list-subset": container_list_subset,
    "pod-list-field": pod_list_field,
    "image-repository": image_repository,
}

IMAGE_ONLY_KINDS = frozenset({"image-repository"})
"""The only checks that run on a Pod UPDATE other than through `pods/ephemeralcontainers`
(a Pod's spec is immutable except images)."""


def pod_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a subject kind, or None for kinds (or objects) without one."""
    path = POD_SPEC_PATHS.get(kind)
    if path is None:
        return None
    spec = lookup(obj, ".".join(path))
    return spec if isinstance(spec, Mapping) else None


def evaluate_policy(
    policy: Policy,
    parameters: Mapping[str, Any],
    request: AdmissionRequest,
    exempt_images: Sequence[str] = (),
) -> list[str]:
    """Every violation message of one policy for one request: checks in catalog order, offenders
    in document order (containers, initContainers, ephemeralContainers).

    Missing parameters take the policy's defaults, as a binding's parameters do.
    """
    if request.operation not in EVALUATED_OPERATIONS or request.object is None:
        return []
    spec = pod_spec(request.kind, request.object)
    if spec is None:
        return []
    values = {**policy.default_parameters(), **parameters}
    subject = Subject(spec, tuple(exempt_images))
    plain_pod_update = (
        request.kind == "Pod"
        and request.operation == "UPDATE"
        and request.sub_resource != "ephemeralcontainers"
    )
    messages: list[str] = []
    for check in policy.checks:
        if plain_pod_update and check.kind not in IMAGE_ONLY_KINDS:
            continue
        messages.extend(EVALUATORS[check.kind](check, values, subject))
    return messages

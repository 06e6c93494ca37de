"""Reference semantics of the check-kind vocabulary, in plain Python.

This is the oracle: every target's offline evaluation is compared with it, so it follows
docs/architecture.md literally (subjects, container lists, exempt images, skipIf, the UPDATE rule
and the exact messages) and stays small enough to read in one sitting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from polgen.admission import AdmissionRequest
from polgen.catalog import Policy
from polgen.checks import (
    CONTAINER_TYPES,
    ContainerFieldCheck,
    ContainerListContainsCheck,
    ContainerListRangeCheck,
    ContainerListSubsetCheck,
    ImageDigestCheck,
    ImageRepositoryCheck,
    ImageTagCheck,
    NamespaceCheck,
    PodAndContainerFieldCheck,
    PodAnnotationCheck,
    PodFieldCheck,
    PodLabelsCheck,
    PodListFieldCheck,
    PodListKeysCheck,
    ServiceFieldCheck,
    resolve,
)
from polgen.imageref import is_allowed, parse_image
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
"""Where each pod-subject kind keeps its pod spec (its pod metadata sits next to it); other
kinds are never checked by pod policies."""

SERVICE_KIND = "Service"
"""The only kind `service` policies review."""

CONTAINER_LABELS: dict[str, str] = {
    "containers": "container",
    "initContainers": "initContainer",
    "ephemeralContainers": "ephemeralContainer",
}
"""How a message names a container of each list."""

EVALUATED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
DEBUG_SUBRESOURCE = "ephemeralcontainers"


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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Subject:
    """The object under review: its (pod or Service) spec, the pod metadata, its namespace,
    and the images exempt from container-level checks."""

    spec: Mapping[str, Any]
    exempt_images: Sequence[str] = ()
    metadata: Mapping[str, Any] | None = None
    namespace: str = ""

    def containers(self, types: Sequence[str]) -> list[tuple[str, Mapping[str, Any]]]:
        """(message label, container) of every non-exempt container in the chosen lists."""
        found: list[tuple[str, Mapping[str, Any]]] = []
        for container_type in CONTAINER_TYPES:
            if container_type not in types:
                continue
            for container in _items(self.spec.get(container_type)):
                if isinstance(container, Mapping) and not is_exempt(
                    container.get("image"), self.exempt_images
                ):
                    found.append((CONTAINER_LABELS[container_type], container))
        return found


def _name(container: Mapping[str, Any]) -> str:
    return _text(container.get("name", ""))


def _who(label: str, container: Mapping[str, Any]) -> str:
    return f'{label} "{_name(container)}"'


Parameters = Mapping[str, Any]


def _resolved(value: Any, parameters: Parameters) -> Any:
    return resolve(value, dict(parameters))


def value_problem(value: Any, allowed: Any, forbidden: Any, required: bool) -> str | None:
    """The value rule's `<rule>` when `value` breaks it, else None (None is unset)."""
    if value is None:
        if not required:
            return None
        return f"must be one of {to_json(allowed)}" if allowed is not None else "must be set"
    if allowed is not None and not is_one_of(value, allowed):
        return f"must be {'' if required else 'unset or '}one of {to_json(allowed)}"
    if forbidden is not None and is_one_of(value, forbidden):
        return f"must not be one of {to_json(forbidden)}"
    return None


def set_value_problem(value: Any, allowed: Any, forbidden: Any) -> str | None:
    """`<rule-for-set-values>`: what a set value breaks, without the unset/required wording."""
    if allowed is not None and not is_one_of(value, allowed):
        return f"must be one of {to_json(allowed)}"
    if forbidden is not None and is_one_of(value, forbidden):
        return f"must not be one of {to_json(forbidden)}"
    return None


def _rule_of(
    check: PodFieldCheck | ContainerFieldCheck | PodAndContainerFieldCheck | ServiceFieldCheck,
    parameters: Parameters,
) -> tuple[Any, Any]:
    return _resolved(check.allowed, parameters), _resolved(check.forbidden, parameters)


def pod_field(check: PodFieldCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """`spec.<field>` breaks the value rule (image exemptions ignored)."""
    allowed, forbidden = _rule_of(check, parameters)
    problem = value_problem(lookup(subject.spec, check.field), allowed, forbidden, check.required)
    return [f"spec.{check.field} {problem}"] if problem else []


def service_field(check: ServiceFieldCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """`spec.<field>` of a Service breaks the value rule."""
    allowed, forbidden = _rule_of(check, parameters)
    problem = value_problem(lookup(subject.spec, check.field), allowed, forbidden, check.required)
    return [f"spec.{check.field} {problem}"] if problem else []


def container_field(
    check: ContainerFieldCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per container: `<field>` breaks the value rule."""
    allowed, forbidden = _rule_of(check, parameters)
    messages = []
    for label, container in subject.containers(check.containerTypes):
        value = lookup(container, check.field)
        problem = value_problem(value, allowed, forbidden, check.required)
        if problem:
            messages.append(f"{_who(label, container)}: {check.field} {problem}")
    return messages


def pod_and_container_field(
    check: PodAndContainerFieldCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Every set value (pod-level, then per container) must satisfy the rule; with `required`
    a container needs the field set itself or inherited from `spec.<field>`."""
    allowed, forbidden = _rule_of(check, parameters)
    pod_value = lookup(subject.spec, check.field)
    messages = []
    if pod_value is not None and (problem := set_value_problem(pod_value, allowed, forbidden)):
        messages.append(f"spec.{check.field} {problem}")
    for label, container in subject.containers(check.containerTypes):
        value = lookup(container, check.field)
        if value is None:
            if check.required and pod_value is None:
                messages.append(
                    f"{_who(label, container)}: {check.field} must be set here or in"
                    f" spec.{check.field}"
                )
        elif problem := set_value_problem(value, allowed, forbidden):
            messages.append(f"{_who(label, container)}: {check.field} {problem}")
    return messages


def container_list_subset(
    check: ContainerListSubsetCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per container, one message per item of the list `<field>` that is not allowed."""
    allowed = _resolved(check.allowed, parameters)
    return [
        f'{_who(label, container)}: {check.field} may not contain "{_text(item)}"'
        for label, container in subject.containers(check.containerTypes)
        for item in _items(lookup(container, check.field))
        if not is_one_of(item, allowed)
    ]


def container_list_contains(
    check: ContainerListContainsCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per container, one message per value of `values` missing from the list `<field>`."""
    values = _resolved(check.values, parameters)
    messages: list[str] = []
    for label, container in subject.containers(check.containerTypes):
        items = _items(lookup(container, check.field))
        messages.extend(
            f'{_who(label, container)}: {check.field} must contain "{_text(value)}"'
            for value in values
            if not is_one_of(value, items)
        )
    return messages


def _in_range(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def container_list_range(
    check: ContainerListRangeCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per container, per item of `<list>`: `<field>` set, not 0 and outside `min`..`max`."""
    low, high = _resolved(check.min, parameters), _resolved(check.max, parameters)
    messages = []
    for label, container in subject.containers(check.containerTypes):
        for item in _items(lookup(container, check.list)):
            value = lookup(item, check.field)
            if value is None or same_value(value, 0) or _in_range(value, low, high):
                continue
            messages.append(
                f"{_who(label, container)}: {check.list}[].{check.field} {_text(value)} is not"
                f" allowed (allowed: 0 or {low}-{high})"
            )
    return messages


def _item_name(item: Any) -> str:
    return _text(_mapping(item).get("name", ""))


def pod_list_field(
    check: PodListFieldCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per item of `spec.<list>`: `<field>` set and not allowed (image exemptions ignored)."""
    allowed = _resolved(check.allowed, parameters)
    rule = f"must be unset or one of {to_json(allowed)}" if allowed else "must be unset"
    messages = []
    for item in _items(lookup(subject.spec, check.list)):
        value = lookup(item, check.field)
        if value is not None and not is_one_of(value, allowed):
            messages.append(f'spec.{check.list} item "{_item_name(item)}": {check.field} {rule}')
    return messages


def pod_list_keys(check: PodListKeysCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """Per item of `spec.<list>`, one message per key (document order) that is set, not
    ignored and not allowed: a volume may only use the allowed sources."""
    allowed = _resolved(check.allowed, parameters)
    joined = ", ".join(_text(key) for key in allowed)
    # The model's field named `list` shadows the builtin in its annotations, so mypy cannot
    # see `ignore`'s element type; it is a list of strings.
    ignored = cast("Sequence[str]", check.ignore)
    return [
        f'spec.{check.list} item "{_item_name(item)}": {key} is not allowed (allowed: {joined})'
        for item in _items(lookup(subject.spec, check.list))
        for key, value in _mapping(item).items()
        if value is not None and key not in ignored and not is_one_of(key, allowed)
    ]


def _matches_entry(value: Any, entry: Any) -> bool:
    if isinstance(entry, str) and entry.endswith("*"):
        return isinstance(value, str) and value.startswith(entry[:-1])
    return same_value(value, entry)


def pod_annotation(
    check: PodAnnotationCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Every pod annotation under `keyPrefix` must match an allowed entry (`x*` = prefix)."""
    allowed = _resolved(check.allowed, parameters)
    annotations = _mapping(_mapping(subject.metadata).get("annotations"))
    return [
        f'metadata.annotations["{key}"] must be one of {to_json(allowed)}'
        for key, value in annotations.items()
        if str(key).startswith(check.keyPrefix)
        and not any(_matches_entry(value, entry) for entry in allowed)
    ]


def pod_labels(check: PodLabelsCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """Every key of `keys` must be a label of the pod (Pod or pod-template metadata)."""
    labels = _mapping(_mapping(subject.metadata).get("labels"))
    return [
        f'metadata.labels must include "{_text(key)}"'
        for key in _resolved(check.keys, parameters)
        if key not in labels
    ]


def _images(
    subject: Subject, types: Sequence[str]
) -> list[tuple[str, Mapping[str, Any], str]]:
    """(label, container, image) per non-exempt container with a string image; other
    containers are rejected by the API server before admission."""
    return [
        (label, container, container["image"])
        for label, container in subject.containers(types)
        if isinstance(container.get("image"), str)
    ]


def image_repository(
    check: ImageRepositoryCheck, parameters: Parameters, subject: Subject
) -> list[str]:
    """Per container: the image's repository is not under an allowed entry (polgen.imageref)."""
    repos = [str(repo) for repo in _resolved(check.repos, parameters)]
    return [
        f'{_who(label, container)}: image "{image}" is not from an allowed repository'
        f" (allowed: {', '.join(repos)})"
        for label, container, image in _images(subject, check.containerTypes)
        if not is_allowed(image, repos)
    ]


def image_tag(check: ImageTagCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """Per container: the image names neither tag nor digest, or a forbidden tag."""
    forbidden = _resolved(check.forbidden, parameters)
    messages = []
    for label, container, image in _images(subject, check.containerTypes):
        ref = parse_image(image)
        if ref.tag is None and ref.digest is None:
            messages.append(
                f'{_who(label, container)}: image "{image}" must name a tag or a digest'
            )
        elif ref.tag is not None and is_one_of(ref.tag, forbidden):
            messages.append(
                f'{_who(label, container)}: image "{image}" uses forbidden tag "{ref.tag}"'
            )
    return messages


def image_digest(check: ImageDigestCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """Per container: the image is not pinned by an `@` digest."""
    return [
        f'{_who(label, container)}: image "{image}" must be pinned by digest'
        for label, container, image in _images(subject, check.containerTypes)
        if parse_image(image).digest is None
    ]


def namespace(check: NamespaceCheck, parameters: Parameters, subject: Subject) -> list[str]:
    """The object's namespace is one of `forbidden`."""
    forbidden = _resolved(check.forbidden, parameters)
    if is_one_of(subject.namespace, forbidden):
        return [f'namespace "{subject.namespace}" is not allowed']
    return []


# Each evaluator takes its own check model; the registry is keyed by that model's `kind`.
Evaluator = Callable[[Any, Parameters, Subject], list[str]]
EVALUATORS: dict[str, Evaluator] = {
    "pod-field": pod_field,
    "container-field": container_field,
    "pod-and-container-field": pod_and_container_field,
    "container-list-subset": container_list_subset,
    "container-list-contains": container_list_contains,
    "container-list-range": container_list_range,
    "pod-list-field": pod_list_field,
    "pod-list-keys": pod_list_keys,
    "pod-annotation": pod_annotation,
    "pod-labels": pod_labels,
    "image-repository": image_repository,
    "image-tag": image_tag,
    "image-digest": image_digest,
    "namespace": namespace,
    "service-field": service_field,
}


def skipped(check: Any, parameters: Parameters, spec: Mapping[str, Any]) -> bool:
    """A `skipIf` entry matches the spec exactly (type included) and, when it names a
    parameter, that parameter is true: the version-dependent Pod Security relaxations."""
    return any(
        same_value(lookup(spec, skip.field), skip.equals)
        and (skip.param is None or parameters.get(skip.param) is True)
        for skip in getattr(check, "skipIf", ())
    )


def pod_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a subject kind, or None for kinds (or objects) without one."""
    path = POD_SPEC_PATHS.get(kind)
    if path is None:
        return None
    spec = lookup(obj, ".".join(path))
    return spec if isinstance(spec, Mapping) else None


def pod_metadata(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod's metadata: the Pod's own, or the pod template's next to its spec."""
    path = POD_SPEC_PATHS.get(kind)
    return _mapping(lookup(obj, ".".join((*path[:-1], "metadata")))) if path else {}


def subject_of(
    policy: Policy, request: AdmissionRequest, exempt_images: Sequence[str] = ()
) -> Subject | None:
    """What the policy reviews in this request, or None when it reviews nothing here."""
    obj = request.object
    if obj is None:
        return None
    namespace = request.namespace or str(_mapping(obj.get("metadata")).get("namespace") or "")
    if policy.subject == "service":
        spec = obj.get("spec") if request.kind == SERVICE_KIND else None
        metadata: Mapping[str, Any] = _mapping(obj.get("metadata"))
    else:
        spec = pod_spec(request.kind, obj)
        metadata = pod_metadata(request.kind, obj)
    if not isinstance(spec, Mapping):
        return None
    return Subject(spec, tuple(exempt_images), metadata, namespace)


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
    if request.operation not in EVALUATED_OPERATIONS:
        return []
    subject = subject_of(policy, request, exempt_images)
    if subject is None:
        return []
    values = {**policy.default_parameters(), **parameters}
    plain_pod_update = (
        request.kind == "Pod"
        and request.operation == "UPDATE"
        and request.sub_resource != DEBUG_SUBRESOURCE
    )
    messages: list[str] = []
    for check in policy.checks:
        if plain_pod_update and not check.mutable:
            continue
        if skipped(check, values, subject.spec):
            continue
        messages.extend(EVALUATORS[check.kind](check, values, subject))
    return messages

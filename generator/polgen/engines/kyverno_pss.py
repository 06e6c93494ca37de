"""`validate.podSecurity`: the Pod Security Standards checks with Kyverno's exclusions.

The checks themselves are polgen's PSS checker (`polgen.engines.pss`). An exclusion names a
Kyverno control, optionally the container images it applies to (wildcards) and a restricted
field with values. polgen applies it by removing the excluded part from a copy of the pod (the
matching containers, the control's pod-level fields, or the listed field values) and exempts a
failed check when that check passes on the copy. Kyverno re-evaluates the checks on pods built
from the matching containers and compares results, which agrees on the cases its tests cover.
"""

from __future__ import annotations

import copy
from typing import Any

from polgen.engines.base import EngineError
from polgen.engines.kyverno_scalars import wildcard_match
from polgen.engines.pss import PssFailure, evaluate_pod, forbidden_detail, is_valid_version

# Kyverno's control names -> the PSS check IDs they cover, and the pod-level fields they govern.
CONTROLS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "HostProcess": (("windowsHostProcess",), (("securityContext", "windowsOptions"),)),
    "Host Namespaces": (("hostNamespaces",), (("hostNetwork",), ("hostPID",), ("hostIPC",))),
    "Privileged Containers": (("privileged",), ()),
    "Capabilities": (("capabilities_baseline", "capabilities_restricted"), ()),
    "HostPath Volumes": (("hostPathVolumes",), (("volumes",),)),
    "Host Ports": (("hostPorts",), ()),
    "AppArmor": (("appArmorProfile",), (("securityContext", "appArmorProfile"),)),
    "SELinux": (("seLinuxOptions",), (("securityContext", "seLinuxOptions"),)),
    "/proc Mount Type": (("procMount", "procMount_restricted"), ()),
    "Seccomp": (
        ("seccompProfile_baseline", "seccompProfile_restricted"),
        (("securityContext", "seccompProfile"),),
    ),
    "Sysctls": (("sysctls",), (("securityContext", "sysctls"),)),
    "Volume Types": (("restrictedVolumes",), (("volumes",),)),
    "Privilege Escalation": (("allowPrivilegeEscalation",), ()),
    "Running as Non-root": (("runAsNonRoot",), (("securityContext", "runAsNonRoot"),)),
    "Running as Non-root user": (("runAsUser",), (("securityContext", "runAsUser"),)),
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_LEVELS = ("privileged", "baseline", "restricted")


def check_definition(source: str, where: str, definition: dict[str, Any]) -> None:
    """Reject at load time what this evaluator cannot apply faithfully."""
    level = definition.get("level")
    version = str(definition.get("version") or "latest")
    if level not in _LEVELS or not is_valid_version(version):
        raise EngineError(source, f"{where}: podSecurity level {level!r} version {version!r}")
    for exclusion in definition.get("exclude") or []:
        control = exclusion.get("controlName")
        if control not in CONTROLS:
            raise EngineError(source, f"{where}: podSecurity control {control!r} is not supported")
        field = exclusion.get("restrictedField")
        if field and _field_path(str(field)) is None:
            raise EngineError(
                source, f"{where}: podSecurity restrictedField {field!r} is not supported"
            )


def _field_path(field: str) -> tuple[str, tuple[str, ...]] | None:
    """('pod', path under spec) or (container list, path under the container)."""
    parts = field.split(".")
    if len(parts) < 2 or parts[0] != "spec":
        return None
    head = parts[1]
    for name in _CONTAINER_LISTS:
        if head == f"{name}[*]":
            return name, tuple(parts[2:])
    if "[" in field:
        return None
    return "pod", tuple(parts[1:])


def pod_of(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    """The {metadata, spec} Kyverno checks: the Pod, or the controller's pod template."""
    if kind == "Pod":
        node: Any = resource
    elif kind == "CronJob":
        node = (((resource.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get(
            "template"
        )
    else:
        node = (resource.get("spec") or {}).get("template")
    node = node if isinstance(node, dict) else {}
    return {"metadata": node.get("metadata") or {}, "spec": node.get("spec") or {}}


def evaluate(definition: dict[str, Any], pod: dict[str, Any]) -> list[PssFailure]:
    """The failures Kyverno reports after applying the rule's exclusions."""
    level = str(definition["level"])
    version = str(definition.get("version") or "latest")
    failures = evaluate_pod(level, version, pod)
    exclusions = definition.get("exclude") or []
    kept = []
    for failure in failures:
        relevant = [e for e in exclusions if failure.check in CONTROLS[str(e["controlName"])][0]]
        scrubbed = _scrubbed(pod, relevant) if relevant else None
        if scrubbed is None or any(
            f.check == failure.check for f in evaluate_pod(level, version, scrubbed)
        ):
            kept.append(failure)
    return kept


def _scrubbed(pod: dict[str, Any], exclusions: list[dict[str, Any]]) -> dict[str, Any]:
    result = copy.deepcopy(pod)
    spec = result.setdefault("spec", {})
    for exclusion in exclusions:
        images = [str(i) for i in exclusion.get("images") or []]
        field = exclusion.get("restrictedField")
        values = exclusion.get("values") or []
        if field:
            located = _field_path(str(field))
            if located is not None:
                _remove_values(spec, located, images, values)
            continue
        if images:
            for name in _CONTAINER_LISTS:
                if isinstance(spec.get(name), list):
                    spec[name] = [c for c in spec[name] if not _image_matches(c, images)]
            continue
        for path in CONTROLS[str(exclusion["controlName"])][1]:
            _drop(spec, path)
    return result


def _image_matches(container: Any, images: list[str]) -> bool:
    image = str((container or {}).get("image", "")) if isinstance(container, dict) else ""
    return any(wildcard_match(pattern, image) for pattern in images)


def _remove_values(
    spec: dict[str, Any], located: tuple[str, tuple[str, ...]], images: list[str], values: list[Any]
) -> None:
    where, path = located
    if where == "pod":
        _strip(spec, path, values)
        return
    for container in spec.get(where) or []:
        if isinstance(container, dict) and (not images or _image_matches(container, images)):
            _strip(container, path, values)


def _strip(node: dict[str, Any], path: tuple[str, ...], values: list[Any]) -> None:
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return
        node = child
    leaf = path[-1] if path else ""
    current = node.get(leaf)
    if isinstance(current, list):
        node[leaf] = [v for v in current if v not in values]
    elif leaf in node and current in values:
        del node[leaf]


def _drop(node: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return
        node = child
    node.pop(path[-1], None)


def failure_message(rule: str, definition: dict[str, Any], failures: list[PssFailure]) -> str:
    level = definition["level"]
    version = definition.get("version") or "latest"
    return (
        f"Validation rule '{rule}' failed. It violates PodSecurity "
        f'"{level}:{version}": {forbidden_detail(failures)}'
    )

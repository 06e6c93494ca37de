"""Pod Security Standards, evaluated offline exactly as k8s.io/pod-security-admission does.

The checks live in `pss_checks` / `pss_checks_restricted`; this module holds the data table that
says which versioned function applies from which policy minor (and which baseline checks a
restricted check replaces), the evaluation at a `level:version`, and upstream's message format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from polgen.engines import pss_checks as base
from polgen.engines import pss_checks_restricted as restricted
from polgen.engines.pss_checks import CheckFn
from polgen.engines.pss_defaults import with_volume_defaults
from polgen.engines.pss_pod import go_quote, mapping

LEVELS = ("privileged", "baseline", "restricted")
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class PssFailure:
    """One failed check: its upstream ID, ForbiddenReason and ForbiddenDetail."""

    check: str
    reason: str
    detail: str


@dataclass(frozen=True)
class VersionedCheck:
    """The function a check uses from `minimum_minor` on, until the next entry's minor."""

    minimum_minor: int
    check_pod: CheckFn
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    versions: tuple[VersionedCheck, ...]


V = VersionedCheck
CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", "baseline", (V(0, base.app_armor_profile_1_0),)),
    Check("capabilities_baseline", "baseline", (V(0, base.capabilities_baseline_1_0),)),
    Check("hostNamespaces", "baseline", (V(0, base.host_namespaces_1_0),)),
    Check("hostPathVolumes", "baseline", (V(0, base.host_path_volumes_1_0),)),
    Check("hostPorts", "baseline", (V(0, base.host_ports_1_0),)),
    Check("hostProbesAndHostLifecycle", "baseline",
          (V(34, base.host_probes_and_host_lifecycle_1_34),)),
    Check("privileged", "baseline", (V(0, base.privileged_1_0),)),
    Check("procMount", "baseline", (V(0, base.proc_mount_1_0), V(35, base.proc_mount_1_35))),
    Check("seLinuxOptions", "baseline",
          (V(0, base.se_linux_options_1_0), V(31, base.se_linux_options_1_31))),
    Check("seccompProfile_baseline", "baseline",
          (V(0, base.seccomp_profile_baseline_1_0), V(19, base.seccomp_profile_baseline_1_19))),
    Check("sysctls", "baseline", (
        V(0, base.sysctls_1_0), V(27, base.sysctls_1_27), V(29, base.sysctls_1_29),
        V(32, base.sysctls_1_32), V(37, base.sysctls_1_37),
    )),
    Check("windowsHostProcess", "baseline", (V(0, base.windows_host_process_1_0),)),
    Check("allowPrivilegeEscalation", "restricted", (
        V(8, restricted.allow_privilege_escalation_1_8),
        V(25, restricted.allow_privilege_escalation_1_25),
    )),
    Check("capabilities_restricted", "restricted", (
        V(22, restricted.capabilities_restricted_1_22, ("capabilities_baseline",)),
        V(25, restricted.capabilities_restricted_1_25, ("capabilities_baseline",)),
    )),
    Check("procMount_restricted", "restricted",
          (V(35, restricted.proc_mount_restricted_1_35, ("procMount",)),)),
    Check("restrictedVolumes", "restricted",
          (V(0, restricted.restricted_volumes_1_0, ("hostPathVolumes",)),)),
    Check("runAsNonRoot", "restricted",
          (V(0, restricted.run_as_non_root_1_0), V(35, restricted.run_as_non_root_1_35))),
    Check("runAsUser", "restricted",
          (V(23, restricted.run_as_user_1_23), V(35, restricted.run_as_user_1_35))),
    Check("seccompProfile_restricted", "restricted", (
        V(19, restricted.seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
        V(25, restricted.seccomp_profile_restricted_1_25, ("seccompProfile_baseline",)),
    )),
)

# The newest policy version compiled in: what `latest` (and any newer v1.N) resolves to.
MAX_MINOR = max(v.minimum_minor for check in CHECKS for v in check.versions)


def _active_version(check: Check, minor: int) -> VersionedCheck | None:
    applicable = [v for v in check.versions if v.minimum_minor <= minor]
    return applicable[-1] if applicable else None


@cache
def active_checks(level: str, minor: int) -> tuple[tuple[str, CheckFn], ...]:
    """(check ID, function) at a level and resolved minor, in upstream's result order.

    Baseline IDs sorted, then restricted IDs sorted; at restricted, the baseline checks that an
    active restricted check overrides are left out.
    """
    levels = ("baseline",) if level == "baseline" else ("baseline", "restricted")
    active = {
        check.id: (check.level, version)
        for check in CHECKS
        if check.level in levels and (version := _active_version(check, minor)) is not None
    }
    overridden = {o for _, version in active.values() for o in version.overrides}
    return tuple(
        (check_id, version.check_pod)
        for lvl in levels
        for check_id, (check_level, version) in sorted(active.items())
        if check_level == lvl and check_id not in overridden
    )


def is_valid_version(version: str) -> bool:
    """`latest` or `v1.<minor>` without leading zeros, as the namespace label accepts."""
    return version == "latest" or _VERSION.match(version) is not None


def resolve_minor(version: str, max_minor: int = MAX_MINOR) -> int:
    """The policy minor a version label evaluates at: newer than the max means the max."""
    if version == "latest":
        return max_minor
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f'invalid Pod Security version {version!r}: must be "latest" or "v1.x"')
    return min(int(match.group(1)), max_minor)


def evaluate_pod(
    level: str, version: str, pod: dict[str, Any], *, max_minor: int = MAX_MINOR
) -> list[PssFailure]:
    """Every failed check of `pod` ({metadata, spec}: a Pod or a pod template) at level:version.

    `max_minor` mirrors an API server emulating an older release (what `latest` means there).
    Volume defaulting runs first, as the API server's does before admission.
    """
    if level not in LEVELS:
        valid = ", ".join(LEVELS)
        raise ValueError(f"invalid Pod Security level {level!r}: must be one of {valid}")
    minor = resolve_minor(version, max_minor)
    if level == "privileged":
        return []
    pod = with_volume_defaults(pod)
    metadata, spec = mapping(pod.get("metadata")), mapping(pod.get("spec"))
    failures = []
    for check_id, check_pod in active_checks(level, minor):
        result = check_pod(metadata, spec)
        if result is not None:
            failures.append(PssFailure(check_id, result.reason, result.detail))
    return failures


def forbidden_detail(failures: list[PssFailure]) -> str:
    """AggregateCheckResults.ForbiddenDetail: `reason (detail), ...` in check order."""
    parts = []
    for failure in failures:
        reason = failure.reason or "unknown forbidden reason"
        parts.append(f"{reason} ({failure.detail})" if failure.detail else reason)
    return ", ".join(parts)


def format_message(level: str, version: str, failures: list[PssFailure]) -> str:
    """The enforce denial: `violates PodSecurity "<level>:<version>": <details>`."""
    return f"violates PodSecurity {go_quote(f'{level}:{version}')}: {forbidden_detail(failures)}"


def format_warning(level: str, version: str, failures: list[PssFailure]) -> str:
    """The warn / audit text: `would violate PodSecurity "<level>:<version>": <details>`."""
    return f"would {format_message(level, version, failures).replace('violates', 'violate', 1)}"


# Kind -> (API groups it belongs to, path to the pod template; () means the object itself).
_TEMPLATE_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Pod": (("",), ()),
    "PodTemplate": (("",), ("template",)),
    "ReplicationController": (("",), ("spec", "template")),
    "ReplicaSet": (("apps",), ("spec", "template")),
    "Deployment": (("apps",), ("spec", "template")),
    "StatefulSet": (("apps",), ("spec", "template")),
    "DaemonSet": (("apps",), ("spec", "template")),
    "Job": (("batch",), ("spec", "template")),
    "CronJob": (("batch",), ("spec", "jobTemplate", "spec", "template")),
}


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The {metadata, spec} PSA evaluates for a Pod or a built-in workload; None otherwise.

    Only the built-in API groups count (a CRD of kind Deployment is not a pod controller). A
    workload without a template has no pod to check, which upstream also allows.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _TEMPLATE_PATHS:
        return None
    groups, path = _TEMPLATE_PATHS[kind]
    group = str(obj.get("apiVersion") or "v1").rpartition("/")[0]
    if group not in groups:
        return None
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    return {"metadata": mapping(node.get("metadata")), "spec": mapping(node.get("spec"))}

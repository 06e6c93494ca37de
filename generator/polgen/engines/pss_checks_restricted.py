"""The seven restricted Pod Security Standards checks, one function per upstream versioned check.

Same contract as `pss_checks`: (metadata, spec) -> None when allowed, else reason and detail.
The v1.25 variants exempt Windows pods; the v1.35 variants relax user-namespaced pods.
"""

from __future__ import annotations

from polgen.engines.pss_checks import (
    explicit_seccomp,
    explicit_seccomp_failure,
    proc_mount_1_0,
    setters_phrase,
)
from polgen.engines.pss_pod import (
    Forbidden,
    Json,
    container_field,
    containers,
    containers_phrase,
    dict_items,
    is_windows,
    join_quote,
    maybe_mapping,
    name_of,
    pluralize,
    pod_context,
    text,
    uses_user_namespace,
)

# A volume is fine when any of these sources is set.
ALLOWED_VOLUME_SOURCES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
)
# Otherwise its type is the first of these that is set ("unknown" when none is).
RESTRICTED_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO",
    "storageos",
)


def allow_privilege_escalation_1_8(metadata: Json, spec: Json) -> Forbidden | None:
    """Every container must set allowPrivilegeEscalation to exactly false."""
    bad = [
        name_of(c) for c in containers(spec)
        if container_field(c, "allowPrivilegeEscalation") is not False
    ]
    if not bad:
        return None
    return Forbidden(
        "allowPrivilegeEscalation != false",
        f"{containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def allow_privilege_escalation_1_25(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.25: Windows pods have no such setting."""
    return None if is_windows(spec) else allow_privilege_escalation_1_8(metadata, spec)


def capabilities_restricted_1_22(metadata: Json, spec: Json) -> Forbidden | None:
    """drop must contain "ALL"; add may only contain NET_BIND_SERVICE."""
    missing_drop_all: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for container in containers(spec):
        capabilities = maybe_mapping(container_field(container, "capabilities"))
        if capabilities is None:
            missing_drop_all.append(name_of(container))
            continue
        if "ALL" not in _strings(capabilities.get("drop")):
            missing_drop_all.append(name_of(container))
        added = {cap for cap in _strings(capabilities.get("add")) if cap != "NET_BIND_SERVICE"}
        if added:
            adding.append(name_of(container))
            forbidden |= added
    details = []
    if missing_drop_all:
        details.append(
            f"{containers_phrase(missing_drop_all)} must set "
            'securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{containers_phrase(adding)} must not include {join_quote(sorted(forbidden))} "
            "in securityContext.capabilities.add"
        )
    return Forbidden("unrestricted capabilities", "; ".join(details)) if details else None


def _strings(value: object) -> list[str]:
    return [text(item) for item in value] if isinstance(value, list) else []


def capabilities_restricted_1_25(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.25: Windows pods have no Linux capabilities."""
    return None if is_windows(spec) else capabilities_restricted_1_22(metadata, spec)


def proc_mount_restricted_1_35(metadata: Json, spec: Json) -> Forbidden | None:
    """Restricted keeps the unconditional rule even for user-namespaced pods."""
    return proc_mount_1_0(metadata, spec)


def restricted_volumes_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """Only the listed volume sources; anything else is named by its first set source."""
    bad_volumes: list[str] = []
    bad_types: set[str] = set()
    for volume in dict_items(spec.get("volumes")):
        if any(volume.get(source) is not None for source in ALLOWED_VOLUME_SOURCES):
            continue
        bad_volumes.append(text(volume.get("name")))
        found = (s for s in RESTRICTED_VOLUME_SOURCES if volume.get(s) is not None)
        bad_types.add(next(found, "unknown"))
    if not bad_volumes:
        return None
    count = len(bad_volumes)
    return Forbidden(
        "restricted volume types",
        f"{pluralize('volume', 'volumes', count)} {join_quote(bad_volumes)} "
        f"{pluralize('uses', 'use', count)} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(bad_types))} "
        f"{join_quote(sorted(bad_types))}",
    )


def run_as_non_root_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """Pod runAsNonRoot=true covers containers that leave it unset; explicit false always fails."""
    pod_value = pod_context(spec).get("runAsNonRoot")
    explicit_bad: list[str] = []
    implicit_bad: list[str] = []
    for container in containers(spec):
        value = container_field(container, "runAsNonRoot")
        if value is None:
            if pod_value is not True:
                implicit_bad.append(name_of(container))
        elif value is False:
            explicit_bad.append(name_of(container))
    pod_bad = pod_value is False
    if pod_bad or explicit_bad:
        return Forbidden(
            "runAsNonRoot != true",
            f"{setters_phrase(pod_bad, explicit_bad)} must not set "
            "securityContext.runAsNonRoot=false",
        )
    if implicit_bad:
        return Forbidden(
            "runAsNonRoot != true",
            f"pod or {containers_phrase(implicit_bad)} must set securityContext.runAsNonRoot=true",
        )
    return None


def run_as_non_root_1_35(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.35: root in a user namespace is not root on the host."""
    return None if uses_user_namespace(spec) else run_as_non_root_1_0(metadata, spec)


def _is_root(value: object) -> bool:
    return value == 0 and not isinstance(value, bool)


def run_as_user_1_23(metadata: Json, spec: Json) -> Forbidden | None:
    """runAsUser must not be 0 (the pod value fails even if every container overrides it)."""
    pod_bad = _is_root(pod_context(spec).get("runAsUser"))
    bad = [name_of(c) for c in containers(spec) if _is_root(container_field(c, "runAsUser"))]
    if not pod_bad and not bad:
        return None
    return Forbidden("runAsUser=0", f"{setters_phrase(pod_bad, bad)} must not set runAsUser=0")


def run_as_user_1_35(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.35: root in a user namespace is not root on the host."""
    return None if uses_user_namespace(spec) else run_as_user_1_23(metadata, spec)


def seccomp_profile_restricted_1_19(metadata: Json, spec: Json) -> Forbidden | None:
    """A valid profile is required: the pod's covers containers that leave theirs unset."""
    pod_bad, explicit_bad, bad_types = explicit_seccomp(spec)
    if pod_bad or explicit_bad:
        return explicit_seccomp_failure(pod_bad, explicit_bad, bad_types)
    pod_set = maybe_mapping(pod_context(spec).get("seccompProfile")) is not None
    implicit_bad = [
        name_of(c) for c in containers(spec)
        if not pod_set and maybe_mapping(container_field(c, "seccompProfile")) is None
    ]
    if not implicit_bad:
        return None
    return Forbidden(
        "seccompProfile",
        f"pod or {containers_phrase(implicit_bad)} must set securityContext.seccompProfile.type "
        'to "RuntimeDefault" or "Localhost"',
    )


def seccomp_profile_restricted_1_25(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.25: Windows pods have no seccomp."""
    return None if is_windows(spec) else seccomp_profile_restricted_1_19(metadata, spec)

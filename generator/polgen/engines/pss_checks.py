"""The twelve baseline Pod Security Standards checks, one function per upstream versioned check.

Each function takes the pod (template) metadata and spec and returns None when allowed, else the
upstream reason and detail, worded and ordered exactly as k8s.io/pod-security-admission does.
Which function applies at which policy version is decided by the table in `pss.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from polgen.engines.pss_pod import (
    Forbidden,
    Json,
    container_context,
    container_field,
    containers,
    containers_phrase,
    dict_items,
    go_quote,
    join_quote,
    mapping,
    maybe_mapping,
    name_of,
    pluralize,
    pod_context,
    text,
    uses_user_namespace,
)

CheckFn = Callable[[Json, Json], Forbidden | None]

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
VALID_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})
SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}

# The sysctl allow-list grows with the policy version; each entry adds to the previous one.
SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_1_37 = SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def setters_phrase(pod_bad: bool, bad_containers: list[str]) -> str:
    """`pod`, `{containers}` or `pod and {containers}`."""
    parts = ["pod"] if pod_bad else []
    if bad_containers:
        parts.append(containers_phrase(bad_containers))
    return " and ".join(parts)


def app_armor_profile_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """Fields must be RuntimeDefault / Localhost; beta annotations runtime/default, localhost/*."""
    bad_types: set[str] = set()

    def bad(profile: Json | None) -> bool:
        if profile is None or text(profile.get("type")) in VALID_PROFILE_TYPES:
            return False
        bad_types.add(text(profile.get("type")))
        return True

    setters = ["pod"] if bad(maybe_mapping(pod_context(spec).get("appArmorProfile"))) else []
    bad_containers = [
        name_of(c) for c in containers(spec)
        if bad(maybe_mapping(container_field(c, "appArmorProfile")))
    ]
    if bad_containers:
        setters.append(containers_phrase(bad_containers))
    annotations = sorted(
        f"{key}={go_quote(text(value))}"
        for key, value in mapping(metadata.get("annotations")).items()
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not _allowed_apparmor(text(value))
    )
    if annotations:
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    values = sorted(bad_types) + annotations
    return Forbidden(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}",
    )


def _allowed_apparmor(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def capabilities_baseline_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """Added capabilities must be in the default container-runtime set (exact names)."""
    bad_containers: list[str] = []
    forbidden: set[str] = set()
    for container in containers(spec):
        capabilities = maybe_mapping(container_field(container, "capabilities"))
        if capabilities is None:
            continue
        added = {text(cap) for cap in _list(capabilities.get("add"))} - BASELINE_CAPABILITIES
        if added:
            bad_containers.append(name_of(container))
            forbidden |= added
    if not bad_containers:
        return None
    return Forbidden(
        "non-default capabilities",
        f"{containers_phrase(bad_containers)} must not include {join_quote(sorted(forbidden))} "
        "in securityContext.capabilities.add",
    )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def host_namespaces_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """hostNetwork, hostPID and hostIPC must not be true."""
    flags = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return Forbidden("host namespaces", ", ".join(flags)) if flags else None


def host_path_volumes_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """No hostPath volume, in spec order."""
    volumes = dict_items(spec.get("volumes"))
    names = [text(v.get("name")) for v in volumes if v.get("hostPath") is not None]
    if not names:
        return None
    volume_word = pluralize("volume", "volumes", len(names))
    return Forbidden("hostPath volumes", f"{volume_word} {join_quote(names)}")


def host_ports_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """No non-zero hostPort; ports are listed unique and sorted as strings, like Go's sets."""
    bad_containers: list[str] = []
    ports: set[str] = set()
    for container in containers(spec):
        used = {
            text(port.get("hostPort")) for port in dict_items(container.get("ports"))
            if port.get("hostPort") not in (None, 0)
        }
        if used:
            bad_containers.append(name_of(container))
            ports |= used
    if not bad_containers:
        return None
    return Forbidden(
        "hostPort",
        f"{containers_phrase(bad_containers)} {pluralize('uses', 'use', len(bad_containers))} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
    )


def _handler_hosts(handler: object) -> list[str]:
    """Non-empty `host` of a probe's or lifecycle handler's httpGet / tcpSocket."""
    handler = mapping(handler)
    hosts = (text(mapping(handler.get(kind)).get("host")) for kind in ("httpGet", "tcpSocket"))
    return [host for host in hosts if host]


def host_probes_and_host_lifecycle_1_34(metadata: Json, spec: Json) -> Forbidden | None:
    """Probes and lifecycle hooks must not target another host (names and hosts sorted)."""
    bad_containers: set[str] = set()
    hosts: set[str] = set()
    for container in containers(spec):
        lifecycle = mapping(container.get("lifecycle"))
        handlers = [container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
        found = [host for handler in handlers for host in _handler_hosts(handler)]
        if found:
            bad_containers.add(name_of(container))
            hosts.update(found)
    if not bad_containers:
        return None
    count = len(bad_containers)
    return Forbidden(
        "probe or lifecycle host",
        f"{containers_phrase(sorted(bad_containers))} {pluralize('uses', 'use', count)} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
        f"{join_quote(sorted(hosts))}",
    )


def privileged_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """securityContext.privileged must not be true."""
    bad = [name_of(c) for c in containers(spec) if container_field(c, "privileged") is True]
    if not bad:
        return None
    detail = f"{containers_phrase(bad)} must not set securityContext.privileged=true"
    return Forbidden("privileged", detail)


def proc_mount_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """procMount must be unset or Default (also the unconditional rule of procMount_restricted)."""
    bad_containers: list[str] = []
    kinds: set[str] = set()
    for container in containers(spec):
        value = container_field(container, "procMount")
        if value is not None and value != "Default":
            bad_containers.append(name_of(container))
            kinds.add(text(value))
    if not bad_containers:
        return None
    return Forbidden(
        "procMount",
        f"{containers_phrase(bad_containers)} must not set securityContext.procMount to "
        f"{join_quote(sorted(kinds))}",
    )


def proc_mount_1_35(metadata: Json, spec: Json) -> Forbidden | None:
    """v1.35: a user-namespaced pod (hostUsers: false) may unmask /proc."""
    return None if uses_user_namespace(spec) else proc_mount_1_0(metadata, spec)


def _se_linux_options(allowed_types: frozenset[str]) -> CheckFn:
    def check(metadata: Json, spec: Json) -> Forbidden | None:
        bad_types: set[str] = set()
        set_fields: set[str] = set()

        def bad(options: Json | None) -> bool:
            if options is None:
                return False
            kind = text(options.get("type"))
            if kind not in allowed_types:
                bad_types.add(kind)
            found = {f for f in ("user", "role") if text(options.get(f))}
            set_fields.update(found)
            return kind not in allowed_types or bool(found)

        pod_bad = bad(maybe_mapping(pod_context(spec).get("seLinuxOptions")))
        bad_containers = [
            name_of(c) for c in containers(spec)
            if bad(maybe_mapping(container_field(c, "seLinuxOptions")))
        ]
        if not pod_bad and not bad_containers:
            return None
        data = []
        if bad_types:
            type_word = pluralize("type", "types", len(bad_types))
            data.append(f"{type_word} {join_quote(sorted(bad_types))}")
        data += [f"{f} may not be set" for f in ("user", "role") if f in set_fields]
        return Forbidden(
            "seLinuxOptions",
            f"{setters_phrase(pod_bad, bad_containers)} set forbidden "
            f"securityContext.seLinuxOptions: {'; '.join(data)}",
        )

    return check


se_linux_options_1_0 = _se_linux_options(SELINUX_TYPES_1_0)
se_linux_options_1_31 = _se_linux_options(SELINUX_TYPES_1_31)


def _valid_seccomp_annotation(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """Before v1.19 only the alpha annotations (pod, and per existing container) are checked."""
    annotations = mapping(metadata.get("annotations"))
    keys = [SECCOMP_POD_ANNOTATION]
    keys += [SECCOMP_CONTAINER_ANNOTATION_PREFIX + name_of(c) for c in containers(spec)]
    forbidden = {
        f"{key}={go_quote(text(annotations[key]))}" for key in keys
        if key in annotations and not _valid_seccomp_annotation(text(annotations[key]))
    }
    if not forbidden:
        return None
    return Forbidden(
        "seccompProfile",
        f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} "
        f"{', '.join(sorted(forbidden))}",
    )


def explicit_seccomp(spec: Json) -> tuple[bool, list[str], set[str]]:
    """(pod sets a bad type, containers that set a bad type, bad types); restricted shares it."""
    bad_types: set[str] = set()

    def bad(profile: Json | None) -> bool:
        if profile is None or text(profile.get("type")) in VALID_PROFILE_TYPES:
            return False
        bad_types.add(text(profile.get("type")))
        return True

    pod_bad = bad(maybe_mapping(pod_context(spec).get("seccompProfile")))
    bad_containers = [
        name_of(c) for c in containers(spec)
        if bad(maybe_mapping(container_field(c, "seccompProfile")))
    ]
    return pod_bad, bad_containers, bad_types


def explicit_seccomp_failure(
    pod_bad: bool, bad_containers: list[str], bad_types: set[str]
) -> Forbidden:
    return Forbidden(
        "seccompProfile",
        f"{setters_phrase(pod_bad, bad_containers)} must not set "
        f"securityContext.seccompProfile.type to {join_quote(sorted(bad_types))}",
    )


def seccomp_profile_baseline_1_19(metadata: Json, spec: Json) -> Forbidden | None:
    """From v1.19 the fields: a profile that is set must be RuntimeDefault or Localhost."""
    pod_bad, bad_containers, bad_types = explicit_seccomp(spec)
    if not pod_bad and not bad_containers:
        return None
    return explicit_seccomp_failure(pod_bad, bad_containers, bad_types)


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(metadata: Json, spec: Json) -> Forbidden | None:
        names = [text(s.get("name")) for s in dict_items(pod_context(spec).get("sysctls"))]
        bad = [name for name in names if name not in allowed]
        return Forbidden("forbidden sysctls", ", ".join(bad)) if bad else None

    return check


sysctls_1_0 = _sysctls(SYSCTLS_1_0)
sysctls_1_27 = _sysctls(SYSCTLS_1_27)
sysctls_1_29 = _sysctls(SYSCTLS_1_29)
sysctls_1_32 = _sysctls(SYSCTLS_1_32)
sysctls_1_37 = _sysctls(SYSCTLS_1_37)


def windows_host_process_1_0(metadata: Json, spec: Json) -> Forbidden | None:
    """windowsOptions.hostProcess must not be true, on the pod or any container."""

    def host_process(context: Json | None) -> bool:
        return mapping(mapping(context).get("windowsOptions")).get("hostProcess") is True

    pod_bad = host_process(pod_context(spec))
    bad_containers = [name_of(c) for c in containers(spec) if host_process(container_context(c))]
    if not pod_bad and not bad_containers:
        return None
    return Forbidden(
        "hostProcess",
        f"{setters_phrase(pod_bad, bad_containers)} must not set "
        "securityContext.windowsOptions.hostProcess=true",
    )

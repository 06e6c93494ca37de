"""Pod Security Standards checks: exact upstream messages, version boundaries, pod templates.

The expected strings are those of k8s.io/pod-security-admission (policy/*_test.go wording and the
reference notes); each table row builds a small pod and names the one check it is about.
"""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.pss import (
    CHECKS,
    MAX_MINOR,
    PssFailure,
    active_checks,
    evaluate_pod,
    format_message,
    format_warning,
    pod_template,
    resolve_minor,
)
from polgen.engines.pss_defaults import with_host_network_ports, with_volume_defaults
from polgen.engines.pss_pod import go_quote

Json = dict[str, Any]


def pod(annotations: Json | None = None, **spec: Any) -> Json:
    metadata: Json = {"name": "p"}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec}


def ctr(name: str = "c", **security_context: Any) -> Json:
    container: Json = {"name": name, "image": "registry.k8s.io/pause"}
    if security_context:
        container["securityContext"] = security_context
    return container


# Passes restricted at every version: the newest upstream minimal restricted pod.
RESTRICTED_SC: Json = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
RESTRICTED_POD_SC: Json = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_pod(
    pod_sc: Json | None = None,
    annotations: Json | None = None,
    containers: list[Json] | None = None,
    **spec: Any,
) -> Json:
    return pod(
        annotations,
        securityContext={**RESTRICTED_POD_SC, **(pod_sc or {})},
        containers=containers or [ctr(**RESTRICTED_SC)],
        **spec,
    )


def failure(level: str, version: str, subject: Json, check: str) -> PssFailure | None:
    return next((f for f in evaluate_pod(level, version, subject) if f.check == check), None)


# (check, pod, expected reason, expected detail): evaluated at baseline:latest unless the check
# is one of RESTRICTED_ONLY (then restricted:latest).
EXACT: list[tuple[str, Json, str, str]] = [
    (
        "appArmorProfile",
        pod(securityContext={"appArmorProfile": {"type": "Unconfined"}}),
        "forbidden AppArmor profile",
        'pod must not set AppArmor profile type to "Unconfined"',
    ),
    (
        "appArmorProfile",
        pod(
            containers=[
                ctr("a", appArmorProfile={"type": "Unconfined"}),
                ctr("b", appArmorProfile={}),
            ],
            initContainers=[ctr("i", appArmorProfile={"type": "Localhost"})],
        ),
        "forbidden AppArmor profiles",
        'containers "a", "b" must not set AppArmor profile type to "", "Unconfined"',
    ),
    (
        "appArmorProfile",
        pod(
            {
                "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/ok": "localhost/x",
                "container.apparmor.security.beta.kubernetes.io/": 'bo"gus',
            }
        ),
        "forbidden AppArmor profiles",
        "annotations must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/="bo\\"gus"", '
        '"container.apparmor.security.beta.kubernetes.io/e="unconfined""',
    ),
    (
        "appArmorProfile",
        pod(
            {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"},
            securityContext={"appArmorProfile": {"type": "Unconfined"}},
            containers=[ctr(appArmorProfile={"type": "Unconfined"})],
        ),
        "forbidden AppArmor profiles",
        'pod and container "c" and annotation must not set AppArmor profile type to "Unconfined", '
        '"container.apparmor.security.beta.kubernetes.io/c="unconfined""',
    ),
    (
        "capabilities_baseline",
        pod(
            containers=[
                ctr("a", capabilities={"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}),
                ctr("b", capabilities={"add": ["CAP_CHOWN", "NET_RAW"], "drop": ["ALL"]}),
                ctr("ok", capabilities={"add": ["NET_BIND_SERVICE", "KILL"]}),
            ]
        ),
        "non-default capabilities",
        'containers "a", "b" must not include "CAP_CHOWN", "NET_RAW", "SYS_ADMIN" '
        "in securityContext.capabilities.add",
    ),
    (
        "hostNamespaces",
        pod(hostIPC=True, hostPID=True, hostNetwork=True),
        "host namespaces",
        "hostNetwork=true, hostPID=true, hostIPC=true",
    ),
    ("hostNamespaces", pod(hostPID=True, hostNetwork=False), "host namespaces", "hostPID=true"),
    (
        "hostPathVolumes",
        pod(
            volumes=[
                {"name": "a", "hostPath": {"path": "/"}},
                {"name": "e", "emptyDir": {}},
                {"name": "b", "hostPath": {}},
            ]
        ),
        "hostPath volumes",
        'volumes "a", "b"',
    ),
    (
        "hostPorts",
        pod(
            containers=[
                {
                    "name": "b",
                    "ports": [{"containerPort": 1, "hostPort": 20}, {"containerPort": 2}],
                },
                {
                    "name": "c",
                    "ports": [
                        {"containerPort": 3, "hostPort": 100},
                        {"containerPort": 4, "hostPort": 20},
                    ],
                },
            ]
        ),
        "hostPort",
        'containers "b", "c" use hostPorts 100, 20',
    ),
    (
        "hostPorts",
        pod(containers=[{"name": "a", "ports": [{"containerPort": 8, "hostPort": 8}]}]),
        "hostPort",
        'container "a" uses hostPort 8',
    ),
    (
        "hostProbesAndHostLifecycle",
        pod(
            containers=[
                {
                    "name": "z",
                    "livenessProbe": {"httpGet": {"host": "b.com", "port": 80}},
                    "lifecycle": {"preStop": {"tcpSocket": {"host": "a.com", "port": 1}}},
                },
                {
                    "name": "y",
                    "startupProbe": {"tcpSocket": {"host": "b.com", "port": 1}},
                    "readinessProbe": {"grpc": {"port": 1}},
                },
            ]
        ),
        "probe or lifecycle host",
        'containers "y", "z" use probe or lifecycle hosts "a.com", "b.com"',
    ),
    (
        "hostProbesAndHostLifecycle",
        pod(
            initContainers=[
                {"name": "i", "lifecycle": {"postStart": {"httpGet": {"host": "8.8.8.8"}}}}
            ]
        ),
        "probe or lifecycle host",
        'container "i" uses probe or lifecycle host "8.8.8.8"',
    ),
    (
        "privileged",
        pod(
            containers=[ctr("c", privileged=True), ctr("off", privileged=False)],
            initContainers=[ctr("i", privileged=True)],
            ephemeralContainers=[ctr("debug", privileged=True)],
        ),
        "privileged",
        'containers "i", "c", "debug" must not set securityContext.privileged=true',
    ),
    (
        "procMount",
        pod(containers=[ctr("a", procMount="Unmasked"), ctr("b", procMount="Default")]),
        "procMount",
        'container "a" must not set securityContext.procMount to "Unmasked"',
    ),
    (
        "seLinuxOptions",
        pod(
            securityContext={"seLinuxOptions": {"type": "spc_t", "level": "s0"}},
            containers=[
                ctr("a", seLinuxOptions={"user": "u", "role": "r"}),
                ctr("b", seLinuxOptions={"type": "bad_t", "level": "s0:c1"}),
            ],
        ),
        "seLinuxOptions",
        'pod and containers "a", "b" set forbidden securityContext.seLinuxOptions: '
        'types "bad_t", "spc_t"; user may not be set; role may not be set',
    ),
    (
        "seLinuxOptions",
        pod(securityContext={"seLinuxOptions": {"user": "bad"}}),
        "seLinuxOptions",
        "pod set forbidden securityContext.seLinuxOptions: user may not be set",
    ),
    (
        "seccompProfile_baseline",
        pod(
            securityContext={"seccompProfile": {"type": "Unconfined"}},
            containers=[
                ctr("a", seccompProfile={"type": "Localhost", "localhostProfile": "x"}),
                ctr("b", seccompProfile={"type": "Bogus"}),
            ],
        ),
        "seccompProfile",
        'pod and container "b" must not set securityContext.seccompProfile.type to '
        '"Bogus", "Unconfined"',
    ),
    (
        "sysctls",
        pod(
            securityContext={
                "sysctls": [
                    {"name": "kernel.msgmax", "value": "1"},
                    {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                    {"name": "kernel.msgmax", "value": "2"},
                    {"name": "net.core.somaxconn", "value": "1"},
                ]
            }
        ),
        "forbidden sysctls",
        "kernel.msgmax, kernel.msgmax, net.core.somaxconn",
    ),
    (
        "windowsHostProcess",
        pod(
            securityContext={"windowsOptions": {"hostProcess": True}},
            containers=[
                ctr("a", windowsOptions={"hostProcess": True}),
                ctr("b", windowsOptions={"hostProcess": False}),
            ],
        ),
        "hostProcess",
        'pod and container "a" must not set securityContext.windowsOptions.hostProcess=true',
    ),
    (
        "allowPrivilegeEscalation",
        pod(
            containers=[
                ctr("a"),
                ctr("b", allowPrivilegeEscalation=True),
                ctr("ok", allowPrivilegeEscalation=False),
            ]
        ),
        "allowPrivilegeEscalation != false",
        'containers "a", "b" must set securityContext.allowPrivilegeEscalation=false',
    ),
    (
        "capabilities_restricted",
        pod(
            containers=[
                ctr("a"),
                ctr("b", capabilities={"drop": ["all"], "add": ["CHOWN"]}),
                ctr("c", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "KILL"]}),
            ]
        ),
        "unrestricted capabilities",
        'containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; '
        'containers "b", "c" must not include "CHOWN", "KILL" in securityContext.capabilities.add',
    ),
    (
        "restrictedVolumes",
        pod(
            volumes=[
                {"name": "a", "hostPath": {"path": "/"}},
                {"name": "ok", "configMap": {}},
                {"name": "b", "nfs": {"server": "s"}, "gitRepo": None},
                {"name": "c", "gitRepo": {"repository": "r"}, "hostPath": {}},
            ]
        ),
        "restricted volume types",
        'volumes "a", "b", "c" use restricted volume types "hostPath", "nfs"',
    ),
    (
        "restrictedVolumes",
        pod(volumes=[{"name": "g", "gcePersistentDisk": {"pdName": "x"}}]),
        "restricted volume types",
        'volume "g" uses restricted volume type "gcePersistentDisk"',
    ),
    (
        "runAsNonRoot",
        pod(
            securityContext={"runAsNonRoot": True},
            containers=[ctr("a", runAsNonRoot=False), ctr("b")],
        ),
        "runAsNonRoot != true",
        'container "a" must not set securityContext.runAsNonRoot=false',
    ),
    (
        "runAsNonRoot",
        pod(securityContext={"runAsNonRoot": False}, containers=[ctr("a", runAsNonRoot=False)]),
        "runAsNonRoot != true",
        'pod and container "a" must not set securityContext.runAsNonRoot=false',
    ),
    (
        "runAsNonRoot",
        pod(containers=[ctr("a"), ctr("b", runAsNonRoot=True), ctr("c")]),
        "runAsNonRoot != true",
        'pod or containers "a", "c" must set securityContext.runAsNonRoot=true',
    ),
    (
        "runAsUser",
        pod(
            securityContext={"runAsUser": 0},
            containers=[ctr("a", runAsUser=1000), ctr("b", runAsUser=0)],
        ),
        "runAsUser=0",
        'pod and container "b" must not set runAsUser=0',
    ),
    (
        "seccompProfile_restricted",
        pod(
            securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
            containers=[ctr("a"), ctr("b", seccompProfile={"type": "Unconfined"})],
        ),
        "seccompProfile",
        'container "b" must not set securityContext.seccompProfile.type to "Unconfined"',
    ),
    (
        "seccompProfile_restricted",
        pod(containers=[ctr("a"), ctr("b", seccompProfile={"type": "Localhost"}), ctr("c")]),
        "seccompProfile",
        'pod or containers "a", "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost"',
    ),
]

RESTRICTED_ONLY = {
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "restrictedVolumes",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
}


@pytest.mark.parametrize(
    ("check", "subject", "reason", "detail"),
    EXACT,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(EXACT)],
)
def test_exact_reason_and_detail(check: str, subject: Json, reason: str, detail: str) -> None:
    level = "restricted" if check in RESTRICTED_ONLY else "baseline"
    assert failure(level, "latest", subject, check) == PssFailure(check, reason, detail)


def test_seccomp_annotations_before_v1_19() -> None:
    subject = pod(
        {
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
            "container.seccomp.security.alpha.kubernetes.io/b": "",
            "container.seccomp.security.alpha.kubernetes.io/gone": "unconfined",
        },
        containers=[ctr("a"), ctr("b")],
    )
    assert failure("baseline", "v1.18", subject, "seccompProfile_baseline") == PssFailure(
        "seccompProfile_baseline",
        "seccompProfile",
        'forbidden annotations container.seccomp.security.alpha.kubernetes.io/b="", '
        'seccomp.security.alpha.kubernetes.io/pod="unconfined"',
    )
    assert failure("baseline", "v1.19", subject, "seccompProfile_baseline") is None


# (what, pod, level, versions where it is allowed, versions where it is denied, check that fails)
BOUNDARIES: list[tuple[str, Json, str, list[str], list[str], str]] = [
    (
        "sysctl ip_local_reserved_ports",
        pod(securityContext={"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports"}]}),
        "baseline",
        ["v1.27", "latest"],
        ["v1.0", "v1.26"],
        "sysctls",
    ),
    (
        "sysctl tcp_keepalive_time",
        pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_keepalive_time"}]}),
        "baseline",
        ["v1.29"],
        ["v1.28"],
        "sysctls",
    ),
    (
        "sysctl tcp_rmem",
        pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}),
        "restricted",
        ["v1.32", "v1.36"],
        ["v1.31"],
        "sysctls",
    ),
    (
        "sysctl tcp_notsent_lowat",
        pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]}),
        "baseline",
        ["v1.37", "v1.99", "latest"],
        ["v1.36"],
        "sysctls",
    ),
    (
        "selinux container_engine_t",
        pod(containers=[ctr(seLinuxOptions={"type": "container_engine_t"})]),
        "baseline",
        ["v1.31"],
        ["v1.30"],
        "seLinuxOptions",
    ),
    (
        "probe host",
        pod(containers=[{"name": "c", "readinessProbe": {"httpGet": {"host": "x"}}}]),
        "baseline",
        ["v1.0", "v1.33"],
        ["v1.34", "latest"],
        "hostProbesAndHostLifecycle",
    ),
    (
        "lifecycle tcpSocket host",
        restricted_pod(
            containers=[
                {**ctr(**RESTRICTED_SC), "lifecycle": {"preStop": {"tcpSocket": {"host": "x"}}}}
            ]
        ),
        "restricted",
        ["v1.33"],
        ["v1.34"],
        "hostProbesAndHostLifecycle",
    ),
    (
        "procMount Unmasked with hostUsers false",
        pod(hostUsers=False, containers=[ctr(procMount="Unmasked")]),
        "baseline",
        ["v1.35", "latest"],
        ["v1.0", "v1.34"],
        "procMount",
    ),
    (
        "procMount Unmasked with hostUsers null",
        pod(hostUsers=None, containers=[ctr(procMount="Unmasked")]),
        "baseline",
        [],
        ["v1.35"],
        "procMount",
    ),
    (
        "restricted procMount stays strict with hostUsers false",
        restricted_pod(hostUsers=False, containers=[ctr(**RESTRICTED_SC, procMount="Unmasked")]),
        "restricted",
        [],
        ["v1.35", "latest"],
        "procMount_restricted",
    ),
    (
        "runAsNonRoot unset with hostUsers false",
        restricted_pod(pod_sc={"runAsNonRoot": None}, hostUsers=False),
        "restricted",
        ["v1.35"],
        ["v1.34"],
        "runAsNonRoot",
    ),
    (
        "runAsUser 0 with hostUsers false",
        restricted_pod(pod_sc={"runAsUser": 0}, hostUsers=False),
        "restricted",
        ["v1.35"],
        ["v1.34"],
        "runAsUser",
    ),
    (
        "runAsUser 0 appears at v1.23",
        restricted_pod(pod_sc={"runAsUser": 0}),
        "restricted",
        ["v1.22"],
        ["v1.23"],
        "runAsUser",
    ),
    (
        "allowPrivilegeEscalation appears at v1.8",
        restricted_pod(containers=[ctr(capabilities={"drop": ["ALL"]})]),
        "restricted",
        ["v1.7"],
        ["v1.8"],
        "allowPrivilegeEscalation",
    ),
    (
        "drop ALL appears at v1.22",
        restricted_pod(containers=[ctr(allowPrivilegeEscalation=False)]),
        "restricted",
        ["v1.21"],
        ["v1.22"],
        "capabilities_restricted",
    ),
    (
        "seccomp required at v1.19",
        restricted_pod(pod_sc={"seccompProfile": None}),
        "restricted",
        ["v1.18"],
        ["v1.19"],
        "seccompProfile_restricted",
    ),
    (
        "windows pod relaxed from v1.25",
        pod(os={"name": "windows"}, securityContext={"runAsNonRoot": True}, containers=[ctr()]),
        "restricted",
        ["v1.25", "v1.28", "latest"],
        ["v1.24"],
        "allowPrivilegeEscalation",
    ),
    (
        "linux os is not windows",
        pod(os={"name": "linux"}, securityContext={"runAsNonRoot": True}, containers=[ctr()]),
        "restricted",
        [],
        ["v1.25"],
        "seccompProfile_restricted",
    ),
    (
        "windows pod still needs runAsNonRoot",
        pod(os={"name": "windows"}, containers=[ctr()]),
        "restricted",
        [],
        ["v1.25", "latest"],
        "runAsNonRoot",
    ),
]


@pytest.mark.parametrize(
    ("what", "subject", "level", "allowed", "denied", "check"),
    BOUNDARIES,
    ids=[row[0] for row in BOUNDARIES],
)
def test_version_boundaries(
    what: str, subject: Json, level: str, allowed: list[str], denied: list[str], check: str
) -> None:
    for version in allowed:
        assert evaluate_pod(level, version, subject) == [], f"{what} at {version}"
    for version in denied:
        checks = [f.check for f in evaluate_pod(level, version, subject)]
        assert check in checks, f"{what} at {version}: {checks}"


@pytest.mark.parametrize(
    ("pod_type", "container_type", "expected"),
    [
        ("RuntimeDefault", None, None),
        (
            "Localhost",
            "Unconfined",
            'container "c" must not set securityContext.seccompProfile.type to "Unconfined"',
        ),
        (
            "Unconfined",
            "RuntimeDefault",
            'pod must not set securityContext.seccompProfile.type to "Unconfined"',
        ),
        (None, "Localhost", None),
    ],
)
def test_seccomp_pod_and_container_override(
    pod_type: str | None, container_type: str | None, expected: str | None
) -> None:
    pod_sc = {"runAsNonRoot": True, "seccompProfile": {"type": pod_type} if pod_type else None}
    container_sc = {**RESTRICTED_SC}
    if container_type:
        container_sc["seccompProfile"] = {"type": container_type}
    found = failure(
        "restricted",
        "latest",
        restricted_pod(pod_sc, containers=[ctr(**container_sc)]),
        "seccompProfile_restricted",
    )
    assert (found.detail if found else None) == expected


@pytest.mark.parametrize(
    ("capabilities", "allowed"),
    [
        ({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, True),
        ({"drop": ["ALL", "NET_RAW"]}, True),
        ({"drop": ["ALL"], "add": ["CHOWN"]}, False),
        ({"drop": ["all"]}, False),
        ({"drop": ["NET_RAW"]}, False),
        ({}, False),
        (None, False),
    ],
)
def test_capabilities_restricted(capabilities: Json | None, allowed: bool) -> None:
    subject = restricted_pod(
        containers=[ctr(allowPrivilegeEscalation=False, capabilities=capabilities)]
    )
    assert (evaluate_pod("restricted", "latest", subject) == []) is allowed


def test_restricted_overrides_baseline_checks() -> None:
    subject = restricted_pod(
        volumes=[{"name": "h", "hostPath": {"path": "/"}}],
        containers=[
            ctr(
                "c",
                allowPrivilegeEscalation=False,
                capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            )
        ],
    )
    assert [f.check for f in evaluate_pod("restricted", "latest", subject)] == [
        "capabilities_restricted",
        "restrictedVolumes",
    ]
    assert [f.check for f in evaluate_pod("restricted", "v1.21", subject)] == [
        "capabilities_baseline",
        "restrictedVolumes",
    ]
    assert [f.check for f in evaluate_pod("baseline", "latest", subject)] == [
        "capabilities_baseline",
        "hostPathVolumes",
    ]


def test_ephemeral_containers_are_checked_at_restricted() -> None:
    debug = {"name": "debug", "image": "busybox", "targetContainerName": "c"}
    subject = restricted_pod(ephemeralContainers=[debug])
    assert [f.check for f in evaluate_pod("restricted", "latest", subject)] == [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
    ]
    assert failure("restricted", "latest", subject, "allowPrivilegeEscalation") == PssFailure(
        "allowPrivilegeEscalation",
        "allowPrivilegeEscalation != false",
        'container "debug" must set securityContext.allowPrivilegeEscalation=false',
    )
    assert (
        evaluate_pod(
            "restricted",
            "latest",
            restricted_pod(ephemeralContainers=[{**debug, **ctr("debug", **RESTRICTED_SC)}]),
        )
        == []
    )


def test_message_aggregates_in_check_order() -> None:
    subject = pod(hostPID=True, containers=[ctr("x", privileged=True)])
    failures = evaluate_pod("restricted", "latest", subject)
    assert format_message("restricted", "latest", failures).startswith(
        'violates PodSecurity "restricted:latest": host namespaces (hostPID=true), '
        'privileged (container "x" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "x" must set '
        "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities ("
    )
    assert format_warning("baseline", "v1.24", evaluate_pod("baseline", "v1.24", subject)) == (
        'would violate PodSecurity "baseline:v1.24": host namespaces (hostPID=true), '
        'privileged (container "x" must not set securityContext.privileged=true)'
    )


def test_message_placeholders_for_empty_reason_and_detail() -> None:
    failures = [PssFailure("a", "", "d"), PssFailure("b", "r", "")]
    assert format_message("baseline", "v1.99", failures) == (
        'violates PodSecurity "baseline:v1.99": unknown forbidden reason (d), r'
    )


def test_levels_and_versions() -> None:
    awful = pod(hostNetwork=True, containers=[ctr(privileged=True)])
    assert evaluate_pod("privileged", "v1.0", awful) == []
    assert resolve_minor("latest") == MAX_MINOR == 37
    assert resolve_minor("v1.99") == MAX_MINOR
    assert resolve_minor("latest", max_minor=35) == 35
    for bad in ("v1.01", "v2.0", "1.30", "v1.", ""):
        with pytest.raises(ValueError, match="must be"):
            evaluate_pod("baseline", bad, awful)
    with pytest.raises(ValueError, match="must be one of"):
        evaluate_pod("Baseline", "latest", awful)


def test_emulated_release_lowers_latest() -> None:
    subject = pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_slow_start_after_idle"}]})
    assert evaluate_pod("baseline", "latest", subject) == []
    assert [f.check for f in evaluate_pod("baseline", "latest", subject, max_minor=35)] == [
        "sysctls"
    ]


def test_registry_table_is_well_formed() -> None:
    """Minimum versions strictly increase and overrides only name baseline checks."""
    baseline_ids = {c.id for c in CHECKS if c.level == "baseline"}
    assert len(CHECKS) == 19 and len(baseline_ids) == 12
    for check in CHECKS:
        minors = [v.minimum_minor for v in check.versions]
        assert minors == sorted(set(minors)), check.id
        for version in check.versions:
            assert check.level == "restricted" or not version.overrides
            assert set(version.overrides) <= baseline_ids
    assert [c for c, _ in active_checks("baseline", 33)][-1] == "windowsHostProcess"


def test_volume_without_source_defaults_to_empty_dir() -> None:
    subject = restricted_pod(volumes=[{"name": "v"}, {"name": "h", "hostPath": {"path": "/"}}])
    assert with_volume_defaults(subject)["spec"]["volumes"][0] == {"name": "v", "emptyDir": {}}
    assert subject["spec"]["volumes"][0] == {"name": "v"}, "input must not be mutated"
    assert [f.detail for f in evaluate_pod("restricted", "latest", subject)] == [
        'volume "h" uses restricted volume type "hostPath"'
    ]


def test_host_network_defaults_host_ports() -> None:
    subject = pod(
        hostNetwork=True,
        containers=[
            {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 9, "hostPort": 90}]}
        ],
    )
    defaulted = with_host_network_ports(subject)
    assert [p["hostPort"] for p in defaulted["spec"]["containers"][0]["ports"]] == [80, 90]
    assert "hostPort" not in subject["spec"]["containers"][0]["ports"][0]
    assert failure("baseline", "latest", defaulted, "hostPorts") == PssFailure(
        "hostPorts", "hostPort", 'container "a" uses hostPorts 80, 90'
    )
    without_network = pod(containers=[{"name": "a", "ports": [{"containerPort": 80}]}])
    assert with_host_network_ports(without_network) is without_network


def test_malformed_fields_do_not_crash() -> None:
    subject = {
        "metadata": None,
        "spec": {
            "containers": [None, "x", {"securityContext": None}],
            "volumes": ["v"],
            "securityContext": [],
        },
    }
    checks = {f.check for f in evaluate_pod("restricted", "latest", subject)}
    assert {"allowPrivilegeEscalation", "runAsNonRoot"} <= checks


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ("\x00\x7f", '"\\x00\\x7f"'),
        ("é✓", '"é✓"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [ctr()]}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"apiVersion": "v1", "kind": "Pod", **TEMPLATE}, TEMPLATE),
        ({"apiVersion": "v1", "kind": "PodTemplate", "template": TEMPLATE}, TEMPLATE),
        (
            {"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": TEMPLATE}},
            TEMPLATE,
        ),
        ({"apiVersion": "v1", "kind": "ReplicationController", "spec": {}}, None),
        *[
            ({"apiVersion": "apps/v1", "kind": kind, "spec": {"template": TEMPLATE}}, TEMPLATE)
            for kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet")
        ],
        ({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": TEMPLATE}}, TEMPLATE),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "spec": {"jobTemplate": {"spec": {"template": TEMPLATE}}},
            },
            TEMPLATE,
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": TEMPLATE}},
            None,
        ),
        ({"apiVersion": "v1", "kind": "Service", "spec": {}}, None),
        ({"apiVersion": "v1", "kind": "Pod"}, {"metadata": {}, "spec": {}}),
    ],
)
def test_pod_template(obj: Json, expected: Json | None) -> None:
    assert pod_template(obj) == expected

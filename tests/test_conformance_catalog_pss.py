"""The catalog's Pod Security bundles against every upstream k8s.io/pod-security-admission fixture.

For each level and each `testdata/<level>/v1.<minor>` directory from the bundles' minimum
version on, a fleet group `policies: [bundle:<level>]` with `podSecurityVersion: v1.<minor>` is
planned (so bundle membership, `until`, `since`, versioned parameter defaults and bundle
parameters all take part) and every fixture is judged by the reference semantics: each
`pass/*.yaml` must be admitted by every bound policy, each `fail/<prefix><N>.yaml` denied, and
among the policies that deny it must be the one implementing upstream's check `<prefix>`.

The same bundles must also agree, on every catalog fixture (which do cover ephemeral containers,
Windows pods and user namespaces), with polgen's offline Pod Security checker
(`polgen.engines.pss`), an independent implementation of upstream's checks.

Fixtures are reviewed as a Pod CREATE and as a Deployment CREATE, after the API-server defaults
that run before admission and change a verdict (reference §7.3), applied here and not in the
oracle, which judges what admission receives:
- a volume without a source becomes `emptyDir: {}` (Pods and pod templates);
- with `hostNetwork: true` an unset hostPort becomes the containerPort (Pods only since 1.28).
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import AdmissionRequest, debug_request, request_for
from polgen.catalog import Catalog, load_catalog
from polgen.engines.pss import evaluate_pod, pod_template
from polgen.engines.pss_defaults import with_host_network_ports, with_volume_defaults
from polgen.fleet import Fleet
from polgen.plan import Binding, plan_fleet
from polgen.semantics import evaluate_policy
from polgen.versions import minor
from tests.peer import peer_dir

CATALOG: Catalog = load_catalog(Path(__file__).resolve().parents[1] / "catalog")
LEVELS = ("baseline", "restricted")
NEWEST_MINOR = 37
"""The newest policy version in the pinned upstream data (its `latest`)."""
NAMESPACE = "conformance"

UPSTREAM_CHECKS: dict[str, dict[str, str]] = {
    "apparmorprofile": {"baseline": "restrict-apparmor", "restricted": "restrict-apparmor"},
    "capabilities_baseline": {
        "baseline": "restrict-capabilities",
        "restricted": "restrict-capabilities-strict",
    },
    "capabilities_restricted": {"restricted": "restrict-capabilities-strict"},
    "hostnamespaces": {
        "baseline": "disallow-host-namespaces",
        "restricted": "disallow-host-namespaces",
    },
    "hostpathvolumes": {"baseline": "disallow-host-path", "restricted": "restrict-volume-types"},
    "hostports": {"baseline": "restrict-host-ports", "restricted": "restrict-host-ports"},
    "hostprobesandhostlifecycle": {
        "baseline": "disallow-host-probes",
        "restricted": "disallow-host-probes",
    },
    "privileged": {"baseline": "disallow-privileged", "restricted": "disallow-privileged"},
    "procmount": {"baseline": "restrict-proc-mount", "restricted": "restrict-proc-mount"},
    "procmount_restricted": {"restricted": "restrict-proc-mount"},
    "restrictedvolumes": {"restricted": "restrict-volume-types"},
    "runasnonroot": {"restricted": "require-run-as-non-root"},
    "runasuser": {"restricted": "disallow-root-user"},
    "selinuxoptions": {"baseline": "restrict-selinux", "restricted": "restrict-selinux"},
    "seccompprofile_baseline": {
        "baseline": "restrict-seccomp",
        "restricted": "restrict-seccomp-strict",
    },
    "seccompprofile_restricted": {"restricted": "restrict-seccomp-strict"},
    "sysctls": {"baseline": "restrict-sysctls", "restricted": "restrict-sysctls"},
    "windowshostprocess": {
        "baseline": "disallow-host-process",
        "restricted": "disallow-host-process",
    },
    "allowprivilegeescalation": {"restricted": "disallow-privilege-escalation"},
}
"""Upstream check (fixture file prefix) -> the catalog policy that implements it, per level;
at restricted the overriding restricted check's policy (hostPath -> volume types, ...)."""


def _directories() -> list[tuple[str, str]]:
    return [
        (level, f"v1.{number}")
        for level in LEVELS
        for number in range(minor(CATALOG.bundles[level].minimumVersion) or 0, NEWEST_MINOR + 1)
    ]


DIRECTORIES = _directories()


@cache
def bundle_bindings(level: str, version: str) -> tuple[Binding, ...]:
    """The bindings a fleet group `policies: [bundle:<level>]` at `version` gets."""
    group = {
        "name": "pss",
        "namespaces": [NAMESPACE],
        "policies": [f"bundle:{level}"],
        "podSecurityVersion": version,
    }
    fleet = Fleet.model_validate(
        {
            "apiVersion": "polgen.dev/v1alpha1",
            "kind": "Fleet",
            "clusters": [{"name": "conformance", "namespaceGroups": [group]}],
        }
    )
    (plan,) = plan_fleet(fleet, {}, Path("conformance-fleet.yaml"), CATALOG, [])
    return plan.bindings


def requests(pod: dict[str, Any]) -> list[AdmissionRequest]:
    """The fixture as a Pod and as a Deployment, after the API-server defaults (module doc)."""
    pod = with_volume_defaults(pod)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pod["metadata"]["name"]},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}},
    }
    return [
        request_for(with_host_network_ports(pod), default_namespace=NAMESPACE),
        request_for(deployment, default_namespace=NAMESPACE),
    ]


def denying_policies(level: str, version: str, request: AdmissionRequest) -> set[str]:
    return {
        binding.policy.id
        for binding in bundle_bindings(level, version)
        if evaluate_policy(binding.policy, binding.parameters, request)
    }


def mismatches(level: str, version: str, file: Path) -> list[str]:
    """Why the bundle's verdict on one fixture differs from upstream's (empty: it agrees)."""
    pod = yaml.load(file.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    outcome = file.parent.name
    prefix = re.sub(r"\d+\.yaml$", "", file.name)
    problems = []
    for request in requests(pod):
        denied = denying_policies(level, version, request)
        if outcome == "pass" and denied:
            problems.append(f"{request.kind} denied by {sorted(denied)}")
        if outcome == "fail":
            expected = UPSTREAM_CHECKS.get(prefix, {}).get(level)
            if expected not in denied:
                problems.append(f"{request.kind} not denied by {expected}: {sorted(denied)}")
    return problems


@cache
def judge_directory(level: str, version: str) -> tuple[int, tuple[str, ...]]:
    """(fixtures in the directory, one line per disagreeing fixture)."""
    directory = peer_dir("pod-security-admission", "testdata", level, version)
    files = sorted(directory.glob("*/*.yaml"))
    report = [
        f"{file.parent.name}/{file.name}: {problem}"
        for file in files
        for problem in mismatches(level, version, file)
    ]
    return len(files), tuple(report)


@pytest.mark.parametrize(
    ("level", "version"), DIRECTORIES, ids=[f"{level}-{version}" for level, version in DIRECTORIES]
)
def test_bundle_agrees_with_upstream(level: str, version: str) -> None:
    count, report = judge_directory(level, version)
    assert count > 0
    assert not report, f"{len(report)} disagreements in {count} fixtures:\n" + "\n".join(report)


def test_every_supported_version_has_fixtures() -> None:
    """The newest upstream directory is the one this test stops at."""
    testdata = peer_dir("pod-security-admission", "testdata")
    for level in LEVELS:
        minors = {minor(d.name) for d in (testdata / level).iterdir() if d.is_dir()}
        assert max(m for m in minors if m is not None) == NEWEST_MINOR


@pytest.mark.parametrize("level", LEVELS)
def test_every_upstream_check_maps_to_a_bundle_policy(level: str) -> None:
    ids = set(CATALOG.bundle_policies(level, "latest"))
    mapped = {policies[level] for policies in UPSTREAM_CHECKS.values() if level in policies}
    assert mapped <= ids
    assert ids <= mapped


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` applied recursively; a None in the patch removes the key."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


MINIMAL_CONTAINER: dict[str, dict[str, Any]] = {
    "baseline": {"name": "app", "image": "registry.k8s.io/pause"},
    "restricted": {
        "name": "app",
        "image": "registry.k8s.io/pause",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    },
}
MINIMAL_POD_SECURITY: dict[str, dict[str, Any]] = {
    "baseline": {},
    "restricted": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
}
WINDOWS: dict[str, Any] = {"os": {"name": "windows"}, "securityContext": {"seccompProfile": None}}
NO_CONTAINER_SECURITY: dict[str, Any] = {"securityContext": None}
USERNS: dict[str, Any] = {"hostUsers": False}


def minimal_pod(
    level: str, spec: dict[str, Any], container: dict[str, Any], ephemeral: dict[str, Any] | None
) -> dict[str, Any]:
    """Upstream's minimal valid pod of the level (v1.22+), patched."""
    body: dict[str, Any] = {
        "securityContext": MINIMAL_POD_SECURITY[level],
        "containers": [merged(MINIMAL_CONTAINER[level], container)],
    }
    if ephemeral is not None:
        body["ephemeralContainers"] = [
            merged({**MINIMAL_CONTAINER[level], "name": "debugger"}, ephemeral)
        ]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gap"}, "spec": body}
    return merged(pod, {"spec": spec})


GapCase = tuple[str, str, str, dict[str, Any], dict[str, Any], dict[str, Any] | None, bool]
GAP_CASES: list[GapCase] = [
    # (id, level, version, spec patch, container patch, ephemeral container patch, admitted)
    ("windows-restricted-v1.25", "restricted", "v1.25", WINDOWS, NO_CONTAINER_SECURITY, None, True),
    (
        "windows-still-needs-run-as-non-root",
        "restricted",
        "v1.28",
        {**WINDOWS, "securityContext": None},
        NO_CONTAINER_SECURITY,
        None,
        False,
    ),
    (
        "windows-unconfined-seccomp-restricted",
        "restricted",
        "v1.28",
        WINDOWS,
        {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        None,
        True,
    ),
    (
        "windows-unconfined-seccomp-baseline",
        "baseline",
        "v1.28",
        {"os": {"name": "windows"}},
        {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        None,
        False,
    ),
    (
        "windows-sys-admin-restricted",
        "restricted",
        "v1.28",
        WINDOWS,
        {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        None,
        True,
    ),
    (
        "windows-sys-admin-baseline",
        "baseline",
        "v1.28",
        {"os": {"name": "windows"}},
        {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        None,
        False,
    ),
    (
        "container-engine-t-before-v1.31",
        "baseline",
        "v1.30",
        {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
        {},
        None,
        False,
    ),
    (
        "container-engine-t-from-v1.31",
        "baseline",
        "v1.31",
        {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
        {},
        None,
        True,
    ),
    (
        "userns-run-as-non-root-before-v1.35",
        "restricted",
        "v1.34",
        {**USERNS, "securityContext": {"runAsNonRoot": None}},
        {},
        None,
        False,
    ),
    (
        "userns-run-as-non-root-from-v1.35",
        "restricted",
        "v1.35",
        {**USERNS, "securityContext": {"runAsNonRoot": None}},
        {},
        None,
        True,
    ),
    (
        "userns-uid-0-before-v1.35",
        "restricted",
        "v1.34",
        USERNS,
        {"securityContext": {"runAsUser": 0}},
        None,
        False,
    ),
    (
        "userns-uid-0-from-v1.35",
        "restricted",
        "v1.35",
        USERNS,
        {"securityContext": {"runAsUser": 0}},
        None,
        True,
    ),
    (
        "userns-unmasked-baseline-before-v1.35",
        "baseline",
        "v1.34",
        USERNS,
        {"securityContext": {"procMount": "Unmasked"}},
        None,
        False,
    ),
    (
        "userns-unmasked-baseline-from-v1.35",
        "baseline",
        "v1.35",
        USERNS,
        {"securityContext": {"procMount": "Unmasked"}},
        None,
        True,
    ),
    (
        "userns-unmasked-restricted-v1.37",
        "restricted",
        "v1.37",
        USERNS,
        {"securityContext": {"procMount": "Unmasked"}},
        None,
        False,
    ),
    (
        "pod-uid-0-despite-container-override",
        "restricted",
        "v1.30",
        {"securityContext": {"runAsUser": 0}},
        {"securityContext": {"runAsUser": 1000}},
        None,
        False,
    ),
    (
        "container-run-as-non-root-false-overrides-pod",
        "restricted",
        "v1.30",
        {},
        {"securityContext": {"runAsNonRoot": False}},
        None,
        False,
    ),
    (
        "sysctl-reserved-ports-before-v1.27",
        "baseline",
        "v1.26",
        {
            "securityContext": {
                "sysctls": [{"name": "net.ipv4.ip_local_reserved_ports", "value": "8080"}]
            }
        },
        {},
        None,
        False,
    ),
    (
        "sysctl-reserved-ports-from-v1.27",
        "baseline",
        "v1.27",
        {
            "securityContext": {
                "sysctls": [{"name": "net.ipv4.ip_local_reserved_ports", "value": "8080"}]
            }
        },
        {},
        None,
        True,
    ),
    (
        "sysctl-tcp-rmem-before-v1.32",
        "restricted",
        "v1.31",
        {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096"}]}},
        {},
        None,
        False,
    ),
    (
        "sysctl-tcp-rmem-from-v1.32",
        "restricted",
        "v1.32",
        {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096"}]}},
        {},
        None,
        True,
    ),
    (
        "probe-host-before-v1.34",
        "baseline",
        "v1.33",
        {},
        {"livenessProbe": {"httpGet": {"host": "169.254.169.254", "port": 80}}},
        None,
        True,
    ),
    (
        "probe-host-from-v1.34",
        "baseline",
        "v1.34",
        {},
        {"livenessProbe": {"httpGet": {"host": "169.254.169.254", "port": 80}}},
        None,
        False,
    ),
    (
        "privileged-debug-container",
        "baseline",
        "v1.30",
        {},
        {},
        {"securityContext": {"privileged": True}},
        False,
    ),
    (
        "unhardened-debug-container-restricted",
        "restricted",
        "v1.30",
        {},
        {},
        {"securityContext": None},
        False,
    ),
    ("hardened-debug-container-restricted", "restricted", "v1.30", {}, {}, {}, True),
]
"""What the upstream fixtures leave out (reference §6 "Gaps"), with upstream's verdict from the
reference's §2: Windows pods at v1.25-1.28, container_engine_t, the v1.35 user-namespace
relaxations, older-version negatives for sysctls and probe hosts, ephemeral containers (sent as
the `kubectl debug` UPDATE)."""


@pytest.mark.parametrize(
    ("level", "version", "spec", "container", "ephemeral", "admitted"),
    [case[1:] for case in GAP_CASES],
    ids=[case[0] for case in GAP_CASES],
)
def test_bundle_verdict_where_upstream_has_no_fixture(
    level: str,
    version: str,
    spec: dict[str, Any],
    container: dict[str, Any],
    ephemeral: dict[str, Any] | None,
    admitted: bool,
) -> None:
    pod = minimal_pod(level, spec, container, ephemeral)
    request = debug_request(pod, NAMESPACE) if ephemeral is not None else requests(pod)[0]
    assert (denying_policies(level, version, request) == set()) is admitted


def catalog_fixture_request(file: Path, obj: dict[str, Any]) -> AdmissionRequest:
    """A catalog fixture as admission sees it (`ephemeral-*`: the kubectl debug UPDATE)."""
    if file.name.startswith("ephemeral-"):
        return debug_request(obj, NAMESPACE)
    return request_for(obj, default_namespace=NAMESPACE)


def milestones() -> list[tuple[str, str]]:
    """(level, version) wherever the bundles can change: the minimum and newest versions, each
    policy's `since` and each versioned parameter default."""
    versions = {minor(version) for _, version in (DIRECTORIES[0], DIRECTORIES[-1])}
    for policy in CATALOG.policies:
        if policy.podSecurity is not None and policy.podSecurity.since is not None:
            versions.add(minor(policy.podSecurity.since))
        versions.update(minor(v) for p in policy.parameters.values() for v in p.byVersion)
    return [(level, version) for level, version in DIRECTORIES if minor(version) in versions]


MILESTONES = milestones()


@cache
def catalog_pods() -> tuple[tuple[str, AdmissionRequest, dict[str, Any]], ...]:
    """(fixture path, request, pod template) of every catalog fixture that has a pod."""
    found = []
    for entry in CATALOG.entries.values():
        for file in entry.fixtures("allowed") + entry.fixtures("disallowed"):
            obj = yaml.load(file.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
            template = pod_template(obj)
            if template is not None:
                name = str(file.relative_to(CATALOG.root / "policies"))
                found.append((name, catalog_fixture_request(file, obj), template))
    return tuple(found)


@pytest.mark.parametrize(
    ("level", "version"), MILESTONES, ids=[f"{level}-{version}" for level, version in MILESTONES]
)
def test_bundle_agrees_with_the_offline_checker_on_catalog_fixtures(
    level: str, version: str
) -> None:
    report = []
    for name, request, template in catalog_pods():
        checker_denies = bool(evaluate_pod(level, version, template))
        denied = denying_policies(level, version, request)
        if checker_denies != bool(denied):
            report.append(f"{name}: checker denies={checker_denies}, bundle denied by {denied}")
    assert len(catalog_pods()) > 200
    assert not report, "\n".join(report)

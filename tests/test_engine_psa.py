"""Pod Security Admission engine: labels, modes, workloads, UPDATE rules, exemptions, messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from polgen.admission import AdmissionRequest, Operation, Violation, request_for
from polgen.engines.base import Engine, EngineError
from polgen.engines.psa import (
    ENGINE,
    Exemptions,
    LevelPolicySet,
    LevelVersion,
    NamespacePolicy,
    PodSecurityAdmissionEngine,
    PodSecurityPolicySet,
    policy_from_labels,
    review_at_level,
)

Json = dict[str, Any]
P = "pod-security.kubernetes.io/"


def namespace(name: str, **labels: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {P + k.replace("_", "-"): v for k, v in labels.items()},
        },
    }


def container(name: str = "app", image: str = "nginx:1", **security_context: Any) -> Json:
    found: Json = {"name": name, "image": image}
    if security_context:
        found["securityContext"] = security_context
    return found


def pod_obj(ns: str = "team", containers: list[Json] | None = None, **spec: Any) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"containers": containers or [container()], **spec},
    }


def deployment(ns: str = "team", **spec: Any) -> Json:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [container()], **spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"template": template},
    }


PRIVILEGED_POD = pod_obj(containers=[container(privileged=True)])
RESTRICTED_OK = pod_obj(
    containers=[container(allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]})],
    securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
)
BASELINE_PRIVILEGED = 'privileged (container "app" must not set securityContext.privileged=true)'


def load(*namespaces: Json, engine: PodSecurityAdmissionEngine = ENGINE) -> PodSecurityPolicySet:
    return engine.load([(f"ns-{i}.yaml", ns) for i, ns in enumerate(namespaces)])


def review(
    policies: PodSecurityPolicySet, obj: Json, operation: Operation = "CREATE", **changes: Any
) -> list[tuple[str, str]]:
    request = replace(request_for(obj, operation), **changes)
    return [(v.action, v.message) for v in policies.review(request)]


def test_engine_protocol_and_accepts() -> None:
    engine: Engine = ENGINE
    assert engine.name == "psa"
    assert ENGINE.accepts(namespace("a", enforce="baseline"))
    assert not ENGINE.accepts({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    assert not ENGINE.accepts({**namespace("a", enforce="baseline"), "kind": "ConfigMap"})


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            namespace("a", enforce="strict"),
            "metadata.labels[pod-security.kubernetes.io/enforce]: "
            'Invalid value: "strict": must be one of privileged, baseline, restricted',
        ),
        (
            namespace("a", warn_version="v1.01"),
            "metadata.labels[pod-security.kubernetes.io/"
            'warn-version]: Invalid value: "v1.01": must be "latest" or "v1.x"',
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"labels": {P + "audit": "baseline"}},
            },
            "Namespace without metadata.name",
        ),
        ({"apiVersion": "v1", "kind": "Pod"}, "not a v1 Namespace"),
    ],
)
def test_load_rejects_invalid_namespaces(document: Json, error: str) -> None:
    with pytest.raises(EngineError, match=r"ns-0\.yaml") as raised:
        load(document)
    assert error in raised.value.reason


def test_load_rejects_conflicting_duplicates() -> None:
    load(namespace("a", enforce="baseline"), namespace("a", enforce="baseline"))
    with pytest.raises(EngineError, match="defined twice"):
        load(namespace("a", enforce="baseline"), namespace("a", enforce="restricted"))


PRIV = LevelVersion()


def lv(level: str, version: str = "latest") -> LevelVersion:
    return LevelVersion(level, version)


# Upstream TestPolicyToEvaluate, plus the 1.26 warn defaulting and the error fallbacks.
@pytest.mark.parametrize(
    ("labels", "enforce", "audit", "warn", "errors"),
    [
        ({}, PRIV, PRIV, PRIV, 0),
        ({"enforce": "baseline"}, lv("baseline"), PRIV, lv("baseline"), 0),
        ({"warn": "restricted"}, PRIV, PRIV, lv("restricted"), 0),
        ({"audit": "baseline"}, PRIV, lv("baseline"), PRIV, 0),
        ({"enforce": "baseline", "warn": "restricted"}, lv("baseline"), PRIV, lv("restricted"), 0),
        (
            {"enforce": "baseline", "enforce-version": "v1.22"},
            lv("baseline", "v1.22"),
            PRIV,
            lv("baseline", "v1.22"),
            0,
        ),
        (
            {"enforce": "baseline", "enforce-version": "v1.22", "warn-version": "latest"},
            lv("baseline", "v1.22"),
            PRIV,
            lv("baseline"),
            0,
        ),
        (
            {"enforce": "baseline", "warn-version": "v1.23"},
            lv("baseline"),
            PRIV,
            lv("baseline", "v1.23"),
            0,
        ),
        ({"enforce": "baseline", "warn": "privileged"}, lv("baseline"), PRIV, PRIV, 0),
        ({"enforce": "baseline", "warn": "foo"}, lv("baseline"), PRIV, PRIV, 1),
        ({"enforce": "foo"}, lv("restricted"), PRIV, PRIV, 1),
        ({"audit": "foo", "audit-version": "v2.0"}, PRIV, PRIV, PRIV, 2),
        ({"enforce-version": "v1.30"}, lv("privileged", "v1.30"), PRIV, PRIV, 0),
    ],
)
def test_policy_from_labels(
    labels: dict[str, str],
    enforce: LevelVersion,
    audit: LevelVersion,
    warn: LevelVersion,
    errors: int,
) -> None:
    policy, found = policy_from_labels({P + k: v for k, v in labels.items()} | {"other": "x"})
    assert policy == NamespacePolicy(enforce, audit, warn)
    assert len(found) == errors


def test_enforce_denies_pod_with_upstream_message_and_audits() -> None:
    policies = load(
        namespace("team", enforce="baseline", audit="restricted", audit_version="v1.30")
    )
    violations = policies.review(request_for(PRIVILEGED_POD))
    assert violations[0] == Violation(
        policy="PodSecurity baseline:latest",
        message=f'violates PodSecurity "baseline:latest": {BASELINE_PRIVILEGED}',
        action="deny",
        rule="privileged",
    )
    assert violations[1].policy == "PodSecurity restricted:v1.30"
    assert violations[1].action == "audit"
    assert violations[1].message.startswith(
        f'would violate PodSecurity "restricted:v1.30": {BASELINE_PRIVILEGED}, '
        "allowPrivilegeEscalation != false"
    )
    assert len(violations) == 2, "warn is not added to a request enforce already denies"


def test_warn_only_when_enforce_passes() -> None:
    policies = load(namespace("team", enforce="baseline", warn="restricted"))
    baseline_ok = pod_obj()
    assert [a for a, _ in review(policies, baseline_ok)] == ["warn"]
    assert review(policies, RESTRICTED_OK) == []
    assert [a for a, _ in review(policies, PRIVILEGED_POD)] == ["deny"]


def test_workloads_get_warnings_never_denials() -> None:
    bad = deployment(hostPID=True)
    enforced = load(namespace("team", enforce="baseline"))
    assert review(enforced, bad) == [
        ("warn", 'would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)')
    ]
    silent = load(namespace("team", enforce="baseline", warn="privileged"))
    assert review(silent, bad) == []
    audited = load(namespace("team", enforce="restricted", warn="privileged", audit="baseline"))
    assert [a for a, _ in review(audited, bad)] == ["audit"]


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c", "namespace": "team"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": True}}}}},
        },
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "t", "namespace": "team"},
            "template": {"spec": {"hostPID": True}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "d", "namespace": "team"},
            "spec": {"template": {"spec": {"hostPID": True}}},
        },
    ],
)
def test_every_pod_controller_is_warned(obj: Json) -> None:
    policies = load(namespace("team", enforce="baseline"))
    assert [a for a, _ in review(policies, obj)] == ["warn"]


def test_host_network_port_default_applies_to_pods_not_templates() -> None:
    policies = load(namespace("team", enforce="baseline"))
    ports = [{"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]}]
    assert review(policies, pod_obj(containers=ports, hostNetwork=True)) == [
        (
            "deny",
            'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
            'hostPort (container "app" uses hostPort 8080)',
        )
    ]
    template = deployment()
    template["spec"]["template"]["spec"] = {"containers": ports, "hostNetwork": True}
    assert review(policies, template) == [
        ("warn", 'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)')
    ]


def test_pod_updates_follow_upstream_significance() -> None:
    policies = load(namespace("team", enforce="baseline"))
    relabelled = {
        **PRIVILEGED_POD,
        "metadata": {**PRIVILEGED_POD["metadata"], "labels": {"x": "y"}},
    }
    assert review(policies, relabelled, "UPDATE", old_object=PRIVILEGED_POD) == []
    new_image = pod_obj(containers=[container(image="nginx:2", privileged=True)])
    assert [a for a, _ in review(policies, new_image, "UPDATE", old_object=PRIVILEGED_POD)] == [
        "deny"
    ]
    assert [a for a, _ in review(policies, PRIVILEGED_POD, "UPDATE")] == ["deny"], "no old object"
    assert (
        review(policies, PRIVILEGED_POD, "UPDATE", old_object=PRIVILEGED_POD, sub_resource="status")
        == []
    )
    assert review(policies, PRIVILEGED_POD, "DELETE") == []


def test_debug_container_through_ephemeralcontainers_subresource() -> None:
    policies = load(namespace("team", enforce="restricted"))
    debug = {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    with_debug = {
        **RESTRICTED_OK,
        "spec": {**RESTRICTED_OK["spec"], "ephemeralContainers": [debug]},
    }
    found = review(
        policies, with_debug, "UPDATE", old_object=RESTRICTED_OK, sub_resource="ephemeralcontainers"
    )
    assert found == [
        (
            "deny",
            'violates PodSecurity "restricted:latest": privileged (container '
            '"debugger" must not set securityContext.privileged=true), '
            'allowPrivilegeEscalation != false (container "debugger" must set '
            "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
            '(container "debugger" must set securityContext.capabilities.drop=["ALL"])',
        )
    ]
    assert (
        review(
            policies,
            with_debug,
            "UPDATE",
            old_object=with_debug,
            sub_resource="ephemeralcontainers",
        )
        == []
    ), "nothing added or re-imaged"


def test_workload_updates_are_judged_but_subresources_are_not() -> None:
    policies = load(namespace("team", enforce="baseline"))
    bad = deployment(hostPID=True)
    assert [a for a, _ in review(policies, bad, "UPDATE", old_object=bad)] == ["warn"]
    assert review(policies, bad, "UPDATE", old_object=bad, sub_resource="scale") == []


def test_exemptions() -> None:
    engine = PodSecurityAdmissionEngine(
        Exemptions(
            usernames=frozenset({"ci-bot"}),
            runtime_classes=frozenset({"kata"}),
            namespaces=frozenset({"kube-system"}),
        )
    )
    policies = load(
        namespace("team", enforce="baseline"),
        namespace("kube-system", enforce="baseline"),
        engine=engine,
    )
    assert (
        review(
            policies, pod_obj("kube-system", [container(privileged=True)]), namespace="kube-system"
        )
        == []
    )
    assert review(policies, PRIVILEGED_POD, user_info={"username": "ci-bot"}) == []
    assert (
        review(policies, pod_obj(containers=[container(privileged=True)], runtimeClassName="kata"))
        == []
    )
    assert review(policies, deployment(hostPID=True, runtimeClassName="kata")) == []
    assert [a for a, _ in review(policies, PRIVILEGED_POD, user_info={"username": "alice"})] == [
        "deny"
    ]
    assert [
        a
        for a, _ in review(
            policies, pod_obj(containers=[container(privileged=True)], runtimeClassName="runc")
        )
    ] == ["deny"]


def test_namespace_selection_and_defaults() -> None:
    policies = load(namespace("team", enforce="baseline"))
    request = request_for(PRIVILEGED_POD)
    unlabelled = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
    }
    assert [v.action for v in policies.review(request, unlabelled)] == ["deny"]
    privileged = namespace("team", enforce="privileged")
    assert policies.review(request, privileged) == []
    assert review(policies, pod_obj("elsewhere", [container(privileged=True)])) == []
    strict = PodSecurityAdmissionEngine(defaults=NamespacePolicy(enforce=lv("baseline")))
    assert [a for a, _ in review(load(engine=strict), PRIVILEGED_POD)] == ["deny"]


def test_other_kinds_pass() -> None:
    policies = load(namespace("team", enforce="restricted"))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "team"},
    }
    assert review(policies, service) == []
    crd = {**deployment(hostPID=True), "apiVersion": "example.com/v1"}
    assert review(policies, crd) == []


def test_emulated_release_changes_latest() -> None:
    sysctl = pod_obj(securityContext={"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]})
    assert review(load(namespace("team", enforce="baseline")), sysctl) == []
    older = PodSecurityAdmissionEngine(max_minor=35)
    assert [
        a for a, _ in review(load(namespace("team", enforce="baseline"), engine=older), sysctl)
    ] == ["deny"]


def test_review_at_level_for_scans() -> None:
    request = request_for(deployment(hostPID=True))
    assert review_at_level(request, "baseline", "v1.30") == [
        Violation(
            policy="PodSecurity baseline:v1.30",
            message='violates PodSecurity "baseline:v1.30": host namespaces (hostPID=true)',
            action="deny",
            rule="hostNamespaces",
        )
    ]
    assert review_at_level(request, "privileged", "latest") == []
    level_set = LevelPolicySet("restricted", "v1.30")
    assert level_set.review(request_for(RESTRICTED_OK)) == []
    assert level_set.review(request_for(pod_obj(hostPID=True)))[0].rule == (
        "hostNamespaces, allowPrivilegeEscalation, capabilities_restricted, runAsNonRoot, "
        "seccompProfile_restricted"
    )
    with pytest.raises(ValueError, match=r"restricted:v1\.x"):
        LevelPolicySet("restricted", "v1.x")


def test_review_request_shape_is_respected() -> None:
    policies = load(namespace("team", enforce="baseline"))
    request = AdmissionRequest(
        group="",
        version="v1",
        kind="Pod",
        resource="pods",
        name="web",
        namespace="team",
        operation="CREATE",
        object=None,
    )
    assert policies.review(request) == []

"""The reference semantics (polgen.semantics): check kinds, subjects, operations, exemptions.

Tables state an input and the exact messages the contract in docs/architecture.md asks for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from polgen.admission import AdmissionRequest, Operation, request_for
from polgen.catalog import Parameter, Policy
from polgen.checks import (
    CHECK_KINDS,
    ContainerFieldCheck,
    ContainerListSubsetCheck,
    ImageRepositoryCheck,
    ParamRef,
    PodFieldCheck,
    PodListFieldCheck,
)
from polgen.semantics import EVALUATORS, POD_SPEC_PATHS, evaluate_policy, is_exempt

PRIVILEGED = ContainerFieldCheck(
    kind="container-field", field="securityContext.privileged", allowed=[False]
)
NO_ESCALATION = ContainerFieldCheck(
    kind="container-field",
    field="securityContext.allowPrivilegeEscalation",
    allowed=[False],
    required=True,
)
HOST_PID = PodFieldCheck(kind="pod-field", field="hostPID", allowed=[False])
NO_HOST_PATH = PodListFieldCheck(kind="pod-list-field", list="volumes", field="hostPath")
CAPS = ContainerListSubsetCheck(
    kind="container-list-subset",
    field="securityContext.capabilities.add",
    allowed=["NET_BIND_SERVICE", "CHOWN"],
)
REPOS = ImageRepositoryCheck(kind="image-repository", repos=["open-policy-agent", "ubuntu"])


def policy_of(*checks: Any, parameters: dict[str, Parameter] | None = None) -> Policy:
    return Policy(
        id="under-test",
        title="t",
        description="d",
        severity="low",
        category="c",
        parameters=parameters or {},
        checks=list(checks),
    )


def container(name: str = "app", image: str = "ubuntu:24.04", **security: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "image": image}
    if security:
        result["securityContext"] = security
    return result


def pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [container()])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def evaluate(check: Any, obj: dict[str, Any], *, exempt: tuple[str, ...] = (),
             parameters: dict[str, Any] | None = None) -> list[str]:
    return evaluate_policy(policy_of(check), parameters or {}, request_for(obj), exempt)


POD_FIELD_CASES: list[tuple[str, PodFieldCheck, dict[str, Any], list[str]]] = [
    ("unset", HOST_PID, {}, []),
    ("null counts as unset", HOST_PID, {"hostPID": None}, []),
    ("allowed value", HOST_PID, {"hostPID": False}, []),
    ("disallowed value", HOST_PID, {"hostPID": True},
     ["spec.hostPID must be unset or one of [false]"]),
    ("string is not bool", HOST_PID, {"hostPID": "false"},
     ["spec.hostPID must be unset or one of [false]"]),
    ("required and unset",
     PodFieldCheck(kind="pod-field", field="securityContext.runAsNonRoot", allowed=[True],
                   required=True),
     {}, ["spec.securityContext.runAsNonRoot must be one of [true]"]),
    ("required and set",
     PodFieldCheck(kind="pod-field", field="securityContext.runAsNonRoot", allowed=[True],
                   required=True),
     {"securityContext": {"runAsNonRoot": True}}, []),
    ("int is not bool",
     PodFieldCheck(kind="pod-field", field="securityContext.runAsNonRoot", allowed=[True]),
     {"securityContext": {"runAsNonRoot": 1}},
     ["spec.securityContext.runAsNonRoot must be unset or one of [true]"]),
    ("several allowed values",
     PodFieldCheck(kind="pod-field", field="dnsPolicy", allowed=["ClusterFirst", "Default"]),
     {"dnsPolicy": "None"}, ['spec.dnsPolicy must be unset or one of ["ClusterFirst", "Default"]']),
]


@pytest.mark.parametrize(("check", "spec", "expected"), [c[1:] for c in POD_FIELD_CASES],
                         ids=[c[0] for c in POD_FIELD_CASES])
def test_pod_field(check: PodFieldCheck, spec: dict[str, Any], expected: list[str]) -> None:
    assert evaluate(check, pod(**spec)) == expected


CONTAINER_FIELD_CASES: list[tuple[str, ContainerFieldCheck, dict[str, Any], list[str]]] = [
    ("unset", PRIVILEGED, {"containers": [container()]}, []),
    ("securityContext null", PRIVILEGED,
     {"containers": [{"name": "app", "image": "ubuntu", "securityContext": None}]}, []),
    ("false", PRIVILEGED, {"containers": [container(privileged=False)]}, []),
    ("container", PRIVILEGED, {"containers": [container("a", privileged=True)]},
     ['container "a": securityContext.privileged must be unset or one of [false]']),
    ("initContainer", PRIVILEGED,
     {"initContainers": [container("i", privileged=True)], "containers": [container()]},
     ['initContainer "i": securityContext.privileged must be unset or one of [false]']),
    ("ephemeralContainer", PRIVILEGED,
     {"ephemeralContainers": [container("e", privileged=True)], "containers": [container()]},
     ['ephemeralContainer "e": securityContext.privileged must be unset or one of [false]']),
    ("order is containers, init, ephemeral, then document order", PRIVILEGED,
     {"ephemeralContainers": [container("e", privileged=True)],
      "initContainers": [container("i", privileged=True)],
      "containers": [container("b", privileged=True), container("a", privileged=True)]},
     ['container "b": securityContext.privileged must be unset or one of [false]',
      'container "a": securityContext.privileged must be unset or one of [false]',
      'initContainer "i": securityContext.privileged must be unset or one of [false]',
      'ephemeralContainer "e": securityContext.privileged must be unset or one of [false]']),
    ("required and unset", NO_ESCALATION, {"containers": [container("a")]},
     ['container "a": securityContext.allowPrivilegeEscalation must be one of [false]']),
    ("required and true", NO_ESCALATION,
     {"containers": [container("a", allowPrivilegeEscalation=True)]},
     ['container "a": securityContext.allowPrivilegeEscalation must be one of [false]']),
    ("required and false", NO_ESCALATION,
     {"containers": [container("a", allowPrivilegeEscalation=False)]}, []),
    ("containerTypes narrows the lists",
     ContainerFieldCheck(kind="container-field", field="securityContext.privileged",
                         allowed=[False], containerTypes=["containers"]),
     {"initContainers": [container("i", privileged=True)], "containers": [container()]}, []),
]


@pytest.mark.parametrize(("check", "spec", "expected"), [c[1:] for c in CONTAINER_FIELD_CASES],
                         ids=[c[0] for c in CONTAINER_FIELD_CASES])
def test_container_field(check: ContainerFieldCheck, spec: dict[str, Any],
                         expected: list[str]) -> None:
    assert evaluate(check, pod(**spec)) == expected


LIST_SUBSET_CASES: list[tuple[str, list[Any] | None, list[str]]] = [
    ("allowed items", ["NET_BIND_SERVICE", "CHOWN"], []),
    ("null list", None, []),
    ("one message per offending item, in order", ["SYS_ADMIN", "CHOWN", "CAP_SYS_ADMIN"],
     ['container "a": securityContext.capabilities.add may not contain "SYS_ADMIN"',
      'container "a": securityContext.capabilities.add may not contain "CAP_SYS_ADMIN"']),
    ("case matters", ["sys_admin", "net_bind_service"],
     ['container "a": securityContext.capabilities.add may not contain "sys_admin"',
      'container "a": securityContext.capabilities.add may not contain "net_bind_service"']),
    ("non-string item shown as JSON", [7],
     ['container "a": securityContext.capabilities.add may not contain "7"']),
]


@pytest.mark.parametrize(("added", "expected"), [c[1:] for c in LIST_SUBSET_CASES],
                         ids=[c[0] for c in LIST_SUBSET_CASES])
def test_container_list_subset(added: list[Any] | None, expected: list[str]) -> None:
    spec = {"containers": [container("a", capabilities={"add": added, "drop": ["ALL"]})]}
    assert evaluate(CAPS, pod(**spec)) == expected


def test_container_list_subset_without_capabilities() -> None:
    assert evaluate(CAPS, pod(containers=[container("a", runAsNonRoot=True)])) == []


def test_allowed_from_a_parameter_is_read_from_the_parameters() -> None:
    check = ContainerListSubsetCheck(kind="container-list-subset",
                                     field="securityContext.capabilities.add",
                                     allowed=ParamRef(param="caps"))
    caps = Parameter(type="array", items="string", description="d", default=["CHOWN"])
    policy = policy_of(check, parameters={"caps": caps})
    request = request_for(pod(containers=[container("a", capabilities={"add": ["SYS_ADMIN"]})]))
    assert evaluate_policy(policy, {"caps": ["SYS_ADMIN"]}, request) == []
    assert evaluate_policy(policy, {}, request) == [
        'container "a": securityContext.capabilities.add may not contain "SYS_ADMIN"'
    ]


POD_LIST_CASES: list[tuple[str, PodListFieldCheck, list[dict[str, Any]], list[str]]] = [
    ("no hostPath", NO_HOST_PATH, [{"name": "tmp", "emptyDir": {}}], []),
    ("hostPath null", NO_HOST_PATH, [{"name": "h", "hostPath": None}], []),
    ("one message per item", NO_HOST_PATH,
     [{"name": "root", "hostPath": {"path": "/"}}, {"name": "tmp", "emptyDir": {}},
      {"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}}],
     ['spec.volumes item "root": hostPath must be unset',
      'spec.volumes item "sock": hostPath must be unset']),
    ("non-empty allowed",
     PodListFieldCheck(kind="pod-list-field", list="volumes", field="hostPath.path",
                       allowed=["/var/log"]),
     [{"name": "logs", "hostPath": {"path": "/var/log"}},
      {"name": "etc", "hostPath": {"path": "/etc"}}],
     ['spec.volumes item "etc": hostPath.path must be unset or one of ["/var/log"]']),
]


@pytest.mark.parametrize(("check", "volumes", "expected"), [c[1:] for c in POD_LIST_CASES],
                         ids=[c[0] for c in POD_LIST_CASES])
def test_pod_list_field(check: PodListFieldCheck, volumes: list[dict[str, Any]],
                        expected: list[str]) -> None:
    assert evaluate(check, pod(volumes=volumes)) == expected


IMAGE_CASES: list[tuple[str, bool]] = [
    ("ubuntu", True),
    ("ubuntu:24.04", True),
    ("ubuntu@sha256:b359f1067efa76f37863778f7b6d0e8d911e3ee8efa807ad01fbf5dc1ef9006b", True),
    ("docker.io/library/ubuntu:24.04", True),
    ("index.docker.io/library/ubuntu", True),
    ("ubuntu/squid:latest", True),
    ("open-policy-agent/opa:0.68.0", True),
    ("docker.io/open-policy-agent/gatekeeper:v3.17.1", True),
    ("ubuntuevil/x", False),
    ("ubuntu.evil.example/x", False),
    ("ubuntu:5000/x", False),
    ("ghcr.io/open-policy-agent/opa", False),
    ("nginx", False),
    ("open-policy-agent-evil/opa", False),
]


@pytest.mark.parametrize(("image", "allowed"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_repository(image: str, allowed: bool) -> None:
    expected = [] if allowed else [
        f'container "a": image "{image}" is not from an allowed repository'
        " (allowed: open-policy-agent, ubuntu)"
    ]
    assert evaluate(REPOS, pod(containers=[container("a", image)])) == expected


def test_image_repository_covers_every_container_list() -> None:
    spec = {"containers": [container("c", "nginx")], "initContainers": [container("i", "busybox")],
            "ephemeralContainers": [container("e", "alpine")]}
    assert evaluate(REPOS, pod(**spec)) == [
        'container "c": image "nginx" is not from an allowed repository'
        " (allowed: open-policy-agent, ubuntu)",
        'initContainer "i": image "busybox" is not from an allowed repository'
        " (allowed: open-policy-agent, ubuntu)",
        'ephemeralContainer "e": image "alpine" is not from an allowed repository'
        " (allowed: open-policy-agent, ubuntu)",
    ]


EXEMPTION_CASES: list[tuple[str, str, bool]] = [
    ("registry.example/debug:1.0", "registry.example/debug:1.0", True),
    ("registry.example/debug:1.0", "registry.example/debug:1.1", False),
    ("registry.example/debug", "registry.example/debug:1.0", False),
    ("registry.example/*", "registry.example/debug:1.0", True),
    ("registry.example/*", "registry.example.evil/debug", False),
    ("*", "anything", True),
]


@pytest.mark.parametrize(("pattern", "image", "exempt"), EXEMPTION_CASES)
def test_is_exempt(pattern: str, image: str, exempt: bool) -> None:
    assert is_exempt(image, [pattern]) is exempt


def test_exempt_containers_skip_container_checks_only() -> None:
    obj = pod(
        hostPID=True,
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
        containers=[container("tool", "registry.example/debug:1.0", privileged=True),
                    container("app", "nginx", privileged=True)],
    )
    exempt = ("registry.example/*",)
    assert evaluate(PRIVILEGED, obj, exempt=exempt) == [
        'container "app": securityContext.privileged must be unset or one of [false]'
    ]
    assert evaluate(REPOS, obj, exempt=exempt) == [
        'container "app": image "nginx" is not from an allowed repository'
        " (allowed: open-policy-agent, ubuntu)"
    ]
    assert evaluate(HOST_PID, obj, exempt=exempt) == [
        "spec.hostPID must be unset or one of [false]"
    ]
    assert evaluate(NO_HOST_PATH, obj, exempt=exempt) == [
        'spec.volumes item "root": hostPath must be unset'
    ]


BAD_SPEC: dict[str, Any] = {
    "hostPID": True,
    "containers": [container("a", "nginx", privileged=True)],
}
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": BAD_SPEC}
WORKLOADS: dict[str, dict[str, Any]] = {
    "Pod": pod(**BAD_SPEC),
    **{
        kind: {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"},
               "spec": {"template": TEMPLATE}}
        for kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet")
    },
    "Job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "w"},
            "spec": {"template": TEMPLATE}},
    "ReplicationController": {"apiVersion": "v1", "kind": "ReplicationController",
                              "metadata": {"name": "w"}, "spec": {"template": TEMPLATE}},
    "CronJob": {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "w"},
                "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": TEMPLATE}}}},
}
ALL_THREE = policy_of(HOST_PID, PRIVILEGED, REPOS)
ALL_THREE_MESSAGES = [
    "spec.hostPID must be unset or one of [false]",
    'container "a": securityContext.privileged must be unset or one of [false]',
    'container "a": image "nginx" is not from an allowed repository'
    " (allowed: open-policy-agent, ubuntu)",
]


def test_every_subject_kind_has_a_workload_here() -> None:
    assert set(WORKLOADS) == set(POD_SPEC_PATHS)


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_subjects_find_the_pod_spec(kind: str) -> None:
    assert evaluate_policy(ALL_THREE, {}, request_for(WORKLOADS[kind])) == ALL_THREE_MESSAGES


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_workload_updates_run_every_check(kind: str) -> None:
    request = request_for(WORKLOADS[kind], "UPDATE")
    expected = ALL_THREE_MESSAGES if kind != "Pod" else ALL_THREE_MESSAGES[2:]
    assert evaluate_policy(ALL_THREE, {}, request) == expected


def test_other_kinds_are_never_checked() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": BAD_SPEC}
    assert evaluate_policy(ALL_THREE, {}, request_for(service)) == []


def test_missing_pod_spec_is_no_violation() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    assert evaluate_policy(ALL_THREE, {}, request_for(deployment)) == []


def pod_request(operation: Operation, sub_resource: str = "") -> AdmissionRequest:
    return dataclasses.replace(request_for(pod(**BAD_SPEC), operation), sub_resource=sub_resource,
                               old_object=pod(**BAD_SPEC) if operation == "UPDATE" else None)


OPERATION_CASES: list[tuple[str, AdmissionRequest, list[str]]] = [
    ("create runs every check", pod_request("CREATE"), ALL_THREE_MESSAGES),
    ("plain pod update runs image checks only", pod_request("UPDATE"), ALL_THREE_MESSAGES[2:]),
    ("kubectl debug runs every check", pod_request("UPDATE", "ephemeralcontainers"),
     ALL_THREE_MESSAGES),
    ("delete is never evaluated", pod_request("DELETE"), []),
    ("connect is never evaluated", pod_request("CONNECT"), []),
    ("no object", dataclasses.replace(pod_request("CREATE"), object=None), []),
]


@pytest.mark.parametrize(("request_", "expected"), [c[1:] for c in OPERATION_CASES],
                         ids=[c[0] for c in OPERATION_CASES])
def test_operations(request_: AdmissionRequest, expected: list[str]) -> None:
    assert evaluate_policy(ALL_THREE, {}, request_) == expected


def test_registry_covers_every_check_kind() -> None:
    assert sorted(EVALUATORS) == sorted(CHECK_KINDS)


def test_messages_follow_check_order() -> None:
    reordered = policy_of(REPOS, PRIVILEGED, HOST_PID)
    messages = evaluate_policy(reordered, {}, request_for(pod(**BAD_SPEC)))
    assert messages == list(reversed(ALL_THREE_MESSAGES))


def test_image_repository_with_a_parameter_shows_its_value() -> None:
    check = ImageRepositoryCheck(kind="image-repository", repos=ParamRef(param="repos"))
    repos = Parameter(type="array", items="string", description="d", default=[])
    policy = policy_of(check, parameters={"repos": repos})
    request = request_for(pod(containers=[container("a", "ghcr.io/org/app:1")]))
    assert evaluate_policy(policy, {"repos": ["ghcr.io/org"]}, request) == []
    assert evaluate_policy(policy, {}, request) == [
        'container "a": image "ghcr.io/org/app:1" is not from an allowed repository (allowed: )'
    ]

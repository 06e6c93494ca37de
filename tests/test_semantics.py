"""The reference semantics (polgen.semantics): check kinds, subjects, operations, exemptions.

Tables state an input and the exact messages the contract in docs/architecture.md asks for.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, get_args

import pytest

from polgen.admission import AdmissionRequest, Operation, debug_request, request_for
from polgen.catalog import Parameter, Policy
from polgen.checks import (
    CHECK_KINDS,
    Check,
    ContainerFieldCheck,
    ContainerListContainsCheck,
    ContainerListRangeCheck,
    ContainerListSubsetCheck,
    ImageDigestCheck,
    ImageRepositoryCheck,
    ImageTagCheck,
    NamespaceCheck,
    ParamRef,
    PodAndContainerFieldCheck,
    PodAnnotationCheck,
    PodFieldCheck,
    PodLabelsCheck,
    PodListFieldCheck,
    PodListKeysCheck,
    ServiceFieldCheck,
    SkipIf,
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


# --- value rule wording shared by pod-field, container-field and service-field -------------------

VALUE_RULE_CASES: list[tuple[str, dict[str, Any], Any, list[str]]] = [
    ("forbidden value", {"forbidden": [0]}, 0, ["spec.x must not be one of [0]"]),
    ("forbidden keeps other values", {"forbidden": [0]}, 1000, []),
    ("forbidden is exact", {"forbidden": [0]}, False, []),
    ("forbidden, required and unset", {"forbidden": [0], "required": True}, None,
     ["spec.x must be set"]),
    ("only required, unset", {"required": True}, None, ["spec.x must be set"]),
    ("only required, any value", {"required": True}, {"exec": {}}, []),
    ("allowed, required and unset", {"allowed": [True], "required": True}, None,
     ["spec.x must be one of [true]"]),
]


@pytest.mark.parametrize(("rule", "value", "expected"), [c[1:] for c in VALUE_RULE_CASES],
                         ids=[c[0] for c in VALUE_RULE_CASES])
def test_value_rule_messages(rule: dict[str, Any], value: Any, expected: list[str]) -> None:
    check = PodFieldCheck(kind="pod-field", field="x", **rule)
    assert evaluate(check, pod(x=value)) == expected


# --- pod-and-container-field ---------------------------------------------------------------------

NON_ROOT = PodAndContainerFieldCheck(kind="pod-and-container-field",
                                     field="securityContext.runAsNonRoot", allowed=[True],
                                     required=True)
SECCOMP = PodAndContainerFieldCheck(kind="pod-and-container-field",
                                    field="securityContext.seccompProfile.type",
                                    allowed=["RuntimeDefault", "Localhost"])
NO_ROOT_UID = PodAndContainerFieldCheck(kind="pod-and-container-field",
                                        field="securityContext.runAsUser", forbidden=[0])
MISSING_NON_ROOT = ("securityContext.runAsNonRoot must be set here or in"
                    " spec.securityContext.runAsNonRoot")

POD_AND_CONTAINER_CASES: list[
    tuple[str, PodAndContainerFieldCheck, dict[str, Any], list[dict[str, Any]], list[str]]
] = [
    ("required, set at pod level", NON_ROOT, {"runAsNonRoot": True},
     [container("a"), container("b")], []),
    ("required, set per container", NON_ROOT, {},
     [container("a", runAsNonRoot=True), container("b", runAsNonRoot=True)], []),
    ("required, missing everywhere", NON_ROOT, {}, [container("a"), container("b")],
     [f'container "a": {MISSING_NON_ROOT}', f'container "b": {MISSING_NON_ROOT}']),
    ("required, one container missing", NON_ROOT, {},
     [container("a", runAsNonRoot=True), container("b")], [f'container "b": {MISSING_NON_ROOT}']),
    ("pod false is refused although containers say true", NON_ROOT, {"runAsNonRoot": False},
     [container("a", runAsNonRoot=True)],
     ["spec.securityContext.runAsNonRoot must be one of [true]"]),
    ("pod false, container unset: only the pod is blamed", NON_ROOT, {"runAsNonRoot": False},
     [container("a")], ["spec.securityContext.runAsNonRoot must be one of [true]"]),
    ("container false overrides pod true", NON_ROOT, {"runAsNonRoot": True},
     [container("a", runAsNonRoot=False)],
     ['container "a": securityContext.runAsNonRoot must be one of [true]']),
    ("not required, unset everywhere", SECCOMP, {}, [container("a")], []),
    ("not required, pod value bad", SECCOMP, {"seccompProfile": {"type": "Unconfined"}},
     [container("a", seccompProfile={"type": "RuntimeDefault"})],
     ['spec.securityContext.seccompProfile.type must be one of ["RuntimeDefault", "Localhost"]']),
    ("not required, container value bad", SECCOMP, {},
     [container("a", seccompProfile={"type": "Unconfined"})],
     ['container "a": securityContext.seccompProfile.type must be one of'
      ' ["RuntimeDefault", "Localhost"]']),
    ("profile object without type counts as unset", SECCOMP, {"seccompProfile": {}},
     [container("a")], []),
    ("forbidden at pod level despite container override", NO_ROOT_UID, {"runAsUser": 0},
     [container("a", runAsUser=1000)], ["spec.securityContext.runAsUser must not be one of [0]"]),
    ("forbidden per container", NO_ROOT_UID, {"runAsUser": 1000},
     [container("a", runAsUser=0), container("b")],
     ['container "a": securityContext.runAsUser must not be one of [0]']),
]


@pytest.mark.parametrize(("check", "pod_security", "containers", "expected"),
                         [c[1:] for c in POD_AND_CONTAINER_CASES],
                         ids=[c[0] for c in POD_AND_CONTAINER_CASES])
def test_pod_and_container_field(check: PodAndContainerFieldCheck, pod_security: dict[str, Any],
                                 containers: list[dict[str, Any]], expected: list[str]) -> None:
    spec: dict[str, Any] = {"containers": containers}
    if pod_security:
        spec["securityContext"] = pod_security
    assert evaluate(check, pod(**spec)) == expected


def test_pod_and_container_field_covers_every_list_and_skips_exempt_images() -> None:
    spec = {"initContainers": [container("i")], "containers": [container("tool", "debug:1")],
            "ephemeralContainers": [container("e")]}
    assert evaluate(NON_ROOT, pod(**spec), exempt=("debug:*",)) == [
        f'initContainer "i": {MISSING_NON_ROOT}',
        f'ephemeralContainer "e": {MISSING_NON_ROOT}',
    ]


# --- container-list-contains and container-list-range --------------------------------------------

DROP_ALL = ContainerListContainsCheck(kind="container-list-contains",
                                      field="securityContext.capabilities.drop", values=["ALL"])
CONTAINS_CASES: list[tuple[str, dict[str, Any] | None, list[str]]] = [
    ("drops ALL", {"drop": ["ALL"]}, []),
    ("drops ALL among others", {"drop": ["NET_RAW", "ALL"]}, []),
    ("no capabilities", None,
     ['container "a": securityContext.capabilities.drop must contain "ALL"']),
    ("only add", {"add": ["NET_BIND_SERVICE"]},
     ['container "a": securityContext.capabilities.drop must contain "ALL"']),
    ("case matters", {"drop": ["all"]},
     ['container "a": securityContext.capabilities.drop must contain "ALL"']),
]


@pytest.mark.parametrize(("capabilities", "expected"), [c[1:] for c in CONTAINS_CASES],
                         ids=[c[0] for c in CONTAINS_CASES])
def test_container_list_contains(capabilities: dict[str, Any] | None,
                                 expected: list[str]) -> None:
    security: dict[str, Any] = {"capabilities": capabilities} if capabilities else {}
    assert evaluate(DROP_ALL, pod(containers=[container("a", **security)])) == expected


def test_container_list_contains_reports_each_missing_value() -> None:
    check = ContainerListContainsCheck(kind="container-list-contains", field="args",
                                       values=["--secure", 1])
    obj = pod(containers=[{"name": "a", "image": "ubuntu:24.04", "args": ["--other"]}])
    assert evaluate(check, obj) == ['container "a": args must contain "--secure"',
                                    'container "a": args must contain "1"']


HOST_PORTS = ContainerListRangeCheck(kind="container-list-range", list="ports", field="hostPort",
                                     min=ParamRef(param="min"), max=ParamRef(param="max"))
PORT_PARAMETERS = {
    "min": Parameter(type="integer", description="d", default=0),
    "max": Parameter(type="integer", description="d", default=0),
}
RANGE_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], list[str]]] = [
    ("no hostPort", [{"containerPort": 80}], {}, []),
    ("hostPort 0", [{"containerPort": 80, "hostPort": 0}], {}, []),
    ("any hostPort with the default range", [{"containerPort": 80, "hostPort": 80}], {},
     ['container "a": ports[].hostPort 80 is not allowed (allowed: 0 or 0-0)']),
    ("inside a configured range", [{"containerPort": 80, "hostPort": 8080}],
     {"min": 8000, "max": 9000}, []),
    ("range bounds are inclusive", [{"hostPort": 8000}, {"hostPort": 9000}],
     {"min": 8000, "max": 9000}, []),
    ("one message per offending item", [{"hostPort": 22}, {"hostPort": 8080}, {"hostPort": 443}],
     {"min": 8000, "max": 9000},
     ['container "a": ports[].hostPort 22 is not allowed (allowed: 0 or 8000-9000)',
      'container "a": ports[].hostPort 443 is not allowed (allowed: 0 or 8000-9000)']),
    ("a string is out of range", [{"hostPort": "8080"}], {"min": 8000, "max": 9000},
     ['container "a": ports[].hostPort 8080 is not allowed (allowed: 0 or 8000-9000)']),
]


@pytest.mark.parametrize(("ports", "parameters", "expected"), [c[1:] for c in RANGE_CASES],
                         ids=[c[0] for c in RANGE_CASES])
def test_container_list_range(ports: list[dict[str, Any]], parameters: dict[str, Any],
                              expected: list[str]) -> None:
    policy = policy_of(HOST_PORTS, parameters=PORT_PARAMETERS)
    obj = pod(containers=[{"name": "a", "image": "ubuntu:24.04", "ports": ports}])
    assert evaluate_policy(policy, parameters, request_for(obj)) == expected


# --- pod-list-keys, pod-annotation, pod-labels ---------------------------------------------------

VOLUME_TYPES = PodListKeysCheck(kind="pod-list-keys", list="volumes",
                                allowed=["configMap", "emptyDir", "secret"])
KEYS_CASES: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    ("allowed sources", [{"name": "a", "emptyDir": {}}, {"name": "b", "secret": {}}], []),
    ("null source is not set", [{"name": "a", "emptyDir": {}, "hostPath": None}], []),
    ("no source at all", [{"name": "a"}], []),
    ("disallowed source", [{"name": "share", "nfs": {"server": "x", "path": "/"}}],
     ['spec.volumes item "share": nfs is not allowed (allowed: configMap, emptyDir, secret)']),
    ("every bad key, in document order", [{"name": "x", "rbd": {}, "emptyDir": {}, "iscsi": {}}],
     ['spec.volumes item "x": rbd is not allowed (allowed: configMap, emptyDir, secret)',
      'spec.volumes item "x": iscsi is not allowed (allowed: configMap, emptyDir, secret)']),
]


@pytest.mark.parametrize(("volumes", "expected"), [c[1:] for c in KEYS_CASES],
                         ids=[c[0] for c in KEYS_CASES])
def test_pod_list_keys(volumes: list[dict[str, Any]], expected: list[str]) -> None:
    assert evaluate(VOLUME_TYPES, pod(volumes=volumes)) == expected


def test_pod_list_keys_ignore_replaces_name() -> None:
    check = PodListKeysCheck(kind="pod-list-keys", list="volumes", allowed=["emptyDir"],
                             ignore=["name", "comment"])
    assert evaluate(check, pod(volumes=[{"name": "a", "comment": "c", "emptyDir": {}}])) == []
    without = PodListKeysCheck(kind="pod-list-keys", list="volumes", allowed=["emptyDir"],
                               ignore=[])
    assert evaluate(without, pod(volumes=[{"name": "a", "emptyDir": {}}])) == [
        'spec.volumes item "a": name is not allowed (allowed: emptyDir)'
    ]


APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
APPARMOR = PodAnnotationCheck(kind="pod-annotation", keyPrefix=APPARMOR_PREFIX,
                              allowed=["", "runtime/default", "localhost/*"])
APPARMOR_RULE = 'must be one of ["", "runtime/default", "localhost/*"]'
ANNOTATION_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no annotations", {}, []),
    ("other annotations are ignored", {"example.com/x": "unconfined"}, []),
    ("exact entry", {APPARMOR_PREFIX + "a": "runtime/default"}, []),
    ("empty value", {APPARMOR_PREFIX + "a": ""}, []),
    ("prefix entry", {APPARMOR_PREFIX + "a": "localhost/my-profile"}, []),
    ("a prefix entry needs the prefix", {APPARMOR_PREFIX + "a": "localhost"},
     [f'metadata.annotations["{APPARMOR_PREFIX}a"] {APPARMOR_RULE}']),
    ("one message per offending key", {APPARMOR_PREFIX + "a": "unconfined",
                                       APPARMOR_PREFIX + "b": "runtime/default",
                                       APPARMOR_PREFIX + "ghost": "unconfined"},
     [f'metadata.annotations["{APPARMOR_PREFIX}a"] {APPARMOR_RULE}',
      f'metadata.annotations["{APPARMOR_PREFIX}ghost"] {APPARMOR_RULE}']),
]


@pytest.mark.parametrize(("annotations", "expected"), [c[1:] for c in ANNOTATION_CASES],
                         ids=[c[0] for c in ANNOTATION_CASES])
def test_pod_annotation(annotations: dict[str, Any], expected: list[str]) -> None:
    obj = pod()
    obj["metadata"]["annotations"] = annotations
    assert evaluate(APPARMOR, obj) == expected


REQUIRED_LABELS = PodLabelsCheck(kind="pod-labels", keys=["app", "team"])
LABEL_CASES: list[tuple[str, dict[str, Any] | None, list[str]]] = [
    ("all present", {"app": "x", "team": "y", "extra": "z"}, []),
    ("empty value still present", {"app": "", "team": "y"}, []),
    ("one missing", {"app": "x"}, ['metadata.labels must include "team"']),
    ("no labels", None, ['metadata.labels must include "app"',
                         'metadata.labels must include "team"']),
]


@pytest.mark.parametrize(("labels", "expected"), [c[1:] for c in LABEL_CASES],
                         ids=[c[0] for c in LABEL_CASES])
def test_pod_labels(labels: dict[str, Any] | None, expected: list[str]) -> None:
    obj = pod()
    if labels is not None:
        obj["metadata"]["labels"] = labels
    assert evaluate(REQUIRED_LABELS, obj) == expected


@pytest.mark.parametrize("kind", sorted(set(WORKLOADS) - {"Pod"}))
def test_pod_metadata_of_a_workload_is_its_template_metadata(kind: str) -> None:
    """The workload's own labels and annotations are not the pod's."""
    obj = copy.deepcopy(WORKLOADS[kind])
    obj["metadata"]["labels"] = {"app": "x", "team": "y"}
    obj["metadata"]["annotations"] = {APPARMOR_PREFIX + "a": "unconfined"}
    assert evaluate(REQUIRED_LABELS, obj) == ['metadata.labels must include "team"']
    assert evaluate(APPARMOR, obj) == []
    template = obj["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else (
        obj["spec"]["template"])
    template["metadata"] = {"labels": {"app": "x", "team": "y"},
                            "annotations": {APPARMOR_PREFIX + "a": "unconfined"}}
    assert evaluate(REQUIRED_LABELS, obj) == []
    assert evaluate(APPARMOR, obj) == [
        f'metadata.annotations["{APPARMOR_PREFIX}a"] {APPARMOR_RULE}'
    ]


# --- image-tag and image-digest ------------------------------------------------------------------

NO_LATEST = ImageTagCheck(kind="image-tag", forbidden=["latest"])
PINNED = ImageDigestCheck(kind="image-digest")
DIGEST = "sha256:b359f1067efa76f37863778f7b6d0e8d911e3ee8efa807ad01fbf5dc1ef9006b"
IMAGE_TAG_CASES: list[tuple[str, str | None, bool]] = [
    ("ubuntu:24.04", None, False),
    ("ubuntu", "must name a tag or a digest", False),
    ("ubuntu:latest", 'uses forbidden tag "latest"', False),
    (f"ubuntu@{DIGEST}", None, True),
    (f"ubuntu:latest@{DIGEST}", 'uses forbidden tag "latest"', True),
    (f"ubuntu:24.04@{DIGEST}", None, True),
    ("localhost:5000/app", "must name a tag or a digest", False),
    ("localhost:5000/app:1.0", None, False),
    ("ubuntu:Latest", None, False),
]


@pytest.mark.parametrize(("image", "tag_problem", "pinned"), IMAGE_TAG_CASES,
                         ids=[c[0] for c in IMAGE_TAG_CASES])
def test_image_tag_and_digest(image: str, tag_problem: str | None, pinned: bool) -> None:
    obj = pod(containers=[container("a", image)])
    assert evaluate(NO_LATEST, obj) == (
        [f'container "a": image "{image}" {tag_problem}'] if tag_problem else []
    )
    assert evaluate(PINNED, obj) == (
        [] if pinned else [f'container "a": image "{image}" must be pinned by digest']
    )


def test_image_kinds_skip_exempt_containers_and_respect_container_types() -> None:
    spec = {"initContainers": [container("i", "ubuntu")], "containers": [container("c", "tool")],
            "ephemeralContainers": [container("e", "ubuntu:latest")]}
    assert evaluate(NO_LATEST, pod(**spec), exempt=("tool",)) == [
        'initContainer "i": image "ubuntu" must name a tag or a digest',
        'ephemeralContainer "e": image "ubuntu:latest" uses forbidden tag "latest"',
    ]
    only_containers = ImageDigestCheck(kind="image-digest", containerTypes=["containers"])
    assert evaluate(only_containers, pod(**spec)) == [
        'container "c": image "tool" must be pinned by digest'
    ]


# --- namespace and service-field -----------------------------------------------------------------

NOT_DEFAULT = NamespaceCheck(kind="namespace", forbidden=["default", "kube-public"])
NAMESPACE_CASES: list[tuple[str, str | None, str, list[str]]] = [
    ("request namespace default", None, "default", ['namespace "default" is not allowed']),
    ("request namespace allowed", None, "prd", []),
    ("namespace from the object's metadata", "kube-public", "prd",
     ['namespace "kube-public" is not allowed']),
    ("object namespace when the request has none", "default", "",
     ['namespace "default" is not allowed']),
]


@pytest.mark.parametrize(("in_metadata", "request_default", "expected"),
                         [c[1:] for c in NAMESPACE_CASES], ids=[c[0] for c in NAMESPACE_CASES])
def test_namespace(in_metadata: str | None, request_default: str, expected: list[str]) -> None:
    obj = pod()
    if in_metadata is not None:
        obj["metadata"]["namespace"] = in_metadata
    request = request_for(obj, default_namespace=request_default)
    assert evaluate_policy(policy_of(NOT_DEFAULT), {}, request) == expected


NODE_PORTS = ServiceFieldCheck(kind="service-field", field="type", forbidden=["NodePort"])


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


SERVICE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("type unset", {}, []),
    ("ClusterIP", {"type": "ClusterIP"}, []),
    ("NodePort", {"type": "NodePort"}, ['spec.type must not be one of ["NodePort"]']),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in SERVICE_CASES],
                         ids=[c[0] for c in SERVICE_CASES])
def test_service_field(spec: dict[str, Any], expected: list[str]) -> None:
    assert evaluate(NODE_PORTS, service(**spec)) == expected


def test_service_field_on_update_and_with_allowed() -> None:
    request = request_for(service(type="NodePort"), "UPDATE")
    assert evaluate_policy(policy_of(NODE_PORTS), {}, request) == [
        'spec.type must not be one of ["NodePort"]'
    ]
    cluster_ip = ServiceFieldCheck(kind="service-field", field="type", allowed=["ClusterIP"],
                                   required=True)
    assert evaluate(cluster_ip, service()) == ['spec.type must be one of ["ClusterIP"]']


def test_subjects_do_not_mix() -> None:
    """A Service policy never sees pods (a pod's spec.type is no Service type), nor the other
    way round."""
    assert evaluate(NODE_PORTS, pod(type="NodePort")) == []
    deployment = copy.deepcopy(WORKLOADS["Deployment"])
    deployment["spec"]["type"] = "NodePort"
    assert evaluate(NODE_PORTS, deployment) == []
    assert evaluate(HOST_PID, service(hostPID=True)) == []


# --- skipIf and versions -------------------------------------------------------------------------

def _skipping(*skips: dict[str, Any]) -> ContainerFieldCheck:
    return ContainerFieldCheck(kind="container-field",
                               field="securityContext.allowPrivilegeEscalation", allowed=[False],
                               required=True, skipIf=[SkipIf(**skip) for skip in skips])


WINDOWS = {"field": "os.name", "equals": "windows", "param": "exemptWindows"}
USERNS = {"field": "hostUsers", "equals": False}
EXEMPT_WINDOWS = {"exemptWindows": Parameter(type="boolean", description="d", default=True)}
ESCALATION = 'container "a": securityContext.allowPrivilegeEscalation must be one of [false]'
SKIP_CASES: list[tuple[str, ContainerFieldCheck, dict[str, Any], dict[str, Any], bool]] = [
    ("windows pod skipped", _skipping(WINDOWS), {"os": {"name": "windows"}}, {}, True),
    ("linux pod checked", _skipping(WINDOWS), {"os": {"name": "linux"}}, {}, False),
    ("no os checked", _skipping(WINDOWS), {}, {}, False),
    ("parameter false switches the skip off", _skipping(WINDOWS), {"os": {"name": "windows"}},
     {"exemptWindows": False}, False),
    ("the value must be exact", _skipping(WINDOWS), {"os": {"name": "Windows"}}, {}, False),
    ("hostUsers false skipped", _skipping(USERNS), {"hostUsers": False}, {}, True),
    ("hostUsers unset is not false", _skipping(USERNS), {}, {}, False),
    ("hostUsers string is not false", _skipping(USERNS), {"hostUsers": "false"}, {}, False),
    ("any entry matching skips", _skipping(WINDOWS, USERNS), {"hostUsers": False}, {}, True),
]


@pytest.mark.parametrize(("check", "spec", "parameters", "skipped"),
                         [c[1:] for c in SKIP_CASES], ids=[c[0] for c in SKIP_CASES])
def test_skip_if(check: ContainerFieldCheck, spec: dict[str, Any], parameters: dict[str, Any],
                 skipped: bool) -> None:
    policy = policy_of(check, parameters=EXEMPT_WINDOWS)
    obj = pod(containers=[container("a")], **spec)
    expected = [] if skipped else [ESCALATION]
    assert evaluate_policy(policy, parameters, request_for(obj)) == expected


@pytest.mark.parametrize(("version", "skipped"), [("v1.34", False), ("v1.35", True),
                                                  ("latest", True)])
def test_skip_if_follows_the_versioned_parameter_default(version: str, skipped: bool) -> None:
    exempt = Parameter(type="boolean", description="d", default=True,
                       byVersion={"v1.0": False, "v1.35": True})
    check = _skipping({**USERNS, "param": "exemptUserNamespaces"})
    policy = policy_of(check, parameters={"exemptUserNamespaces": exempt})
    request = request_for(pod(containers=[container("a")], hostUsers=False))
    messages = evaluate_policy(policy, policy.default_parameters(version), request)
    assert messages == ([] if skipped else [ESCALATION])


def test_skip_if_skips_pod_level_checks_too() -> None:
    check = PodFieldCheck(kind="pod-field", field="hostPID", allowed=[False],
                          skipIf=[SkipIf(field="os.name", equals="windows")])
    assert evaluate(check, pod(hostPID=True, os={"name": "windows"})) == []
    assert evaluate(check, pod(hostPID=True)) == ["spec.hostPID must be unset or one of [false]"]


# --- which kinds run on a plain Pod UPDATE -------------------------------------------------------

CHECK_MODELS = {
    get_args(model.model_fields["kind"].annotation)[0]: model
    for model in get_args(get_args(Check)[0])
}

def test_mutable_kinds_are_images_and_labels() -> None:
    mutable = {kind for kind, model in CHECK_MODELS.items() if model.mutable}
    assert mutable == {"image-repository", "image-tag", "image-digest", "pod-labels"}
    assert set(CHECK_MODELS) == set(CHECK_KINDS)


UPDATE_POLICY = policy_of(NON_ROOT, NO_LATEST, REQUIRED_LABELS, NOT_DEFAULT, DROP_ALL)
UPDATE_POD = pod(containers=[container("a", "ubuntu")])
UPDATE_ALL = [
    f'container "a": {MISSING_NON_ROOT}',
    'container "a": image "ubuntu" must name a tag or a digest',
    'metadata.labels must include "app"',
    'metadata.labels must include "team"',
    'namespace "default" is not allowed',
    'container "a": securityContext.capabilities.drop must contain "ALL"',
]
UPDATE_CASES: list[tuple[str, str, str, list[str]]] = [
    ("create runs every kind", "CREATE", "", UPDATE_ALL),
    ("plain pod update runs image and label kinds only", "UPDATE", "", UPDATE_ALL[1:4]),
    ("resize is a plain pod update", "UPDATE", "resize", UPDATE_ALL[1:4]),
    ("kubectl debug runs every kind", "UPDATE", "ephemeralcontainers", UPDATE_ALL),
]


@pytest.mark.parametrize(("operation", "sub_resource", "expected"),
                         [c[1:] for c in UPDATE_CASES], ids=[c[0] for c in UPDATE_CASES])
def test_update_rule_uses_check_mutable(operation: Operation, sub_resource: str,
                                        expected: list[str]) -> None:
    request = dataclasses.replace(request_for(UPDATE_POD, operation),
                                  sub_resource=sub_resource, old_object=UPDATE_POD)
    assert evaluate_policy(UPDATE_POLICY, {}, request) == expected


def test_workload_update_runs_every_kind() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"spec": UPDATE_POD["spec"]}}}
    request = request_for(deployment, "UPDATE")
    assert evaluate_policy(UPDATE_POLICY, {}, request) == UPDATE_ALL


def test_debug_request_reviews_the_new_ephemeral_container() -> None:
    obj = pod(containers=[container("a", allowPrivilegeEscalation=False)],
              ephemeralContainers=[container("dbg", privileged=True)])
    assert evaluate_policy(policy_of(PRIVILEGED), {}, debug_request(obj)) == [
        'ephemeralContainer "dbg": securityContext.privileged must be unset or one of [false]'
    ]

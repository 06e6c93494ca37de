"""validate.podSecurity (kyverno_pss): pod extraction and Kyverno's exclusions."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.base import EngineError
from polgen.engines.kyverno_pss import check_definition, evaluate, pod_of


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": spec}


def container(name: str, image: str, **security: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "securityContext": security}


CAPS = pod(
    containers=[
        container("a", "redis:7", capabilities={"add": ["NET_ADMIN"]}),
        container("b", "nginx", capabilities={"add": ["SYS_TIME"]}),
    ]
)


@pytest.mark.parametrize(
    ("definition", "target", "failed"),
    [
        ({"level": "baseline"}, CAPS, ["capabilities_baseline"]),
        ({"level": "privileged"}, CAPS, []),
        (
            {
                "level": "baseline",
                "exclude": [{"controlName": "Capabilities", "images": ["redis*"]}],
            },
            CAPS,
            ["capabilities_baseline"],
        ),
        (
            {
                "level": "baseline",
                "exclude": [{"controlName": "Capabilities", "images": ["redis*", "nginx"]}],
            },
            CAPS,
            [],
        ),
        (
            {
                "level": "baseline",
                "exclude": [
                    {
                        "controlName": "Capabilities",
                        "images": ["*"],
                        "restrictedField": "spec.containers[*].securityContext.capabilities.add",
                        "values": ["NET_ADMIN", "SYS_TIME"],
                    }
                ],
            },
            CAPS,
            [],
        ),
        (
            {
                "level": "baseline",
                "exclude": [
                    {
                        "controlName": "Capabilities",
                        "images": ["*"],
                        "restrictedField": "spec.containers[*].securityContext.capabilities.add",
                        "values": ["NET_ADMIN"],
                    }
                ],
            },
            CAPS,
            ["capabilities_baseline"],
        ),
        (
            {"level": "baseline"},
            pod(hostNetwork=True, containers=[container("a", "x")]),
            ["hostNamespaces"],
        ),
        (
            {"level": "baseline", "exclude": [{"controlName": "Host Namespaces"}]},
            pod(hostNetwork=True, containers=[container("a", "x")]),
            [],
        ),
        (
            {
                "level": "restricted",
                "exclude": [
                    {"controlName": "Seccomp"},
                    {"controlName": "Seccomp", "images": ["*"]},
                ],
            },
            pod(
                securityContext={"seccompProfile": {"type": "Unconfined"}},
                containers=[
                    container(
                        "a",
                        "x",
                        allowPrivilegeEscalation=False,
                        runAsNonRoot=True,
                        capabilities={"drop": ["ALL"]},
                    )
                ],
            ),
            [],
        ),
    ],
)
def test_exclusions(definition: dict[str, Any], target: dict[str, Any], failed: list[str]) -> None:
    assert [f.check for f in evaluate(definition, target)] == failed


def test_pod_of_controllers() -> None:
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"hostPID": True}}
    assert pod_of({"spec": {"template": template}}, "Deployment") == template
    cron = {"spec": {"jobTemplate": {"spec": {"template": template}}}}
    assert pod_of(cron, "CronJob") == template
    assert pod_of({"metadata": {"name": "p"}, "spec": {}}, "Pod") == {
        "metadata": {"name": "p"},
        "spec": {},
    }


@pytest.mark.parametrize(
    "definition",
    [
        {"level": "strict"},
        {"level": "baseline", "version": "1.30"},
        {
            "level": "baseline",
            "exclude": [
                {"controlName": "Capabilities", "restrictedField": "metadata.annotations[x]"}
            ],
        },
    ],
)
def test_rejected_definitions(definition: dict[str, Any]) -> None:
    with pytest.raises(EngineError):
        check_definition("p.yaml", "rule", definition)

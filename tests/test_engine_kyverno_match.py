"""match / exclude (kyverno_match) on the match table, and kind selector parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_match import parse_kind_selector, rule_matches

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "match.yaml").read_text()
)


def request_of(spec: dict[str, Any]) -> KyvernoRequest:
    group_version, _, kind = str(spec["kind"]).rpartition("/")
    group, _, version = group_version.rpartition("/")
    metadata = {
        "name": spec.get("name", "obj"),
        "labels": spec.get("labels") or {},
        "annotations": spec.get("annotations") or {},
    }
    return KyvernoRequest(
        operation=spec.get("operation", "CREATE"),
        object={"metadata": metadata},
        old_object=None,
        group=group,
        version=version,
        kind=kind,
        namespace=spec.get("namespace", "apps"),
        name=metadata["name"],
        subresource=spec.get("subresource", ""),
        user_info=spec.get("userInfo"),
        namespace_labels=spec.get("namespaceLabels") or {},
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_match_table(case: dict[str, Any]) -> None:
    assert rule_matches(case["rule"], request_of(case["request"])) is case["matched"]


def test_namespaced_policy_sees_only_its_namespace() -> None:
    rule = {"match": {"any": [{"resources": {"kinds": ["Pod"]}}]}}
    assert rule_matches(rule, request_of({"kind": "v1/Pod", "namespace": "a"}), "a")
    assert not rule_matches(rule, request_of({"kind": "v1/Pod", "namespace": "b"}), "a")


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        ("Pod", ("*", "*", "Pod", "")),
        ("v1/Pod", ("*", "v1", "Pod", "")),
        ("apps/v1/Deployment", ("apps", "v1", "Deployment", "")),
        ("Pod/exec", ("*", "*", "Pod", "exec")),
        ("Pod.exec", ("*", "*", "Pod", "exec")),
        ("v1/Pod/status", ("*", "v1", "Pod", "status")),
        ("apps/v1/Deployment/scale", ("apps", "v1", "Deployment", "scale")),
        ("*/*", ("*", "*", "*", "*")),
        ("*/scale", ("*", "*", "*", "scale")),
        ("apps/*/Deployment", ("apps", "*", "Deployment", "")),
        ("v1beta1/CronJob", ("*", "v1beta1", "CronJob", "")),
    ],
)
def test_kind_selector(selector: str, parsed: tuple[str, str, str, str]) -> None:
    assert parse_kind_selector(selector) == parsed

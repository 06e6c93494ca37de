"""Pattern anchors and array semantics (polgen.engines.kyverno_pattern) on the anchors table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno_pattern import match_pattern, parse_anchor

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "anchors.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_anchor_table(case: dict[str, Any]) -> None:
    assert match_pattern(case["resource"], case["pattern"]).status == case["status"]


@pytest.mark.parametrize(
    ("key", "modifier", "bare"),
    [
        ("(image)", "", "image"),
        ("=(hostPID)", "=", "hostPID"),
        ("X(hostPath)", "X", "hostPath"),
        ("^(containers)", "^", "containers"),
        ("<(name)", "<", "name"),
        ("+(label)", "+", "label"),
        (
            "=(container.apparmor.security.beta.kubernetes.io/*)",
            "=",
            "container.apparmor.security.beta.kubernetes.io/*",
        ),
    ],
)
def test_parse_anchor(key: str, modifier: str, bare: str) -> None:
    anchor = parse_anchor(key)
    assert anchor is not None
    assert (anchor.modifier, anchor.key) == (modifier, bare)


@pytest.mark.parametrize("key", ["image", "(", "()", "Y(x)", "(x"])
def test_not_an_anchor(key: str) -> None:
    assert parse_anchor(key) is None


def test_failure_path_is_kyverno_style() -> None:
    pattern = {"spec": {"containers": [{"=(securityContext)": {"=(privileged)": "false"}}]}}
    resource = {"spec": {"containers": [{"name": "a"}, {"securityContext": {"privileged": True}}]}}
    outcome = match_pattern(resource, pattern)
    assert (outcome.status, outcome.path) == (
        "fail",
        "/spec/containers/1/securityContext/privileged/",
    )


def test_pattern_is_not_mutated_by_wildcard_expansion() -> None:
    pattern = {"metadata": {"annotations": {"=(a/*)": "x"}}}
    match_pattern({"metadata": {"annotations": {"a/b": "y"}}}, pattern)
    assert pattern == {"metadata": {"annotations": {"=(a/*)": "x"}}}

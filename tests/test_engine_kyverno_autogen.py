"""Autogen (kyverno_autogen): which rules Kyverno evaluates for a pod controller kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno_autogen import can_autogen, compute_rules

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "autogen.yaml").read_text()
)


def at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_autogen_table(case: dict[str, Any]) -> None:
    rules = compute_rules(case["policy"], case["kind"])
    assert [r["name"] for r in rules] == case["rules"]
    by_name = {r["name"]: r for r in rules}
    for rule, fields in (case.get("fields") or {}).items():
        for path, expected in fields.items():
            assert at(by_name[rule], path) == expected, f"{rule}: {path}"


def test_input_policy_is_not_modified() -> None:
    policy = CASES[0]["policy"]
    before = yaml.safe_dump(policy)
    compute_rules(policy, "Deployment")
    assert yaml.safe_dump(policy) == before


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["Pod"], True),
        (["Deployment"], True),
        (["ConfigMap"], False),
        (["Pod", "Deployment"], False),
    ],
)
def test_gate_needs_a_pod_or_controller_kind(kinds: list[str], expected: bool) -> None:
    rule = {"name": "r", "match": {"any": [{"resources": {"kinds": kinds}}]}}
    assert can_autogen([rule]) is expected

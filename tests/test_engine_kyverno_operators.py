"""Condition operators (polgen.engines.kyverno_operators) on the operators table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno_operators import OPERATORS, evaluate, is_operator

ROWS: list[list[Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "operators.yaml").read_text()
)


@pytest.mark.parametrize(
    ("key", "operator", "value", "expected"), ROWS, ids=[f"{r[0]!r}-{r[1]}-{r[2]!r}" for r in ROWS]
)
def test_operator_table(key: Any, operator: str, value: Any, expected: bool) -> None:
    assert evaluate(key, operator, value) is expected


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_null_key_is_false_for_every_operator(name: str) -> None:
    assert evaluate(None, name, None) is False
    assert evaluate(None, name, "x") is False


def test_names_are_case_insensitive_and_unknown_ones_rejected() -> None:
    assert is_operator("AnyNotIn") and is_operator("anynotin") and is_operator("ANYNOTIN")
    assert not is_operator("Contains")

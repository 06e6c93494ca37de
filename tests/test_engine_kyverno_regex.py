"""Go's regexp on Python's re (kyverno_regex): the table in data/kyverno_engine/regex.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno_regex import RegexError, compile_go, replace_all

TABLE: dict[str, list[Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "regex.yaml").read_text(encoding="utf-8")
)


@pytest.mark.parametrize(("pattern", "text", "matches"), TABLE["match"])
def test_match(pattern: str, text: str, matches: bool) -> None:
    assert compile_go(pattern).search(text) is matches


@pytest.mark.parametrize("pattern", TABLE["errors"])
def test_rejected(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_go(pattern)


@pytest.mark.parametrize(("pattern", "text", "replacement", "result"), TABLE["replace"])
def test_replace_all(pattern: str, text: str, replacement: str, result: str) -> None:
    assert replace_all(compile_go(pattern), text, replacement, literal=False) == result


@pytest.mark.parametrize(("pattern", "text", "replacement", "result"), TABLE["literal"])
def test_replace_all_literal(pattern: str, text: str, replacement: str, result: str) -> None:
    assert replace_all(compile_go(pattern), text, replacement, literal=True) == result

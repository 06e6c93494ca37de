"""YAML loading with lines, and the canonical dump used for every output file."""

from __future__ import annotations

from pathlib import Path

import yaml

from polgen.yamlio import dump, line_for, load_with_lines


def test_lines_of_nested_keys(tmp_path: Path) -> None:
    file = tmp_path / "a.yaml"
    file.write_text("a:\n  b:\n    - x\n    - c: 1\n")
    data, lines = load_with_lines(file)
    assert data == {"a": {"b": ["x", {"c": 1}]}}
    assert lines[("a", "b")] == 2
    assert lines[("a", "b", 1, "c")] == 4
    assert line_for(lines, ("a", "b", 1, "c", "deeper")) == 4


def test_dump_keeps_order_and_uses_literal_blocks() -> None:
    text = dump({"kind": "X", "apiVersion": "v1", "rego": "package a\nx := 1\n"})
    assert text.splitlines()[0] == "kind: X"
    assert "rego: |" in text
    assert yaml.safe_load(text)["rego"] == "package a\nx := 1\n"


def test_dump_is_stable() -> None:
    document = {"b": [1, {"z": True, "a": None}], "a": "text"}
    assert dump(document) == dump(document)

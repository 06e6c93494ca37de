"""The Jinja environment: data goes in serialised, undefined names fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import jmespath
import pytest
import yaml

from polgen.errors import PolgenError
from polgen.rendering import (
    environment,
    kyverno_escape,
    render,
    to_jmespath_literal,
    to_jmespath_string,
    to_json,
)

NASTY = [
    "a\"b'c",
    "line1\nline2",
    "{{ request.object }}",
    "key: [value]",
    "back`tick",
    "x\\y",
    "next\u0085line",
    "sep\u2028arator",
    "$(./../x)",
    "ünïcödé",
]


def test_json_literal_round_trips_through_yaml() -> None:
    assert yaml.safe_load(f"value: {to_json(NASTY)}") == {"value": NASTY}


def test_jmespath_literal_and_string_round_trip() -> None:
    assert jmespath.search(to_jmespath_literal(NASTY), {}) == NASTY
    for text in NASTY:
        assert jmespath.search(to_jmespath_string(text), {}) == text


def test_kyverno_escape() -> None:
    assert kyverno_escape("{{ x }} and {{y}}") == "\\{{ x }} and \\{{y}}"
    assert kyverno_escape("$(./x)") == "\\$(./x)"


def test_strict_undefined(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ missing }}")
    with pytest.raises(jinja2.UndefinedError):
        environment(tmp_path).get_template("t.j2").render()


def test_template_not_found_is_a_user_error() -> None:
    with pytest.raises(PolgenError) as info:
        render("no/such/template.j2")
    assert "template not found" in str(info.value)


def test_values_are_not_template_code(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("value: {{ v | json }}\n")
    for value in NASTY:
        text = environment(tmp_path).get_template("t.j2").render(v=value)
        assert yaml.safe_load(text) == {"value": value}
        assert json.loads(text.removeprefix("value: ")) == value

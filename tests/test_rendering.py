"""The Jinja environment: data goes in serialised, undefined names fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import jmespath
import pytest
import yaml

from polgen.cache import CACHE_VARIABLE
from polgen.errors import PolgenError
from polgen.rendering import (
    bytecode_cache,
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


def _fresh_render(root: Path, name: str, **context: object) -> str:
    """Render in a new environment, as a new polgen process would."""
    environment.cache_clear()
    try:
        return environment(root).get_template(name).render(**context)
    finally:
        environment.cache_clear()


def test_compiled_templates_are_reused_between_runs_and_never_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_VARIABLE, str(cache))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.j2").write_text("first: {{ v | json }}\n")
    cold = _fresh_render(templates, "t.j2", v="x")
    assert list((cache / "jinja").iterdir()), "the compiled template is kept"
    assert _fresh_render(templates, "t.j2", v="x") == cold == 'first: "x"\n'
    (templates / "t.j2").write_text("second: {{ v | json }}\n")
    assert _fresh_render(templates, "t.j2", v="x") == 'second: "x"\n'


def test_the_real_templates_render_the_same_from_a_warm_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polgen.pipeline import load_inputs
    from polgen.targets import TARGETS

    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path))
    plans = load_inputs().plans

    def rendered() -> list[tuple[str, str]]:
        environment.cache_clear()
        return [(doc.file, json.dumps(doc.body)) for plan in plans for name in plan.targets
                for doc in TARGETS[name].render(plan)]

    cold = rendered()
    assert rendered() == cold
    environment.cache_clear()


def test_the_cache_can_be_turned_off_and_a_bad_folder_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, "")
    assert bytecode_cache() is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_VARIABLE, str(blocker / "cache"))
    assert bytecode_cache() is None
    monkeypatch.delenv(CACHE_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert isinstance(bytecode_cache(), jinja2.FileSystemBytecodeCache)
    assert (tmp_path / "xdg" / "polgen" / "jinja").is_dir()

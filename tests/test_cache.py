"""polgen's cache folder: where it is, per-version generations, atomic entries, and the CEL
programs kept in it (a program read back behaves as a freshly compiled one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polgen import cache
from polgen.cache import CACHE_VARIABLE, cache_dir, generation_dir, read_entry, write_entry
from polgen.engines.cel_runtime import compile_declared, compile_expression

EXPRESSION = "object.spec.containers.filter(c, c.?securityContext.privileged.orValue(false))" \
             ".map(c, c.name)"
POD = {"spec": {"containers": [{"name": "a", "securityContext": {"privileged": True}},
                               {"name": "b"}]}}


def test_the_folder_follows_the_variable_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "mine"))
    assert cache_dir("x") == tmp_path / "mine" / "x"
    monkeypatch.delenv(CACHE_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("x") == tmp_path / "xdg" / "polgen" / "x"
    monkeypatch.setenv(CACHE_VARIABLE, "")
    assert cache_dir("x") is None


def test_only_the_latest_entries_are_kept(tmp_path: Path) -> None:
    for number in range(5):
        write_entry(tmp_path, f"e{number}.json", b"{}", keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.json", "e3.json", "e4.json"]
    assert read_entry(tmp_path, "e4.json") == b"{}"
    assert read_entry(tmp_path, "e0.json") is None


def test_another_polgen_version_starts_a_new_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path))
    current = generation_dir("cel")
    assert current is not None and current.parent == tmp_path / "cel"
    write_entry(current, "entry", b"x")
    monkeypatch.setattr(cache, "code_digest", lambda: "f" * 64)
    upgraded = generation_dir("cel")
    assert upgraded == tmp_path / "cel" / ("f" * 32)
    assert [p.name for p in (tmp_path / "cel").iterdir()] == ["f" * 32]


def test_a_program_read_back_behaves_as_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path))
    compile_declared.cache_clear()
    fresh = compile_expression(EXPRESSION, ["object"])
    [entry] = generation_dir("cel").iterdir()  # type: ignore[union-attr]
    compile_declared.cache_clear()
    read_back = compile_expression(EXPRESSION, ["object"])
    assert read_back is not fresh
    assert read_back.evaluate({"object": POD}) == fresh.evaluate({"object": POD}) == ["a"]
    assert read_back._compiled.return_type() == fresh._compiled.return_type()
    entry.write_bytes(b"\0" * 32 + entry.read_bytes()[32:])  # a damaged entry is not used
    compile_declared.cache_clear()
    assert compile_expression(EXPRESSION, ["object"]).evaluate({"object": POD}) == ["a"]
    assert entry.read_bytes()[:32] != b"\0" * 32, "the damaged entry is replaced"
    compile_declared.cache_clear()


def test_the_library_stamp_names_installed_versions() -> None:
    import jinja2

    stamp = cache.library_stamp("jinja2", "yaml")
    assert f"/jinja2-{jinja2.__version__}.dist-info" in stamp.lower()
    assert cache.library_stamp("no_such_module_here") == "no_such_module_here: not installed"


def test_a_folder_others_may_write_is_not_used(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who can write the cache could plant a rendering that admits everything."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(CACHE_VARIABLE, str(shared))
    assert cache_dir("scan") is None
    shared.chmod(0o755)
    assert cache_dir("scan") == shared / "scan"
    (shared / "scan").chmod(0o775)
    assert cache_dir("scan") is None

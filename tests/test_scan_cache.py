"""The scan cache: a warm scan gives the same report without loading the catalog or rendering,
every input is part of the key, and a cache that is off, corrupt or unusable only means a miss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polgen import scan_cache
from polgen.cache import CACHE_VARIABLE, cache_dir
from polgen.manifests import load_manifests
from polgen.resources import templates_dir
from polgen.scan import cached_fleet_sources, scan
from tests.conftest import Process

BREAKOUT = Path(__file__).parent / "data" / "scan" / "breakout.yaml"
SELECTION = ["[[], [], null]"]


def _report(*args: str) -> list[dict[str, object]]:
    sources = cached_fleet_sources(*args) if args else cached_fleet_sources(None, None, (), (),
                                                                            None)
    return [result.to_json() for result in scan(load_manifests([BREAKOUT]), sources)]


def test_a_warm_scan_reports_the_same_without_the_catalog_or_rendering(
    tmp_path: Path, polgen_process: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    arguments = ("scan", str(BREAKOUT), "--format", "json", "--target", "vap", "--target", "psa")
    cold, cold_modules = polgen_process(*arguments)
    warm, warm_modules = polgen_process(*arguments)
    assert warm == cold
    assert json.loads(warm)["summary"]["denied"] == 4
    assert {"polgen.catalog", "jinja2"} <= cold_modules
    assert not {"polgen.catalog", "pydantic", "jinja2", "polgen.targets.vap",
                "polgen.engines.gatekeeper", "polgen.engines.kyverno"} & warm_modules
    assert len(list((tmp_path / "cache" / "scan").iterdir())) == 1


def test_every_input_is_part_of_the_key(
    catalog_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = catalog_copy / "fleet.yaml"
    base = scan_cache.fleet_key(catalog_copy, None, SELECTION)
    assert base == scan_cache.fleet_key(catalog_copy, fleet, SELECTION)
    assert base != scan_cache.fleet_key(catalog_copy, None, ["[[\"prod\"], [], null]"])
    other_fleet = tmp_path / "fleet.yaml"
    other_fleet.write_text(fleet.read_text() + "\n# a comment\n")
    assert base != scan_cache.fleet_key(catalog_copy, other_fleet, SELECTION)
    policy = next(catalog_copy.glob("policies/*/policy.yaml"))
    policy.write_text(policy.read_text() + "\n")
    changed_catalog = scan_cache.fleet_key(catalog_copy, None, SELECTION)
    assert changed_catalog != base
    templates = tmp_path / "templates"
    shutil.copytree(templates_dir(), templates)
    monkeypatch.setattr(scan_cache, "templates_dir", lambda: templates)
    assert scan_cache.fleet_key(catalog_copy, None, SELECTION) == changed_catalog
    next(templates.rglob("*.j2")).write_text("{# edited #}\n", encoding="utf-8")
    assert scan_cache.fleet_key(catalog_copy, None, SELECTION) != changed_catalog
    assert scan_cache.fleet_key(tmp_path / "absent", None, SELECTION) is None
    edited_templates = scan_cache.fleet_key(catalog_copy, None, SELECTION)
    monkeypatch.setattr(scan_cache, "library_stamp", lambda *modules: "jinja2-99.dist-info")
    assert scan_cache.fleet_key(catalog_copy, None, SELECTION) != edited_templates


def test_an_edited_catalog_is_scanned_as_edited(catalog_copy: Path) -> None:
    before = _report(catalog_copy, None, ("prod",), ("vap",), None)
    policy = catalog_copy / "policies" / "disallow-privileged" / "policy.yaml"
    policy.write_text(policy.read_text().replace("allowed: [false]", "allowed: [false, true]"))
    after = _report(catalog_copy, None, ("prod",), ("vap",), None)
    assert "securityContext.privileged" in json.dumps(before)
    assert "securityContext.privileged" not in json.dumps(after)


def test_a_corrupt_entry_is_a_miss_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path))
    expected = _report()
    [entry] = (tmp_path / "scan").iterdir()
    entry.write_text('{"truncated": ')
    assert _report() == expected
    assert json.loads(entry.read_text())


def test_caching_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, "")
    assert cache_dir("scan") is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _report()
    assert not list(tmp_path.iterdir())


def test_documents_json_would_change_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path))
    scan_cache.store("int-key", [("dev", "vap", [("vap", [("f", {"data": {1: "one"}})])])])
    scan_cache.store("plain", [("dev", "vap", [("vap", [("f", {"data": {"1": "one"}})])])])
    assert sorted(p.name for p in (tmp_path / "scan").iterdir()) == ["plain.json"]
    assert scan_cache.load("plain") == [("dev", "vap", [("vap", [("f", {"data": {"1": "one"}})])])]

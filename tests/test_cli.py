"""The command line: exit codes, user errors without tracebacks, render --check, list, validate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import polgen.rendering
from polgen.targets import TARGETS

Run = Callable[..., Result]


def test_validate_ok(run_cli: Run) -> None:
    result = run_cli("validate")
    assert result.exit_code == 0
    assert result.output.startswith("ok: ")


def test_render_then_check(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("render", "--out", str(out)).exit_code == 0
    assert {p.name for p in out.iterdir()} == {"dev", "prod", "index.yaml"}
    assert {p.name for p in (out / "dev").iterdir()} == {*TARGETS, "kustomization.yaml"}
    check = run_cli("render", "--check", "--out", str(out))
    assert check.exit_code == 0, check.output
    (out / "dev" / "psa" / "namespace-prd.yaml").write_text("tampered\n")
    (out / "dev" / "psa" / "extra.yaml").write_text("x\n")
    stale = run_cli("render", "--check", "--out", str(out))
    assert stale.exit_code == 1
    assert "changed: " in stale.output and "extra: " in stale.output
    assert "1 changed, 1 extra" in stale.output


def test_render_one_target_of_one_cluster(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", "--target", "psa", "--cluster", "prod", "--out", str(out))
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.yaml", "prod"]
    assert sorted(p.name for p in (out / "prod").iterdir()) == ["kustomization.yaml", "psa"]


def test_kyverno_flavor_option(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("render", "--target", "kyverno", "--cluster", "dev", "--out", str(out))
    assert run_cli(*args, "--kyverno-flavor", "ValidatingPolicy").exit_code == 0
    names = [p.name for p in (out / "dev" / "kyverno").iterdir()]
    assert any(name.startswith("validatingpolicy-") for name in names)
    assert not any(name.startswith("clusterpolicy-") for name in names)


def test_bad_fleet_exits_2_without_traceback(run_cli: Run, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("apiVersion: polgen.dev/v1alpha1\nkind: Fleet\nclusters: nope\n")
    out = tmp_path / "out"
    result = run_cli("render", "--fleet", str(fleet), "--out", str(out))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {fleet}:3: clusters:")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_cluster_is_usage_error(run_cli: Run) -> None:
    result = run_cli("render", "--cluster", "nope", "--check")
    assert result.exit_code == 2
    assert "unknown cluster 'nope'" in result.output


def test_unknown_target_is_usage_error(run_cli: Run) -> None:
    assert run_cli("render", "--target", "opa").exit_code == 2


def test_template_error_leaves_out_untouched(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run_cli("render", "--out", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "psa").mkdir()
    (broken / "psa" / "namespace.yaml.j2").write_text(
        "metadata:\n  name: {{ namespace | nosuchfilter }}\n"
    )
    monkeypatch.setattr(polgen.rendering, "templates_dir", lambda: broken)
    polgen.rendering.environment.cache_clear()
    try:
        result = run_cli("render", "--target", "psa", "--out", str(out))
    finally:
        polgen.rendering.environment.cache_clear()
    assert result.exit_code == 2
    assert "templates/psa/namespace.yaml.j2:2: template syntax error" in result.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_list_json_reports_support_per_target(run_cli: Run) -> None:
    result = run_cli("list", "--format", "json")
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.output)["policies"]}
    assert rows["allowed-repos"]["targets"]["psa"]["supported"] is False
    assert rows["allowed-repos"]["targets"]["psa"]["reason"]
    assert rows["disallow-privileged"]["podSecurity"] == {
        "level": "baseline",
        "control": "Privileged Containers",
        "since": None,
    }
    assert rows["allowed-repos"]["parameters"]["repos"]["type"] == "array<string>"


def test_list_text(run_cli: Run) -> None:
    result = run_cli("list")
    assert result.exit_code == 0
    assert "disallow-privileged  [critical, pss: baseline]" in result.output

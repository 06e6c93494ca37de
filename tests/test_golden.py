"""The committed out/ is exactly a fresh render, every document parses, output is reproducible."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from polgen import yamlio
from polgen.output import Selection
from polgen.pipeline import check_out, load_inputs
from polgen.targets.gatekeeper import constraint_kind

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUT = PROJECT_ROOT / "out"

EXPECTED_KINDS = {
    "gatekeeper": {"ConstraintTemplate", "ExpansionTemplate", "Kustomization"},
    "psa": {"Namespace", "Kustomization"},
    "vap": {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Kustomization"},
}
KYVERNO_KINDS = {"ClusterPolicy": "ClusterPolicy", "ValidatingPolicy": "ValidatingPolicy"}


def test_committed_out_is_fresh() -> None:
    inputs = load_inputs()
    staleness = check_out(inputs, Selection(None, None), OUT, inputs.plans)
    assert not staleness.stale, (
        f"out/ is stale (run 'polgen render'): missing={staleness.missing[:5]}"
        f" changed={staleness.changed[:5]} extra={staleness.extra[:5]}"
    )


def _documents(folder: Path) -> list[dict[str, object]]:
    docs = []
    for file in sorted(folder.glob("*.yaml")):
        loaded = list(yaml.safe_load_all(file.read_text()))
        assert len(loaded) == 1, f"{file}: one resource per file"
        assert isinstance(loaded[0], dict) and loaded[0].get("kind"), file
        docs.append(loaded[0])
    return docs


@pytest.mark.parametrize("cluster", ["dev", "prod"])
def test_every_target_has_its_kinds(cluster: str) -> None:
    inputs = load_inputs()
    plan = next(p for p in inputs.plans if p.name == cluster)
    for target in plan.targets:
        kinds = Counter(str(d["kind"]) for d in _documents(OUT / cluster / target))
        if target == "kyverno":
            expected = {KYVERNO_KINDS[plan.kyverno_flavor], "Kustomization"}
        elif target == "gatekeeper":
            expected = EXPECTED_KINDS[target] | {constraint_kind(p.id) for p in plan.policies()}
        else:
            expected = EXPECTED_KINDS[target]
        assert set(kinds) == expected, f"{cluster}/{target}"


def _render(out: Path, seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-m", "polgen", "render", "--out", str(out)],
        check=True,
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    first = _render(tmp_path / "a", "1")
    second = _render(tmp_path / "b", "4242")
    assert first == second
    assert len(first) > 10


def test_output_does_not_depend_on_libyaml() -> None:
    """libyaml writes out/ when present; a machine without it must produce the same bytes."""
    for file in sorted(OUT.rglob("*.yaml")):
        document = yaml.safe_load(file.read_text())
        assert yamlio.dump(document, yamlio.PythonDumper) == file.read_text(), file

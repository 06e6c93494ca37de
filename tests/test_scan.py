"""`polgen scan` end to end: every target's engine on the rendered fleet, the report formats,
user-given policy files, --pss, and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import Result

DATA = Path(__file__).parent / "data" / "scan"
Run = Callable[..., Result]


def _json(run_cli: Run, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run_cli("scan", *args, "--format", "json")
    return result.exit_code, json.loads(result.output)


def test_breakout_is_denied_by_every_target_in_every_cluster(run_cli: Run) -> None:
    code, report = _json(run_cli, str(DATA / "breakout.yaml"))
    assert code == 1
    pairs = {(r["cluster"], r["target"]) for r in report["results"]}
    assert pairs == {
        (c, t) for c in ("dev", "prod") for t in ("gatekeeper", "kyverno", "psa", "vap")
    }
    assert all(not r["allowed"] for r in report["results"])
    for result in report["results"]:
        messages = " ".join(v["message"] for v in result["violations"])
        assert "hostPID" in messages and "privileged" in messages, result["target"]
    assert report["summary"]["denied"] == 8


def test_debug_container_is_denied(run_cli: Run) -> None:
    code, report = _json(run_cli, str(DATA / "debug-review.yaml"), "--cluster", "prod")
    assert code == 1
    by_target = {r["target"]: r for r in report["results"]}
    for target in ("gatekeeper", "kyverno", "psa", "vap"):
        assert not by_target[target]["allowed"], target
        assert any("debugger" in v["message"] for v in by_target[target]["violations"]), target


def test_sandbox_only_warns(run_cli: Run, tmp_path: Path) -> None:
    pod = (DATA / "breakout.yaml").read_text().replace("namespace: prd", "namespace: sbx")
    (tmp_path / "pod.yaml").write_text(pod)
    code, report = _json(run_cli, str(tmp_path / "pod.yaml"), "--cluster", "dev", "--target", "vap")
    [result] = report["results"]
    assert result["allowed"] and code == 0
    assert result["violations"] and {v["action"] for v in result["violations"]} == {"warn"}


def test_allowed_workload_and_unmatched_kinds(run_cli: Run) -> None:
    code, report = _json(run_cli, str(DATA / "list.json"), "--target", "gatekeeper")
    assert code == 0
    assert all(r["allowed"] and not r["violations"] for r in report["results"])


def test_deployment_with_lookalike_image(run_cli: Run) -> None:
    code, report = _json(run_cli, str(DATA / "two-docs.yaml"), "--cluster", "prod")
    deployment = [r for r in report["results"] if r["kind"] == "Deployment"]
    assert code == 1
    denied = {r["target"] for r in deployment if not r["allowed"]}
    assert {"gatekeeper", "kyverno", "vap"} <= denied


def test_pss_level(run_cli: Run) -> None:
    code, report = _json(run_cli, str(DATA / "breakout.yaml"), "--pss", "baseline:v1.30")
    [result] = report["results"]
    assert code == 1 and result["target"] == "pss"
    assert 'PodSecurity "baseline:v1.30"' in result["violations"][0]["message"]


def test_bad_pss_level(run_cli: Run) -> None:
    result = run_cli("scan", str(DATA / "breakout.yaml"), "--pss", "strict")
    assert result.exit_code == 2 and "level 'strict'" in result.output


def test_policy_files_from_out(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("render", "--out", str(out)).exit_code == 0
    files = [str(p) for p in sorted((out / "prod" / "vap").glob("*.yaml"))]
    args = [str(DATA / "breakout.yaml")]
    for file in files:
        args += ["--policies", file]
    code, report = _json(run_cli, *args)
    [result] = report["results"]
    assert code == 1 and result["target"] == "vap" and result["cluster"] is None


def test_unsupported_policy_document(run_cli: Run, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = run_cli("scan", str(DATA / "breakout.yaml"), "--policies", str(other))
    assert result.exit_code == 2
    assert "no engine evaluates v1/ConfigMap" in result.output


def test_bad_manifest_exits_2(run_cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    result = run_cli("scan", str(bad))
    assert result.exit_code == 2 and result.output.startswith(f"error: {bad}:")


@pytest.mark.parametrize("fmt", ["text", "junit", "sarif"])
def test_other_formats(run_cli: Run, fmt: str) -> None:
    result = run_cli("scan", str(DATA / "breakout.yaml"), "--cluster", "prod", "--format", fmt)
    assert result.exit_code == 1
    if fmt == "text":
        assert result.output.splitlines()[0].split() == [
            "STATUS",
            "CLUSTER",
            "TARGET",
            "RESOURCE",
            "FILE",
        ]
        assert "DENIED" in result.output and "1 resources, 4 results" in result.output
    elif fmt == "junit":
        root = ElementTree.fromstring(result.output.split("\n", 1)[1])
        assert {s.get("name") for s in root} == {
            f"prod/{t}" for t in ("gatekeeper", "kyverno", "psa", "vap")
        }
        assert all(s.get("failures") == "1" for s in root)
    else:
        sarif = json.loads(result.output)
        [run] = sarif["runs"]
        assert sarif["version"] == "2.1.0"
        assert {r["level"] for r in run["results"]} >= {"error"}
        rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
        assert all(rule_ids[r["ruleIndex"]] == r["ruleId"] for r in run["results"])

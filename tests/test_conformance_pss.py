"""All upstream k8s.io/pod-security-admission fixtures, judged as upstream's test/run.go does.

For every `testdata/<level>/v1.<minor>` directory: each `pass/*.yaml` must be allowed at
`<level>:v1.<minor>` and each `fail/<prefix><N>.yaml` denied with a message containing the
expectErrorSubstring of its prefix (fixture-expectations.yaml) and never
`unknown forbidden reason`. Like run.go, each fixture is also sent through the PSA engine as a
Pod (enforce denies) and as a Deployment (warn only) in a namespace labelled with that
level:version. One test per directory collects every mismatch so a failure lists them all.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import request_for
from polgen.engines.psa import ENGINE, PodSecurityPolicySet
from polgen.engines.pss import MAX_MINOR, evaluate_pod, format_message
from tests.peer import peer_dir

LEVELS = ("baseline", "restricted")
DIRECTORIES = [(level, f"v1.{minor}") for level in LEVELS for minor in range(MAX_MINOR + 1)]
EXPECTED_TOTAL = 4537  # README.md of the peer data: files at the pinned upstream commit
UNKNOWN = "unknown forbidden reason"


def _root() -> Path:
    return peer_dir("pod-security-admission")


@cache
def _substrings() -> dict[str, str]:
    data = yaml.safe_load((_root() / "fixture-expectations.yaml").read_text(encoding="utf-8"))
    return {prefix: entry["expectErrorSubstring"] for prefix, entry in data["checks"].items()}


def _load(file: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(file.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return loaded


def _as_deployment(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pod["metadata"]["name"], "namespace": "conformance"},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}},
    }


@cache
def _namespace_policies(level: str, version: str) -> PodSecurityPolicySet:
    """run.go's namespace: enforce (and, defaulted from it, warn) at level:version."""
    labels = {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": version,
    }
    return ENGINE.load(
        [
            (
                "namespace.yaml",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "conformance", "labels": labels},
                },
            )
        ]
    )


def _mismatches(level: str, version: str, outcome: str, file: Path) -> list[str]:
    """Why this fixture disagrees with upstream's expectation (empty when it agrees)."""
    pod = _load(file)
    failures = evaluate_pod(level, version, pod)
    message = format_message(level, version, failures)
    policies = _namespace_policies(level, version)
    pod_verdict = policies.review(
        request_for({**pod, "metadata": {**pod["metadata"], "namespace": "conformance"}})
    )
    workload_verdict = policies.review(request_for(_as_deployment(pod)))
    problems = []
    if outcome == "pass":
        if failures:
            problems.append(f"expected allowed, got: {message}")
        if pod_verdict or workload_verdict:
            problems.append(
                f"engine complained: {[v.message for v in pod_verdict + workload_verdict]}"
            )
        return problems
    prefix = re.sub(r"\d+\.yaml$", "", file.name)
    substring = _substrings().get(prefix)
    if substring is None:
        return [f"no expectErrorSubstring for prefix {prefix!r}"]
    if not failures or substring not in message or UNKNOWN in message:
        problems.append(f"expected denial containing {substring!r}, got: {message}")
    if [v.action for v in pod_verdict] != ["deny"] or substring not in pod_verdict[0].message:
        problems.append(f"Pod not denied by enforce: {pod_verdict}")
    if [v.action for v in workload_verdict] != ["warn"] or substring not in workload_verdict[
        0
    ].message:
        problems.append(f"Deployment not warned: {workload_verdict}")
    return problems


@cache
def _judge_directory(level: str, version: str) -> tuple[int, tuple[str, ...]]:
    """(fixtures in the directory, one line per disagreeing fixture)."""
    directory = _root() / "testdata" / level / version
    files = sorted(directory.glob("*/*.yaml"))
    report = []
    for file in files:
        outcome = file.parent.name
        problems = (
            _mismatches(level, version, outcome, file)
            if outcome in ("pass", "fail")
            else [f"unexpected folder {outcome!r}"]
        )
        report += [f"{outcome}/{file.name}: {problem}" for problem in problems]
    return len(files), tuple(report)


@pytest.mark.parametrize(
    ("level", "version"), DIRECTORIES, ids=[f"{level}-{version}" for level, version in DIRECTORIES]
)
def test_fixture_directory(level: str, version: str) -> None:
    directory = _root() / "testdata" / level / version
    assert directory.is_dir(), f"missing {directory}"
    count, mismatches = _judge_directory(level, version)
    assert count > 0, f"no fixtures in {directory}"
    assert not mismatches, f"{len(mismatches)} of {count} disagree:\n" + "\n".join(mismatches)


def test_every_fixture_is_covered_and_agrees() -> None:
    """No directory is left out and the whole set (4537 files) agrees with upstream."""
    present = {(d.parent.name, d.name) for d in (_root() / "testdata").glob("*/*") if d.is_dir()}
    assert present == set(DIRECTORIES)
    judged = [_judge_directory(level, version) for level, version in DIRECTORIES]
    total = sum(count for count, _ in judged)
    disagreeing = sum(len({line.split(":")[0] for line in lines}) for _, lines in judged)
    assert total == EXPECTED_TOTAL
    assert (total - disagreeing, total) == (EXPECTED_TOTAL, EXPECTED_TOTAL)

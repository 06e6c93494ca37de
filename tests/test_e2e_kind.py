"""Every catalog fixture and attack scenario through the real engines: Gatekeeper, Kyverno,
ValidatingAdmissionPolicy and Pod Security in a kind cluster (or a given kubeconfig), judged
against what must happen and compared with polgen's offline engines.

Runs only on request: `nox -s e2e` (`pytest -m kind tests/test_e2e_kind.py`, or POLGEN_E2E=1),
and needs a Docker daemon and kind >= the version pinned in polgen/cluster/versions.yaml; with
`--kubeconfig PATH` (or POLGEN_E2E_KUBECONFIG) it uses that cluster instead, whose Gatekeeper
and Kyverno must be installed. pytest-kind's options --kubeconfig, --keep-cluster, --kind-bin
and --kind-image are honoured; its `kind_cluster` fixture is not used, as it pins kind v0.17
(no node image with Kubernetes >= 1.30) and takes no cluster config (feature gates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from polgen.cluster.kind import Kind, KindError, docker_problem
from polgen.cluster.pins import load_pins
from polgen.cluster.runner import ClusterRunner
from polgen.harness import (
    OfflineRunner,
    Outcome,
    agreement,
    fixture_cases,
    run_cases,
    scenario_cases,
)
from polgen.pipeline import load_inputs
from polgen.scenarios import load_scenarios

pytestmark = pytest.mark.kind

OPT_IN = "the kind e2e runs only on request: nox -s e2e (pytest -m kind), or POLGEN_E2E=1"


@dataclass(frozen=True)
class Results:
    cluster: list[Outcome]
    offline: list[Outcome]
    problems: list[str]


def _requested(config: pytest.Config) -> bool:
    return "kind" in (config.option.markexpr or "") or os.environ.get("POLGEN_E2E") == "1"


def _runner(config: pytest.Config) -> ClusterRunner:
    """A runner on the given kubeconfig, else on kind; skips (saying why) when neither can run."""
    kubeconfig = config.getoption("kubeconfig", default=None) or os.environ.get(
        "POLGEN_E2E_KUBECONFIG"
    )
    if not kubeconfig:
        problem = docker_problem()
        if problem:
            pytest.skip(problem)
    if not _requested(config):
        pytest.skip(OPT_IN)
    if kubeconfig:
        return ClusterRunner("kubeconfig", Path(kubeconfig))
    kind = Kind(config.getoption("kind_bin", default=None))
    try:
        kind.check_version(load_pins().kind.minimumVersion)
    except KindError as exc:
        pytest.skip(str(exc))
    return ClusterRunner(
        "kind",
        keep_cluster=bool(config.getoption("keep_cluster", default=False)),
        node_image=config.getoption("kind_image", default=None),
        kind=kind,
    )


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> Results:
    runner = _runner(request.config)
    inputs = load_inputs()
    catalog = inputs.catalog
    scenarios = load_scenarios(catalog.root / "scenarios", catalog)
    cases = fixture_cases(catalog) + scenario_cases(scenarios)
    cluster = run_cases(runner, catalog, inputs.plans, cases)
    offline = run_cases(OfflineRunner(), catalog, inputs.plans, cases)
    return Results(cluster, offline, runner.problems)


def _describe(outcome: Outcome) -> str:
    return f"{outcome.case.id} in {outcome.cluster}/{outcome.target}: {'; '.join(outcome.problems)}"


def test_the_cluster_answered_every_case(results: Results) -> None:
    unanswered = [_describe(o) for o in results.cluster if o.result is None]
    assert unanswered == [], "\n".join(["cluster problems:", *results.problems])


def test_every_cluster_outcome_is_the_expected_one(results: Results) -> None:
    unexpected = [_describe(o) for o in results.cluster if o.status == "unexpected"]
    assert unexpected == []


def test_the_cluster_agrees_with_the_offline_engines(results: Results) -> None:
    differences = [
        f"{d.case} in {d.cluster}/{d.target}: {d.results[0]} vs {d.results[1]}"
        for d in agreement(results.offline, results.cluster)
    ]
    assert differences == []

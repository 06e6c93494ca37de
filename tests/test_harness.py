"""`polgen test`: the outcome matrix computed by the engines, how it is judged, the runner
protocol, the agreement report, the report formats and the command line.

The matrix below is real: every scenario, and the fixtures of policies that exercise each way a
fixture is judged, go through polgen's rendered output of the example fleet and the offline
engines (Rego, CEL, Kyverno, Pod Security). Every fixture of every policy is run by
`test_cli_passes_on_the_shipped_catalog` for the fast targets (the engines' own tests cover the
fixtures target by target).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from polgen.admission import Verdict, Violation
from polgen.cli_harness import test_command as polgen_test
from polgen.engines.pss import CHECKS
from polgen.harness import (
    PSS_CONTROLS,
    Case,
    Judge,
    Observation,
    OfflineRunner,
    Outcome,
    agreement,
    binding_for,
    fixture_cases,
    pss_checks,
    run_cases,
    scenario_cases,
)
from polgen.harness_report import FORMATS, Report, summary
from polgen.pipeline import load_inputs
from polgen.plan import ClusterPlan
from polgen.scenarios import load_scenarios
from polgen.targets import TARGETS

INPUTS = load_inputs()
CATALOG = INPUTS.catalog
PLANS = INPUTS.plans
SCENARIO_DIR = CATALOG.root / "scenarios"
SCENARIOS = load_scenarios(SCENARIO_DIR, CATALOG)
REPRESENTATIVE = {
    "allowed-repos",  # no Pod Security control: PSA does not judge it
    "disallow-privileged",  # a Pod Security control; kubectl debug and workload fixtures
    "disallow-default-namespace",  # fixtures name their own namespace, which nothing binds
    "disallow-nodeport-services",  # Services
}
CASES = [
    case for case in fixture_cases(CATALOG) if case.fixture and case.fixture[0] in REPRESENTATIVE
] + scenario_cases(SCENARIOS)
NON_PSA = [t for t in TARGETS if t != "psa"]


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge(CATALOG, PLANS)


@pytest.fixture(scope="module")
def matrix() -> list[Outcome]:
    return run_cases(OfflineRunner(), CATALOG, PLANS, CASES)


def _of(outcomes: Sequence[Outcome], case_id: str, target: str | None = None) -> list[Outcome]:
    return [o for o in outcomes if o.case.id == case_id and target in (None, o.target)]


def _narrow(target: str, cluster: str = "dev") -> list[ClusterPlan]:
    return [dataclasses.replace(p, targets=(target,)) for p in PLANS if p.name == cluster]


def test_every_outcome_is_what_must_happen(matrix: list[Outcome]) -> None:
    unexpected = [
        f"{o.case.id} {o.cluster}/{o.target}: {o.result}: {'; '.join(o.problems)}"
        for o in matrix
        if o.status == "unexpected"
    ]
    assert unexpected == []


def test_matrix_covers_every_case_cluster_and_target(matrix: list[Outcome]) -> None:
    assert len(matrix) == len(CASES) * sum(len(plan.targets) for plan in PLANS)
    assert {o.cluster for o in matrix} == {"dev", "prod"}
    assert {o.target for o in matrix} == set(TARGETS)
    assert all(o.result is not None for o in matrix)


@pytest.mark.parametrize("name", [s.scenario.name for s in SCENARIOS])
def test_scenario_outcome_is_judged_and_expected(matrix: list[Outcome], name: str) -> None:
    outcomes = _of(matrix, f"scenario/{name}")
    assert len(outcomes) == 2 * len(TARGETS)
    for o in outcomes:
        assert o.status == "expected", (o.cluster, o.target, o.result, o.problems)
        assert o.expectation is not None and o.result == o.expectation.result
        assert set(o.expectation.flagged_by) <= set(o.policies)


def test_attacks_are_caught_by_the_listed_policies(matrix: list[Outcome]) -> None:
    for scenario_file in SCENARIOS:
        scenario = scenario_file.scenario
        for o in _of(matrix, f"scenario/{scenario.name}"):
            if o.target in NON_PSA and o.result == "denied":
                assert set(scenario.catches) <= set(o.policies), (scenario.name, o.target)


@pytest.mark.parametrize(
    ("case_id", "target", "result", "policy"),
    [
        ("scenario/breakout-untrusted-registry", "gatekeeper", "denied", "allowed-repos"),
        ("scenario/breakout-allowed-registry", "kyverno", "denied", "disallow-privileged"),
        ("scenario/privileged-debug-container", "vap", "denied", "disallow-privileged"),
        ("scenario/privileged-debug-container", "psa", "denied", "disallow-privileged"),
        ("scenario/privileged-deployment", "psa", "warned", "disallow-privileged"),
        ("scenario/host-path-root", "psa", "denied", "disallow-host-path"),
        ("scenario/registry-lookalike-port", "psa", "admitted", None),
        ("scenario/benign-hardened-cronjob", "kyverno", "admitted", None),
    ],
)
def test_known_outcomes(
    matrix: list[Outcome], case_id: str, target: str, result: str, policy: str | None
) -> None:
    for o in _of(matrix, case_id, target):
        assert o.result == result
        assert policy is None or policy in o.policies


def test_disallowed_fixtures_are_denied_by_their_own_policy(matrix: list[Outcome]) -> None:
    checked = 0
    for o in matrix:
        if o.case.fixture is None or o.case.fixture[1] != "disallowed" or o.target == "psa":
            continue
        policy = CATALOG.get(o.case.fixture[0])
        if TARGETS[o.target].support(policy).supported:
            assert (o.result, o.case.fixture[0] in o.policies) == ("denied", True), o.case.id
            checked += 1
    assert checked > 30


def test_allowed_fixtures_are_admitted_outside_psa(matrix: list[Outcome]) -> None:
    allowed = [o for o in matrix if o.case.fixture and o.case.fixture[1] == "allowed"]
    assert allowed
    assert {o.result for o in allowed if o.target != "psa"} == {"admitted"}


def test_unjudged_only_where_nothing_can_be_judged(matrix: list[Outcome]) -> None:
    plans = {plan.name: plan for plan in PLANS}
    unjudged = [o for o in matrix if o.status == "unjudged"]
    assert unjudged
    for o in unjudged:
        assert o.case.fixture is not None, o.case.id
        policy_id, verdict = o.case.fixture
        policy = CATALOG.get(policy_id)
        if o.target == "psa":
            assert verdict == "allowed" or policy.podSecurity is None, o.case.id
        else:
            unbound = binding_for(plans[o.cluster], policy_id, o.case.request.namespace) is None
            assert unbound or not TARGETS[o.target].support(policy).supported, o.case.id


def _with_change(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    text = (SCENARIO_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    assert old in text
    (folder / f"{name}.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_wrong_expectation_is_unexpected(tmp_path: Path) -> None:
    folder = _with_change(tmp_path, "host-pid", "default: denied", "default: admitted")
    cases = scenario_cases(load_scenarios(folder, CATALOG))
    (outcome,) = run_cases(OfflineRunner(), CATALOG, _narrow("gatekeeper"), cases)
    assert outcome.result == "denied"
    assert outcome.status == "unexpected"
    assert outcome.problems[0] == "expected admitted, got denied"


def test_a_listed_policy_that_does_not_deny_is_unexpected(tmp_path: Path) -> None:
    folder = _with_change(
        tmp_path,
        "host-pid",
        "catches: [disallow-host-namespaces]",
        "catches: [disallow-host-namespaces, disallow-privileged]",
    )
    cases = scenario_cases(load_scenarios(folder, CATALOG))
    (outcome,) = run_cases(OfflineRunner(), CATALOG, _narrow("vap"), cases)
    assert outcome.result == "denied"
    assert outcome.problems == ("expected disallow-privileged to deny it",)


class FixedRunner:
    """A runner that reports what it is given (the protocol a cluster runner implements)."""

    name = "fixed"

    def __init__(self, observations: list[Observation]) -> None:
        self.observations = observations

    def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]:
        return self.observations


def test_missing_observations_are_unexpected() -> None:
    outcomes = run_cases(FixedRunner([]), CATALOG, _narrow("psa"), CASES[:3])
    assert [o.result for o in outcomes] == [None, None, None]
    assert {o.status for o in outcomes} == {"unexpected"}


def test_agreement_lists_every_difference(matrix: list[Outcome]) -> None:
    case = next(c for c in CASES if c.id == "scenario/host-ipc")
    plans = _narrow("kyverno")
    offline = run_cases(OfflineRunner(), CATALOG, plans, [case])
    lenient = run_cases(
        FixedRunner([Observation(case.id, "dev", "kyverno", Verdict())]), CATALOG, plans, [case]
    )
    assert lenient[0].problems == (
        "expected denied, got admitted",
        "expected disallow-host-namespaces to deny it",
    )
    (difference,) = agreement(offline, lenient)
    assert (difference.case, difference.cluster, difference.target) == (case.id, "dev", "kyverno")
    assert difference.results == (("offline", "denied"), ("fixed", "admitted"))
    assert agreement(offline, offline) == []


@pytest.mark.parametrize(
    ("target", "violation", "policies"),
    [
        ("gatekeeper", Violation("disallow-privileged-prd", "m", "deny"), ("disallow-privileged",)),
        (
            "kyverno",
            Violation("polgen-allowed-repos-prd", "m", "deny", "image-repository"),
            ("allowed-repos",),
        ),
        ("vap", Violation("polgen-disallow-host-path-prd", "m", "deny"), ("disallow-host-path",)),
        (
            "psa",
            Violation("PodSecurity restricted:latest", "m", "deny", "hostNamespaces, privileged"),
            ("disallow-host-namespaces", "disallow-privileged"),
        ),
        ("psa", Violation("PodSecurity restricted:latest", "m", "deny", None), ()),
        ("gatekeeper", Violation("someone-elses-constraint", "m", "deny"), ()),
    ],
)
def test_attribution(
    judge: Judge, target: str, violation: Violation, policies: tuple[str, ...]
) -> None:
    attributed = set(judge.attribute("dev", target, violation))
    assert set(policies) <= attributed
    if not policies:
        assert attributed == set()


def test_every_catalog_control_names_known_pss_checks() -> None:
    known = {check.id for check in CHECKS}
    for policy in CATALOG.policies:
        if policy.podSecurity is not None:
            assert pss_checks(policy), f"{policy.id}: unknown control {policy.podSecurity.control}"
    assert {i for ids in PSS_CONTROLS.values() for i in ids} == known


def test_pss_checks_include_the_restricted_replacements() -> None:
    assert {"hostPathVolumes", "restrictedVolumes"} <= pss_checks(CATALOG.get("disallow-host-path"))
    assert pss_checks(CATALOG.get("allowed-repos")) == frozenset()


def _small(matrix: list[Outcome]) -> list[Outcome]:
    keep = {"scenario/privileged-deployment", "fixture/allowed-repos/disallowed/pod-nginx"}
    return [o for o in matrix if o.case.id in keep]


def test_text_report(matrix: list[Outcome]) -> None:
    text = FORMATS["text"](Report("offline", _small(matrix)))
    assert "scenario/privileged-deployment  [attack]" in text
    assert "warned    expected   dev,prod" in text
    assert "would violate PodSecurity" in text
    assert text.rstrip().endswith("0 disagreements")


def test_markdown_report(matrix: list[Outcome]) -> None:
    markdown = FORMATS["markdown"](Report("offline", _small(matrix)))
    for heading in ("## Summary", "## Attack scenarios", "## Catalog fixtures", "## Legend"):
        assert heading in markdown
    assert "| `privileged-deployment` | attack | ✅ denied" in markdown


def test_json_report(matrix: list[Outcome]) -> None:
    body: dict[str, Any] = json.loads(FORMATS["json"](Report("offline", matrix)))
    assert body["summary"] == summary(matrix)
    assert body["summary"]["unexpected"] == 0
    first = body["outcomes"][0]
    assert set(first) >= {
        "case",
        "cluster",
        "target",
        "result",
        "status",
        "expected",
        "policies",
        "violations",
    }


def test_junit_report_counts_failures(matrix: list[Outcome]) -> None:
    outcomes = _small(matrix)
    broken = dataclasses.replace(outcomes[0], problems=("expected admitted, got denied",))
    report = Report("offline", [broken, *outcomes[1:]])
    root = ElementTree.fromstring(FORMATS["junit"](report))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == set(TARGETS)
    assert sum(int(s.get("failures") or 0) for s in suites.values()) == 1
    assert report.failed


def invoke(*args: str) -> Any:
    return CliRunner().invoke(polgen_test, list(args), catch_exceptions=False)


def test_representative_policies_have_fixtures() -> None:
    assert set(CATALOG.entries) >= REPRESENTATIVE
    for policy_id in REPRESENTATIVE:
        assert any(c.fixture and c.fixture[0] == policy_id for c in CASES)


def test_cli_passes_on_the_shipped_catalog() -> None:
    result = invoke("--target", "psa")
    assert result.exit_code == 0, result.output
    assert ", 0 unexpected," in result.output
    fixtures = sum(
        len(e.fixtures("allowed")) + len(e.fixtures("disallowed")) for e in CATALOG.entries.values()
    )
    assert f"{fixtures + len(SCENARIOS)} cases" in result.output


def test_cli_exits_1_on_a_wrong_expectation(tmp_path: Path) -> None:
    folder = _with_change(tmp_path, "registry-untrusted", "psa: admitted", "psa: warned")
    result = invoke("--scenarios", str(folder), "--cluster", "dev", "--target", "psa")
    assert result.exit_code == 1, result.output
    assert "! expected warned, got admitted" in result.output


@pytest.mark.parametrize("fmt", ["markdown", "json", "junit"])
def test_cli_formats(fmt: str) -> None:
    result = invoke("--cluster", "prod", "--target", "psa", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert {o["target"] for o in json.loads(result.output)["outcomes"]} == {"psa"}


def test_cli_bad_scenario_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(SCENARIO_DIR / "host-pid.yaml", folder / "renamed.yaml")
    result = CliRunner().invoke(polgen_test, ["--scenarios", str(folder)])
    assert result.exit_code == 2
    assert f"error: {folder / 'renamed.yaml'}:1: name:" in result.output


def test_cli_kubeconfig_needs_its_engine() -> None:
    result = CliRunner().invoke(polgen_test, ["--kubeconfig", "kc.yaml"])
    assert result.exit_code == 2
    assert "need --engine kubeconfig" in result.output


def test_cli_cluster_engine_is_compared_with_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[str] = []

    class ClusterRunner:
        """Agrees with the offline engines except that it admits the first case."""

        def __init__(self, mode: str, kubeconfig: Any, context: Any, progress: Any) -> None:
            self.name = mode
            progress(f"{mode} cluster ready")

        def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]:
            seen = OfflineRunner().run(plans, cases)
            flipped = next(i for i, o in enumerate(seen) if not o.verdict.allowed)
            seen[flipped] = dataclasses.replace(seen[flipped], verdict=Verdict())
            messages.append(seen[flipped].case)
            return seen

    module = types.ModuleType("polgen.cluster.runner")
    module.ClusterRunner = ClusterRunner  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "polgen.cluster.runner", module)
    result = invoke("--engine", "kind", "--cluster", "dev", "--target", "psa", "--format", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["runner"] == "kind"
    assert [d["case"] for d in body["disagreements"]] == messages
    assert body["disagreements"][0]["results"] == {"offline": "denied", "kind": "admitted"}

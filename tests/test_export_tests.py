"""`polgen export-tests`: the written gator and Kyverno CLI suites are internally consistent,
their policy files are exact copies of the rendered output, their assertions are not trivial, and
polgen's own engines, reading the written files as the upstream tools would, agree with every
assertion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from polgen import yamlio
from polgen.admission import AdmissionRequest, request_for
from polgen.cli_harness import export_tests_command
from polgen.engines import ENGINES
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.export_tests import export_tree, rule_name
from polgen.harness import fixture_cases, scenario_cases
from polgen.manifests import load_manifests
from polgen.output import render_target, write_tree
from polgen.pipeline import load_inputs
from polgen.scenarios import load_scenarios
from polgen.targets import TARGETS

INPUTS = load_inputs()
REPRESENTATIVE = {
    "allowed-repos",
    "disallow-privileged",
    "disallow-host-path",
    "disallow-nodeport-services",
}
CASES = [
    c for c in fixture_cases(INPUTS.catalog) if c.fixture and c.fixture[0] in REPRESENTATIVE
] + scenario_cases(load_scenarios(INPUTS.catalog.root / "scenarios", INPUTS.catalog))
"""Every scenario, and the fixtures of a few policies (pods, debug UPDATEs, workloads, Services):
every policy gets a suite, since benign scenarios concern them all."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tests-export"
    write_tree(out, export_tree(INPUTS.plans, CASES))
    return out


def _load(path: Path) -> Any:
    return next(yamlio.load_all(path.read_text(encoding="utf-8")))


def _load_all(path: Path) -> list[Any]:
    return list(yamlio.load_all(path.read_text(encoding="utf-8")))


def _suites(root: Path) -> Iterator[Path]:
    yield from sorted(root.glob("*/gatekeeper/*/suite.yaml"))


def _kyverno_tests(root: Path) -> Iterator[Path]:
    yield from sorted(root.glob("*/kyverno/*/kyverno-test.yaml"))


def test_every_cluster_and_policy_has_suites(exported: Path) -> None:
    for plan in INPUTS.plans:
        for policy in plan.policies():
            for target, file in (("gatekeeper", "suite.yaml"), ("kyverno", "kyverno-test.yaml")):
                if TARGETS[target].support(policy).supported:
                    assert (exported / plan.name / target / policy.id / file).is_file()


def test_suites_reference_existing_files_in_the_upstream_format(exported: Path) -> None:
    for suite_file in _suites(exported):
        suite = _load(suite_file)
        assert (suite["kind"], suite["apiVersion"]) == ("Suite", "test.gatekeeper.sh/v1alpha1")
        assert suite["tests"]
        for test in suite["tests"]:
            for key in ("template", "constraint", "expansion"):
                if key in test:
                    assert (suite_file.parent / test[key]).is_file(), (suite_file, test[key])
            for case in test["cases"]:
                assert len(_load_all(suite_file.parent / case["object"])) == 1
                assert [a["violations"] for a in case["assertions"]] in (["yes"], ["no"])


def test_gator_reads_yes_and_no_as_strings(exported: Path) -> None:
    for suite_file in _suites(exported):
        text = suite_file.read_text(encoding="utf-8")
        assert re.findall(r"violations: (\S+)", text)
        assert set(re.findall(r"violations: (\S+)", text)) <= {"'yes'", "'no'"}


def test_kyverno_tests_name_existing_policies_rules_and_resources(exported: Path) -> None:
    for test_file in _kyverno_tests(exported):
        test = _load(test_file)
        assert (test["apiVersion"], test["kind"]) == ("cli.kyverno.io/v1alpha1", "Test")
        policies = {}
        for name in test["policies"]:
            document = _load(test_file.parent / name)
            policies[document["metadata"]["name"]] = document
        resources = {}
        for name in test["resources"]:
            for document in _load_all(test_file.parent / name):
                resources[document["metadata"]["name"]] = document
        assert len(resources) == sum(
            len(list(_load_all(test_file.parent / n))) for n in test["resources"]
        ), "resource names must be unique"
        covered = set()
        for result in test["results"]:
            policy = policies[result["policy"]]
            if policy["kind"] == "ValidatingPolicy":
                assert result["isValidatingPolicy"] is True and "rule" not in result
            else:
                rules = {rule_name(r["name"], result["kind"]) for r in policy["spec"]["rules"]}
                assert result["rule"] in rules
            assert result["result"] in ("pass", "fail", "skip")
            for resource in result["resources"]:
                assert resources[resource]["kind"] == result["kind"]
                covered.add(resource)
        assert covered == set(resources)


def test_policy_files_are_copies_of_the_rendered_output(exported: Path) -> None:
    for plan in INPUTS.plans:
        for target in ("gatekeeper", "kyverno"):
            rendered = render_target(plan, TARGETS[target])
            copies = list((exported / plan.name / target).glob("*/*.yaml"))
            copies = [
                c
                for c in copies
                if c.name not in ("suite.yaml", "kyverno-test.yaml", "resources.yaml")
            ]
            assert copies
            for copy in copies:
                assert copy.read_text(encoding="utf-8") == rendered[copy.name], copy


def test_assertions_follow_the_fixtures(exported: Path) -> None:
    suite = _load(exported / "dev/gatekeeper/disallow-privileged/suite.yaml")
    verdicts = {
        c["name"]: c["assertions"][0]["violations"] for t in suite["tests"] for c in t["cases"]
    }
    assert verdicts["disallowed-breakout-privileged-container"] == "yes"
    assert verdicts["disallowed-ephemeral-breakout-privileged-debug"] == "yes"
    assert verdicts["allowed-pod-privileged-false"] == "no"
    assert verdicts["scenario-privileged-cronjob"] == "yes"
    assert verdicts["scenario-benign-hardened-deployment"] == "no"
    counts = {v: list(verdicts.values()).count(v) for v in ("yes", "no")}
    assert counts["yes"] >= 10 and counts["no"] >= 5


def _request(path: Path) -> AdmissionRequest:
    document = _load(path)
    if document["kind"] == "AdmissionReview":
        (manifest,) = load_manifests([path])
        return manifest.request
    return request_for(document, "CREATE")


def test_gatekeeper_engine_agrees_with_every_gator_assertion(exported: Path) -> None:
    checked = 0
    for suite_file in _suites(exported):
        for test in _load(suite_file)["tests"]:
            paths = [test["template"], test["constraint"], *filter(None, [test.get("expansion")])]
            policy_set = ENGINES["gatekeeper"].load(
                [(p, _load(suite_file.parent / p)) for p in paths]
            )
            for case in test["cases"]:
                request = _request(suite_file.parent / case["object"])
                found = "yes" if policy_set.review(request, None) else "no"
                assert found == case["assertions"][0]["violations"], (suite_file, case["name"])
                checked += 1
    assert checked > 100


def test_kyverno_engines_agree_with_every_kyverno_test_result(exported: Path) -> None:
    checked = 0
    for test_file in _kyverno_tests(exported):
        test = _load(test_file)
        documents = [(p, _load(test_file.parent / p)) for p in test["policies"]]
        vpol = documents[0][1]["kind"] == "ValidatingPolicy"
        policy_set: Any = ENGINES["kyverno-validating" if vpol else "kyverno"].load(documents)
        resources = {
            d["metadata"]["name"]: request_for(d, "CREATE")
            for n in test["resources"]
            for d in _load_all(test_file.parent / n)
        }
        for result in test["results"]:
            for resource in result["resources"]:
                request = resources[resource]
                if vpol:
                    found = {r.policy: r.status for r in policy_set.results(request, None)}
                    status = found.get(result["policy"])
                else:
                    responses = policy_set.results(KyvernoRequest.from_admission(request, None))
                    status = {(r.policy, r.rule): r.status for r in responses}.get(
                        (result["policy"], result["rule"])
                    )
                assert status == result["result"], (test_file, resource, result)
                checked += 1
    assert checked > 100


SMALL_FLEET = """\
apiVersion: polgen.dev/v1alpha1
kind: Fleet
parameters:
  allowed-repos: {repos: [ubuntu]}
clusters:
  - name: lab
    targets: [gatekeeper, kyverno, psa]
    namespaceGroups:
      - name: prd
        namespaces: [prd]
        policies: [allowed-repos, disallow-privileged]
"""


def test_cli_writes_the_export_atomically_and_deterministically(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(SMALL_FLEET, encoding="utf-8")
    out = tmp_path / "tests-export"
    out.mkdir()
    (out / "stale.yaml").write_text("old", encoding="utf-8")
    args = ["--out", str(out), "--fleet", str(fleet)]
    first = CliRunner().invoke(export_tests_command, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("wrote ") and first.output.rstrip().endswith(str(out))
    assert not (out / "stale.yaml").exists()
    assert sorted(p.name for p in (out / "lab").iterdir()) == ["gatekeeper", "kyverno"]
    assert sorted(p.name for p in (out / "lab/gatekeeper").iterdir()) == [
        "allowed-repos",
        "disallow-privileged",
    ]
    snapshot = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    again = CliRunner().invoke(export_tests_command, args, catch_exceptions=False)
    assert again.exit_code == 0
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == snapshot
    assert (out / "README.md").is_file()


def test_cli_unknown_cluster_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        export_tests_command, ["--out", str(tmp_path / "o"), "--cluster", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown cluster 'nope'" in result.output
    assert not (tmp_path / "o").exists()

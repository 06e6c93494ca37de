"""Offline Gatekeeper engine: match semantics, actions, expansion, the input contract, Rego v1
compilation and the templates Gatekeeper (or rego-cpp) cannot take. Hand-written templates and
tables live in tests/data/gatekeeper_engine/."""

from __future__ import annotations

import copy
import datetime
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import AdmissionRequest, Violation, request_for
from polgen.engines.base import Engine, EngineError
from polgen.engines.gatekeeper import ENGINE, GatekeeperPolicySet
from polgen.engines.gatekeeper_constraint import parse_constraint
from polgen.engines.gatekeeper_expansion import expand, parse_expansion
from polgen.engines.gatekeeper_match import MatchError, matches

DATA = Path(__file__).parent / "data" / "gatekeeper_engine"
Json = dict[str, Any]
Documents = list[tuple[str, Json]]

PRIVILEGED = "templates/privileged.yaml"
REQUIRED_LABEL = "templates/required-label.yaml"
CONSTRAINTS = "constraints.yaml"
EXPANSIONS = "expansion/templates.yaml"


def documents(*names: str) -> Documents:
    """Every YAML document of the given data files, tagged with its file."""
    found: Documents = []
    for name in names:
        text = (DATA / name).read_text(encoding="utf-8")
        found.extend((name, doc) for doc in yaml.safe_load_all(text) if doc)
    return found


def obj(name: str) -> Json:
    return documents(f"objects/{name}")[0][1]


def load(*names: str) -> GatekeeperPolicySet:
    return ENGINE.load(documents(*names))


def table(name: str) -> list[Json]:
    cases: list[Json] = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))["cases"]
    return cases


def found(violations: list[Violation]) -> set[tuple[str, str, str]]:
    return {(v.policy, v.action, v.message) for v in violations}


def test_engine_protocol() -> None:
    engine: Engine = ENGINE
    assert engine.name == "gatekeeper"
    assert all(ENGINE.accepts(doc) for _, doc in documents(PRIVILEGED, CONSTRAINTS, EXPANSIONS))
    assert not ENGINE.accepts(obj("pod.yaml"))
    assert not ENGINE.accepts({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy"})
    with pytest.raises(EngineError, match="not a Gatekeeper document"):
        ENGINE.load([("pod.yaml", obj("pod.yaml"))])


@pytest.mark.parametrize("case", table("match.yaml"), ids=lambda case: case["name"])
def test_match(case: Json) -> None:
    def run() -> bool:
        return matches(case["match"], case["object"], case.get("namespace"),
                       case.get("source", "Original"))

    if case["expected"] == "error":
        with pytest.raises(MatchError):
            run()
    else:
        assert run() is case["expected"]


@pytest.mark.parametrize("case", table("actions.yaml"), ids=lambda case: case["name"])
def test_enforcement_action(case: Json) -> None:
    document = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "TestPrivileged",
                "metadata": {"name": "c"}, "spec": case["spec"]}
    if case["expected"] == "error":
        with pytest.raises(EngineError, match="enforcement"):
            parse_constraint("c.yaml", document)
    else:
        assert list(parse_constraint("c.yaml", document).actions) == case["expected"]


@pytest.mark.parametrize("case", table("rejected/cases.yaml"), ids=lambda case: case["file"])
def test_rejected_documents(case: Json) -> None:
    with pytest.raises(EngineError) as error:
        load(PRIVILEGED, f"rejected/{case['file']}")
    assert case["error"] in str(error.value)
    assert error.value.source == f"rejected/{case['file']}"


def test_review_pod_against_templates_and_constraints() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS)
    violations = policies.review(request_for(obj("pod.yaml")))
    assert found(violations) == {
        # deny; safe.example/tool is exempt by prefix
        ("no-privileged", "deny", "initContainers init is privileged (# data.other)"),
        ("no-privileged", "deny", "containers app is privileged (# data.other)"),
        # the same template with its own parameters: exactly "nginx" is exempt; warn
        ("no-privileged-teams", "warn", "containers app is privileged (# data.other)"),
        ("no-privileged-teams", "warn", "containers tool is privileged (# data.other)"),
        # package rewritten, future import allowed, Rego chosen over CEL; dryrun is audit
        ("needs-owner", "audit", "missing label <owner> on CREATE"),
    }
    assert all(v.rule is None for v in violations)


def test_namespaces_and_exclusions_select_constraints() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS)
    pod = obj("pod.yaml")
    pod["metadata"]["namespace"] = "kube-system"
    assert {v.policy for v in policies.review(request_for(pod))} == {"needs-owner"}
    del pod["metadata"]["namespace"]
    in_team = policies.review(request_for(pod, default_namespace="team-b"))
    assert {v.policy for v in in_team} == {"no-privileged", "no-privileged-teams", "needs-owner"}


def test_parameters_are_data_never_code() -> None:
    hostile = 'x"} } ; violation contains {"msg": "pwned"} if { true } # {{ }}\n` ünï ✓'
    constraint = documents(CONSTRAINTS)[2]
    constraint[1]["spec"]["parameters"]["label"] = hostile
    policies = ENGINE.load([*documents(REQUIRED_LABEL), constraint])
    violations = policies.review(request_for(obj("pod.yaml")))
    assert [v.message for v in violations] == [f"missing label <{hostile}> on CREATE"]


def test_yaml_timestamps_do_not_break_the_review() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS)
    pod = obj("pod.yaml")
    pod["metadata"]["creationTimestamp"] = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    assert len(policies.review(request_for(pod))) == 5


def test_update_reviews_object_and_matches_old_object() -> None:
    constraint = copy.deepcopy(documents(CONSTRAINTS)[2])
    constraint[1]["spec"]["match"]["labelSelector"] = {"matchLabels": {"app": "web"}}
    policies = ENGINE.load([*documents(REQUIRED_LABEL), constraint])
    old = obj("pod.yaml")
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]
    update = replace(request_for(new, operation="UPDATE"), old_object=old)
    assert [v.message for v in policies.review(update)] == ["missing label <owner> on UPDATE"]
    neither = replace(update, old_object=new)
    assert policies.review(neither) == []


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_webhook_sees_only_create_and_update(operation: str) -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS)
    request: AdmissionRequest = replace(request_for(obj("pod.yaml")), operation=operation)  # type: ignore[arg-type]
    assert policies.review(request) == []


def test_deployment_is_judged_by_its_expanded_pod() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS, EXPANSIONS)
    violations = policies.review(request_for(obj("deployment.yaml")))
    implied = "[Implied by expand-pod-controllers] containers app is privileged (# data.other)"
    # The Pod constraints see only the generated Pod, with the expansion's dryrun override;
    # needs-owner (source: Original) sees the Deployment, which has its owner label.
    assert found(violations) == {
        ("no-privileged", "audit", implied),
        ("no-privileged-teams", "audit", implied),
    }


def test_expanded_resources_are_named_after_their_parent() -> None:
    templates = [parse_expansion(source, doc) for source, doc in documents(EXPANSIONS)]
    deployment = expand(templates, obj("deployment.yaml"), "team-a")
    assert [(r.object["kind"], r.object["metadata"]["name"], r.template) for r in deployment] == [
        ("Pod", "web-pod", "expand-pod-controllers"),
    ]
    pod = deployment[0].object
    assert pod["apiVersion"] == "v1"
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "Web"}
    ]
    chain = expand(templates, obj("cronjob.yaml"), "team-a")
    assert [(r.object["kind"], r.object["metadata"]["name"]) for r in chain] == [
        ("Pod", "nightly-job-pod"),
        ("Job", "nightly-job"),
    ]


def test_cronjob_expands_through_its_job() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS, EXPANSIONS)
    violations = policies.review(request_for(obj("cronjob.yaml")))
    implied = "[Implied by expand-pod-controllers] containers backup is privileged (# data.other)"
    assert found(violations) == {
        ("no-privileged", "audit", implied),
        ("no-privileged-teams", "audit", implied),
    }


def test_expansion_without_its_source_field_is_an_error() -> None:
    policies = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS, EXPANSIONS)
    broken = obj("deployment.yaml")
    del broken["spec"]["template"]
    with pytest.raises(EngineError, match=r"could not find source field 'spec\.template'"):
        policies.review(request_for(broken))


def test_namespace_selector_needs_the_namespace_object() -> None:
    constraint = copy.deepcopy(documents(CONSTRAINTS)[0])
    constraint[1]["spec"]["match"]["namespaceSelector"] = {"matchLabels": {"env": "prod"}}
    policies = ENGINE.load([*documents(PRIVILEGED), constraint])
    request = request_for(obj("pod.yaml"))
    with pytest.raises(EngineError, match="Namespace object was not given"):
        policies.review(request)
    prod: Json = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"env": "prod"}}}
    assert len(policies.review(request, prod)) == 2
    prod["metadata"]["labels"] = {"env": "dev"}
    assert policies.review(request, prod) == []


def constraint_of(kind: str) -> tuple[str, Json]:
    return ("c.yaml", {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                       "metadata": {"name": kind.lower()}, "spec": {}})


def test_a_failing_builtin_is_an_error_not_a_pass() -> None:
    policies = ENGINE.load([*documents("templates/builtin-error.yaml"),
                            constraint_of("TestBuiltinError")])
    pod = obj("pod.yaml")
    pod["metadata"]["labels"]["replicas"] = "5"
    assert [v.message for v in policies.review(request_for(pod))] == ["too many replicas"]
    pod["metadata"]["labels"]["replicas"] = "many"
    with pytest.raises(EngineError, match="rego-cpp failed evaluating TestBuiltinError"):
        policies.review(request_for(pod))


def test_a_builtin_rego_cpp_lacks_is_an_error_not_a_pass() -> None:
    policies = ENGINE.load([*documents("templates/external-data.yaml"),
                            constraint_of("TestExternalData")])
    with pytest.raises(EngineError, match="rego-cpp failed evaluating TestExternalData"):
        policies.review(request_for(obj("pod.yaml")))

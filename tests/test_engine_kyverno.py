"""The kyverno engine end to end: the scenarios in data/kyverno_engine/scenarios.yaml.

Each scenario loads hand-written policies, sends one admission request and compares both the
rule responses (`results`) and the violations review() reports (`violations`), through ENGINE
(a default in-cluster install) or, with `engine: cli`, CLI_ENGINE (no admission filters).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import request_for
from polgen.engines.base import Engine
from polgen.engines.kyverno import CLI_ENGINE, ENGINE, KyvernoEngine, KyvernoPolicySet
from polgen.engines.kyverno_autogen import compute_rules
from polgen.engines.kyverno_context import KyvernoRequest

DATA = Path(__file__).parent / "data" / "kyverno_engine"
SCENARIOS: list[dict[str, Any]] = yaml.safe_load((DATA / "scenarios.yaml").read_text())


def load(name: str, engine: KyvernoEngine = ENGINE) -> KyvernoPolicySet:
    path = DATA / "policies" / name
    return engine.load([(str(path), doc) for doc in yaml.safe_load_all(path.read_text()) if doc])


def run(scenario: dict[str, Any]) -> tuple[KyvernoPolicySet, Any, dict[str, Any]]:
    obj, old = scenario.get("object"), scenario.get("old")
    request = request_for(
        obj or old,
        operation=scenario.get("operation", "CREATE"),
        default_namespace=scenario.get("namespace", "apps"),
    )
    changes: dict[str, Any] = {
        "object": obj,
        "old_object": old,
        "sub_resource": scenario.get("subResource", ""),
    }
    if "userInfo" in scenario:
        changes["user_info"] = scenario["userInfo"]
    request = dataclasses.replace(request, **changes)
    namespace = {
        "metadata": {"name": request.namespace, "labels": scenario.get("namespaceLabels", {})}
    }
    engine = CLI_ENGINE if scenario.get("engine") == "cli" else ENGINE
    return load(scenario["policies"], engine), request, namespace


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any]) -> None:
    policies, request, namespace = run(scenario)
    if "results" in scenario:
        found = policies.results(KyvernoRequest.from_admission(request, namespace), namespace)
        assert {f"{r.policy}/{r.rule}": r.status for r in found} == scenario["results"]
    if "violations" in scenario:
        violations = policies.review(request, namespace)
        got = sorted((v.policy, v.rule or "", v.action) for v in violations)
        want = sorted((v["policy"], v["rule"], v["action"]) for v in scenario["violations"])
        assert got == want
        messages = {(v.policy, v.rule, v.action): v.message for v in violations}
        for expected in scenario["violations"]:
            if "message" in expected:
                key = (expected["policy"], expected["rule"], expected["action"])
                assert messages[key] == expected["message"]


def test_engine_satisfies_the_protocol() -> None:
    engine: Engine = ENGINE
    assert engine.name == "kyverno"


def test_policies_load_in_a_stable_order() -> None:
    path = DATA / "policies" / "actions.yaml"
    documents = [(str(path), d) for d in yaml.safe_load_all(path.read_text()) if d]
    names = [p.name for p in ENGINE.load(list(reversed(documents))).policies]
    assert names == sorted(names)


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "CronJob"])
def test_rules_per_kind_are_computed_once(kind: str) -> None:
    policy = load("privileged.yaml").policies[0]
    for other in ("CronJob", "Pod", "Deployment"):
        policy.rules_for(other)
    assert policy.rules_for(kind) is policy.rules_for(kind)
    assert policy.rules_for(kind) == compute_rules(policy.document, kind)

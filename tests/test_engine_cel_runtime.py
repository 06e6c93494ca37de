"""The CEL runtime: the Kubernetes environment and library, variable composition, policy parts."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import request_for
from polgen.engines.base import EngineError
from polgen.engines.cel_runtime import (
    ADMISSION_VARIABLES,
    CelCompileError,
    CelEvaluationError,
    CelPolicyExpressions,
    PreparedActivation,
    admission_activation,
    compile_expression,
    compose_variables,
    to_cel,
)

DATA = Path(__file__).parent / "data" / "cel_engine"
_EXPRESSIONS = yaml.safe_load((DATA / "expressions.yaml").read_text())
ACTIVATION: dict[str, Any] = _EXPRESSIONS["activation"]
CASES: list[dict[str, Any]] = _EXPRESSIONS["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["expression"] for c in CASES])
def test_expression(case: dict[str, Any]) -> None:
    if "compileError" in case:
        with pytest.raises(CelCompileError) as raised:
            compile_expression(case["expression"], list(ACTIVATION))
        assert case["compileError"] in raised.value.reason
        return
    program = compile_expression(case["expression"], list(ACTIVATION))
    if "error" in case:
        with pytest.raises(CelEvaluationError) as failed:
            program.evaluate(ACTIVATION)
        assert case["error"] in failed.value.reason
        return
    result = program.evaluate(ACTIVATION)
    assert result == case["value"]
    assert type(result) is type(case["value"])


def test_compile_error_is_an_engine_error_naming_the_expression() -> None:
    with pytest.raises(EngineError) as raised:
        compile_expression("object.spec +", ["object"])
    assert "object.spec +" in str(raised.value)


def test_programs_are_cached_by_text_and_names() -> None:
    first = compile_expression("object.metadata.name", ["object", "request"])
    assert compile_expression("object.metadata.name", ["request", "object"]) is first
    assert compile_expression("object.metadata.name", ["object"]) is not first


def test_an_undeclared_name_does_not_compile_and_a_missing_one_is_null() -> None:
    with pytest.raises(CelCompileError):
        compile_expression("params.limit", ["object"])
    assert compile_expression("params == null", ["params"]).evaluate({}) is True


def test_to_cel_gives_the_api_servers_json_view() -> None:
    loaded = {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
              "day": datetime.date(2024, 1, 2), 1: (1, 2), "big": 2**70}
    assert to_cel(loaded) == {"when": "2024-01-02T03:04:05Z", "day": "2024-01-02", "1": [1, 2],
                              "big": float(2**70)}


COMPOSITION = [
    ("variables.a && variables.b", {"a": "true", "b": "false"}, "(true\n) && (false\n)"),
    ("'variables.a' + \"variables.a\" + r'variables.a'", {}, None),
    ("x.variables.a", {}, None),
    ("variables.a // variables.nope", {"a": "1"}, "(1\n) // variables.nope"),
    ("variables . a", {"a": "1"}, "(1\n)"),
    ("'''variables.a''' + variables.a", {"a": "1"}, "'''variables.a''' + (1\n)"),
]


@pytest.mark.parametrize(("expression", "definitions", "composed"), COMPOSITION)
def test_compose_variables_rewrites_references_outside_literals(
    expression: str, definitions: dict[str, str], composed: str | None
) -> None:
    assert compose_variables(expression, definitions) == (composed or expression)


def test_compose_variables_rejects_undefined_names() -> None:
    with pytest.raises(CelCompileError, match="undefined variable 'later'"):
        compose_variables("variables.later", {"earlier": "1"})


def _expressions(spec: dict[str, Any]) -> CelPolicyExpressions:
    return CelPolicyExpressions.compile(spec, ADMISSION_VARIABLES)


def _pod_data(labels: dict[str, str]) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": labels},
           "spec": {"containers": []}}
    return admission_activation(request_for(pod), None)


MATCH_CONDITIONS = [
    (["true", "true"], (True, None)),
    (["object.spec.nodeName == 'x'", "false"], (False, None)),
    (["false", "object.spec.nodeName == 'x'"], (False, None)),
    (["true", "object.spec.nodeName == 'x'"], (False, "matchCondition 'c1'")),
    (["'not a bool'"], (False, "must evaluate to bool")),
]


@pytest.mark.parametrize(("conditions", "expected"), MATCH_CONDITIONS)
def test_match_conditions_false_wins_over_errors(
    conditions: list[str], expected: tuple[bool, str | None]
) -> None:
    spec = {"matchConditions": [{"name": f"c{i}", "expression": e}
                                for i, e in enumerate(conditions)]}
    matched, error = _expressions(spec).match(_pod_data({}))
    assert matched is expected[0]
    if expected[1] is None:
        assert error is None
    else:
        assert error is not None and expected[1] in error


def test_variables_are_lazy_and_keep_optional_types() -> None:
    spec = {
        "variables": [
            {"name": "labels", "expression": "object.metadata.?labels"},
            {"name": "broken", "expression": "object.spec.nodeName"},
            {"name": "app", "expression": "variables.labels.?app.orValue('none')"},
        ],
        "validations": [
            {"expression": "variables.app == 'web' || variables.broken == 'x'"},
            {"expression": "variables.broken == 'x'"},
        ],
    }
    first, second = _expressions(spec).validations
    data = _pod_data({"app": "web"})
    assert first.program.evaluate_prepared(data) is True
    with pytest.raises(CelEvaluationError, match="nodeName"):
        second.program.evaluate_prepared(data)


def test_admission_activation_binds_the_kubernetes_variables() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    namespace = {"metadata": {"name": "default"}}
    data = admission_activation(request_for(pod), namespace, params={"limit": 1})
    assert data["object"] == pod and data["oldObject"] is None
    assert data["params"] == {"limit": 1} and data["namespaceObject"] == namespace
    assert data["request"]["operation"] == "CREATE" and data["request"]["subResource"] == ""
    assert "object" not in data["request"]
    cluster_scoped = request_for({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "x"}})
    assert admission_activation(cluster_scoped, namespace)["namespaceObject"] is None


def test_prepared_activation_gives_the_same_results_and_falls_back_for_other_names() -> None:
    data = to_cel({"object": ACTIVATION["object"], "names": ACTIVATION["names"]})
    prepared = PreparedActivation(["object", "names"], data)
    shared = compile_expression("object.spec.replicas + names.size()", ["names", "object"])
    narrower = compile_expression("object.spec.replicas", ["object"])
    assert shared.evaluate_prepared(prepared) == shared.evaluate_prepared(data) == 6
    assert narrower.evaluate_prepared(prepared) == 3
    with pytest.raises(CelEvaluationError):
        compile_expression("object.spec.nope", ["object", "names"]).evaluate_prepared(prepared)

"""The CEL runtime: the Kubernetes environment and library, variable composition, policy parts."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import request_for
from polgen.engines import cel_variables
from polgen.engines.base import EngineError
from polgen.engines.cel_admission import (
    ADMISSION_VARIABLES,
    CelPolicyExpressions,
    admission_activation,
)
from polgen.engines.cel_runtime import (
    CelCompileError,
    CelEvaluationError,
    CelProgram,
    PreparedActivation,
    compile_expression,
    to_cel,
)
from polgen.engines.cel_text import compose_variables

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


VARIABLE_CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "variables.yaml").read_text())


def _privileged_pod_data() -> dict[str, Any]:
    pod = yaml.safe_load((DATA / "resources" / "pod-privileged.yaml").read_text())
    return admission_activation(request_for(pod, default_namespace="default"), None)


@pytest.mark.parametrize("hot", [False, True], ids=["bound", "substituted"])
@pytest.mark.parametrize("case", VARIABLE_CASES, ids=[c["name"] for c in VARIABLE_CASES])
def test_policy_variables_behave_like_the_api_servers_lazy_variables(
    case: dict[str, Any], hot: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variable values bound (the first runs of a program) or their text substituted (a program
    run often) give the same results."""
    if hot:
        monkeypatch.setattr(cel_variables, "_HOT_RUNS", 0)
    spec = {"variables": case["variables"],
            "validations": [{"expression": v["expression"]} for v in case.get("validations", [])]}
    if "compileError" in case:
        with pytest.raises(CelCompileError) as raised:
            _expressions(spec)
        assert case["compileError"] in raised.value.reason
        return
    validations = _expressions(spec).validations
    values = _privileged_pod_data()
    shared = PreparedActivation(ADMISSION_VARIABLES, values)  # one request: variables memoized
    for validation, want in zip(validations, case["validations"], strict=True):
        for data in (shared, values):  # and a plain mapping: evaluated afresh
            if "errorOf" in want:
                with pytest.raises(CelEvaluationError) as own:
                    compile_expression(want["errorOf"], ADMISSION_VARIABLES).evaluate_prepared(data)
                with pytest.raises(CelEvaluationError) as failed:
                    validation.program.evaluate_prepared(data)
                assert failed.value.reason == own.value.reason, want["expression"]
            else:
                assert validation.program.evaluate_prepared(data) == want["value"], want


def _record_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The expressions the runtime evaluates, in order."""
    evaluated: list[str] = []
    for method in ("run", "run_native"):
        original = getattr(CelProgram, method)

        def recording(self: CelProgram, data: Any, original: Any = original) -> Any:
            evaluated.append(self.expression)
            return original(self, data)

        monkeypatch.setattr(CelProgram, method, recording)
    return evaluated


LAZY_SPEC = {
    "variables": [
        {"name": "name", "expression": "object.metadata.name"},
        {"name": "unread", "expression": "object.metadata.uid"},
        {"name": "labelled", "expression": "variables.name + '/' + object.metadata.labels.app"},
    ],
    "validations": [
        {"expression": "variables.labelled.size() > variables.name.size()"},
        {"expression": "variables.name != '' && variables.labelled != ''"},
    ],
}


def test_variables_are_evaluated_once_per_request_in_declaration_order_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = _expressions(LAZY_SPEC).validations
    evaluated = _record_evaluations(monkeypatch)
    data = PreparedActivation(ADMISSION_VARIABLES, _privileged_pod_data())
    assert first.program.evaluate_prepared(data) is True
    assert second.program.evaluate_prepared(data) is True
    name, _, labelled = (v["expression"] for v in LAZY_SPEC["variables"])
    assert evaluated == [name, labelled, first.expression, second.expression]


def test_equal_variables_of_different_policies_are_evaluated_once_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies = [_expressions(LAZY_SPEC), _expressions(LAZY_SPEC)]
    evaluated = _record_evaluations(monkeypatch)
    data = PreparedActivation(ADMISSION_VARIABLES, _privileged_pod_data())
    assert all(v.program.evaluate_prepared(data) for p in policies for v in p.validations)
    assert evaluated.count(LAZY_SPEC["variables"][0]["expression"]) == 1
    assert evaluated.count(LAZY_SPEC["validations"][0]["expression"]) == 2


def test_each_expression_is_compiled_once_whatever_the_policy() -> None:
    first, second = _expressions(LAZY_SPEC), _expressions(LAZY_SPEC)
    assert first.validations[0].program.program is second.validations[0].program.program


def test_a_policy_never_reads_another_policys_variable_of_the_same_name() -> None:
    """Policies evaluated for one request share values of equal definitions, never names."""
    def spec(x: str) -> dict[str, Any]:
        return {"variables": [{"name": "y", "expression": "object.metadata.name"},
                              {"name": "x", "expression": x}],
                "validations": [{"expression": "variables.y != '' && variables.x == 'a'"},
                                {"expression": "variables.y != '' && variables.x.size() == 1"}]}

    other, failing = _expressions(spec("'a'")), _expressions(spec("object.spec.nodeName"))
    data = PreparedActivation(ADMISSION_VARIABLES, _privileged_pod_data())
    assert [v.program.evaluate_prepared(data) for v in other.validations] == [True, True]
    for validation in failing.validations:
        with pytest.raises(CelEvaluationError, match="nodeName"):
            validation.program.evaluate_prepared(data)


def test_a_program_run_often_alone_gets_its_variables_substituted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A policy evaluated first for a request shares no values: once it has run often its
    programs are compiled with the variables' text substituted. Later policies keep binding."""
    monkeypatch.setattr(cel_variables, "_HOT_RUNS", 1)
    alone, shared = _expressions(LAZY_SPEC), _expressions(LAZY_SPEC)
    evaluated = _record_evaluations(monkeypatch)
    for _ in range(3):
        data = PreparedActivation(ADMISSION_VARIABLES, _privileged_pod_data())
        for policy in (alone, shared):
            assert all(v.program.evaluate_prepared(data) for v in policy.validations)
    name, _, labelled = (v["expression"] for v in LAZY_SPEC["variables"])
    first, second = (v["expression"] for v in LAZY_SPEC["validations"])
    assert evaluated[:6] == [name, labelled, first, second, first, second]
    substituted = evaluated[6:8]
    assert all("variables." not in text and "object.metadata.name" in text for text in substituted)
    assert evaluated[6:] == [*substituted, name, labelled, first, second] * 2

"""Offline Gatekeeper engine: match semantics, actions, expansion, the input contract, Rego v1
compilation, Rego v0 in v1's form, K8sNativeValidation (CEL) and the engine choice, and the
templates Gatekeeper (or rego-cpp) cannot take. Hand-written templates and tables live in
tests/data/gatekeeper_engine/."""

from __future__ import annotations

import copy
import datetime
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.admission import AdmissionRequest, Violation, request_for
from polgen.engines import ENGINES
from polgen.engines.base import Engine, EngineError
from polgen.engines.gatekeeper import ENGINE, GatekeeperEngine, GatekeeperPolicySet
from polgen.engines.gatekeeper_constraint import parse_constraint
from polgen.engines.gatekeeper_expansion import expand, parse_expansion
from polgen.engines.gatekeeper_match import MatchError, matches

DATA = Path(__file__).parent / "data" / "gatekeeper_engine"
Json = dict[str, Any]
Documents = list[tuple[str, Json]]

PRIVILEGED = "templates/privileged.yaml"
REQUIRED_LABEL = "templates/required-label.yaml"
CONSTRAINTS = "constraints.yaml"
ENGINE_CONSTRAINTS = "constraints-engines.yaml"
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


def load_template(name: str, *extra: str, native_validation: bool = True) -> GatekeeperPolicySet:
    """templates/<name> with its Constraints from constraints-engines.yaml (and `extra` files)."""
    templates = documents(f"templates/{name}")
    kinds = {doc["spec"]["crd"]["spec"]["names"]["kind"] for _, doc in templates}
    constraints = [entry for entry in documents(ENGINE_CONSTRAINTS) if entry[1]["kind"] in kinds]
    engine = GatekeeperEngine(native_validation=native_validation)
    return engine.load([*templates, *constraints, *documents(*extra)])


def test_engine_protocol() -> None:
    engine: Engine = ENGINE
    assert engine.name == "gatekeeper"
    assert ENGINES["gatekeeper"] is ENGINE
    assert ENGINE.native_validation is True  # as --enable-k8s-native-validation defaults to
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
    engine = GatekeeperEngine(native_validation=case.get("nativeValidation", True))
    with pytest.raises(EngineError) as error:
        engine.load(documents(PRIVILEGED, f"rejected/{case['file']}"))
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
        # package rewritten, future import allowed; dryrun is audit
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


def test_each_constraint_sees_gatekeepers_input_and_only_its_parameters() -> None:
    policies = load("templates/input-keys.yaml")
    violations = policies.review(request_for(obj("pod.yaml"), default_namespace="team-a"))
    assert sorted((v.policy, v.message) for v in violations) == [
        ("first", "parameters,review,n=1"),
        ("second", "parameters,review,n=2"),
    ]


def test_equal_templates_of_several_clusters_compile_once() -> None:
    first, second = load(PRIVILEGED, REQUIRED_LABEL, CONSTRAINTS), load(PRIVILEGED)
    kind = next(iter(second.templates))
    assert first.templates[kind] == second.templates[kind]


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


# ---- K8sNativeValidation (CEL) and the choice of engine -----------------------------------------

CEL_PRIVILEGED = "cel-privileged.yaml"


def test_cel_only_template_reads_gatekeepers_environment() -> None:
    # variables.params (exemptImages), params (the Constraint's name), variables.anyObject,
    # request.operation; the Constraint's warn action.
    policies = load_template(CEL_PRIVILEGED)
    assert found(policies.review(request_for(obj("pod.yaml")))) == {
        ("cel-no-privileged", "warn", "[cel-no-privileged] privileged on CREATE: init, app"),
    }
    update = replace(request_for(obj("pod.yaml"), operation="UPDATE"), old_object=obj("pod.yaml"))
    assert [v.message for v in policies.review(update)] == [
        "[cel-no-privileged] privileged on UPDATE: init, app"]


def test_cel_match_condition_skips_the_object() -> None:
    pod = obj("pod.yaml")
    pod["metadata"]["labels"]["policy/skip"] = "true"
    assert load_template(CEL_PRIVILEGED).review(request_for(pod)) == []


def test_cel_sees_the_namespace_object() -> None:
    policies = load_template(CEL_PRIVILEGED)
    frozen: Json = {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "team-a", "labels": {"frozen": "true"}}}
    messages = [v.message for v in policies.review(request_for(obj("pod.yaml")), frozen)]
    assert messages == ["[cel-no-privileged] privileged on CREATE: init, app",
                        "the namespace is frozen"]


def test_cel_judges_the_pods_workloads_expand_to() -> None:
    policies = load_template(CEL_PRIVILEGED, EXPANSIONS)
    # An expanded Pod is reviewed without admission data: request.operation is "".
    assert found(policies.review(request_for(obj("deployment.yaml")))) == {
        ("cel-no-privileged", "audit",
         "[Implied by expand-pod-controllers] [cel-no-privileged] privileged on : app"),
    }


@pytest.mark.parametrize(("native_validation", "message"), [
    (True, "CEL: missing label owner"),
    (False, "Rego: missing label owner"),
])
def test_native_validation_chooses_the_engine(native_validation: bool, message: str) -> None:
    policies = load_template("both-engines.yaml", native_validation=native_validation)
    assert [v.message for v in policies.review(request_for(obj("pod.yaml")))] == [message]


def test_cel_parameters_are_data_never_code() -> None:
    hostile = 'x" + "y\\n\' ; true || "{{ }}` ü ✓'
    templates = documents("templates/both-engines.yaml")
    [constraint] = [entry for entry in documents(ENGINE_CONSTRAINTS)
                    if entry[1]["kind"] == "TestBothEngines"]
    constraint[1]["spec"]["parameters"]["label"] = hostile
    policies = ENGINE.load([*templates, constraint])
    assert [v.message for v in policies.review(request_for(obj("pod.yaml")))] == [
        f"CEL: missing label {hostile}"]


def test_cel_errors_are_violations_under_failure_policy_fail() -> None:
    policies = load_template("cel-errors.yaml")
    messages = sorted((v.policy, v.message) for v in policies.review(request_for(obj("pod.yaml"))))
    assert messages[0][0] == "replicas"
    assert messages[0][1].startswith("expression 'object.spec.replicas < 3' resulted in error: ")
    # the failing messageExpression falls back to the message; Ignore reports nothing
    assert messages[1:] == [("replicas", "the message, as the messageExpression failed")]
    pod = obj("pod.yaml")
    pod["spec"]["replicas"] = 5
    assert sorted((v.policy, v.message) for v in policies.review(request_for(pod))) == [
        ("replicas", "the message, as the messageExpression failed"),
        ("replicas", "too many replicas"),
        ("replicas-ignored", "too many replicas"),
    ]


def test_cel_engine_ignores_rego_it_does_not_run() -> None:
    # The same template is refused with native validation off (rejected/cases.yaml).
    policies = load_template("cel-with-unconvertible-rego.yaml")
    assert policies.review(request_for(obj("pod.yaml"))) == []


# ---- Rego v0 written in v1's form ---------------------------------------------------------------

@pytest.mark.parametrize(("template", "messages"), [
    # legacy rego field with a library in targets[].libs; safe.example/ is exempt, calm is not
    # privileged, the init container is not looked at
    ("legacy-v0.yaml", ["v0: app is privileged"]),
    # the legacy field wins over the code[] Rego entry
    ("legacy-precedence.yaml", ["from the legacy rego field"]),
    # code[] Rego without version, importing every future keyword at once
    ("code-v0.yaml", ["code v0: missing owner"]),
])
@pytest.mark.parametrize("native_validation", [True, False])
def test_rego_v0_in_v1_form_is_evaluated(
    template: str, messages: list[str], native_validation: bool
) -> None:
    policies = load_template(template, native_validation=native_validation)
    assert [v.message for v in policies.review(request_for(obj("pod.yaml")))] == messages


def test_object_strings_reach_rego_verbatim() -> None:
    # Quotes, backslashes and non-ASCII in the reviewed object must compare equal to the same
    # string in the Constraint's parameters (regopy's dict input used to mangle them).
    key = 'we"ird\\key ü'
    constraint = documents(CONSTRAINTS)[2]
    constraint[1]["spec"]["parameters"]["label"] = key
    policies = ENGINE.load([*documents(REQUIRED_LABEL), constraint])
    pod = obj("pod.yaml")
    pod["metadata"]["labels"][key] = "yes"
    assert policies.review(request_for(pod)) == []
    del pod["metadata"]["labels"][key]
    assert [v.message for v in policies.review(request_for(pod))] == [
        f"missing label <{key}> on CREATE"]

"""The kyverno target (ClusterPolicy flavour): the documents it renders, and proof that its rules
give the oracle's verdicts and first messages on every catalog fixture and on the scenarios in
data/kyverno_target/scenarios.yaml, for Pods, pod controllers (autogen), Services and
`kubectl debug`.

Two evaluators run the rendered ClusterPolicies:

- the project's offline Kyverno engine (`polgen.engines.kyverno`), which reports a failed foreach
  element as "validation failure: <message>" once per foreach level (stripped here);
- a small TEST-ONLY stand-in (`KyvernoRules` below) that evaluates exactly the rule shapes this
  target emits with the `jmespath` package, following /work/shared/reference/kyverno.md:
  `{{ }}` substitution and `\\{{` escapes, the fork's `Unknown key` errors (swallowed only where
  the reference says so), Go's type-strict `contains`, `regex_match` with RE2's `$` (end of
  text), `items` in key order, and autogen's textual rewrite for controllers. It checks what the
  engine models more loosely (Python's `contains` treats `1` as `true`, Python's `$` matches
  before a final newline) and fails on any construct it does not model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor

from polgen.admission import AdmissionRequest, debug_request, request_for
from polgen.catalog import Catalog, Policy, load_catalog
from polgen.checks import CHECK_KINDS
from polgen.errors import PolgenError
from polgen.fleet import Action, load_fleet
from polgen.imageref import is_allowed
from polgen.pipeline import load_inputs
from polgen.plan import Binding, ClusterPlan
from polgen.resources import templates_dir
from polgen.semantics import evaluate_policy, is_exempt
from polgen.targets.kyverno import (
    MAX_RULE_NAME,
    TARGET,
    exemption_pattern,
    prefix_pattern,
    repository_pattern,
    rule_names,
)

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalog"
CATALOG: Catalog = load_catalog(CATALOG_DIR)
DATA = Path(__file__).parent / "data" / "kyverno_target"
NAMESPACE = "prd"
CONTROLLERS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job",
               "ReplicationController"}
AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"


# ---- a test-only Kyverno stand-in for the rule shapes the target emits ------------------------

class UnknownKey(Exception):
    """Kyverno's JMESPath fork fails on a missing map key where standard JMESPath returns null."""


class Unsupported(Exception):
    """A construct this stand-in does not model: the rule under test must not use it."""


def go_regex(pattern: str) -> re.Pattern[str]:
    """A Go RE2 pattern as Python `re`: RE2's `$` (no `m` flag) is end of text, Python's `\\Z`."""
    out, index = [], 0
    while index < len(pattern):
        if pattern[index] == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        out.append(r"\Z" if pattern[index] == "$" else pattern[index])
        index += 1
    return re.compile("".join(out))


class KyvernoFunctions(jp_functions.Functions):  # type: ignore[misc]
    """Kyverno's `regex_match`, `split` and `items` (keys sorted, as Kyverno's jpItems does)
    stand-ins, and `contains` with Go's (type-strict) equality."""

    @jp_functions.signature({"types": ["string"]}, {"types": ["string", "number"]})  # type: ignore[untyped-decorator]
    def _func_regex_match(self, pattern: str, value: Any) -> bool:
        return go_regex(pattern).search(value if isinstance(value, str) else str(value)) is not None

    @jp_functions.signature({"types": ["string"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_split(self, text: str, separator: str) -> list[str]:
        return text.split(separator)

    @jp_functions.signature({"types": ["object"]}, {"types": ["string"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_items(self, data: dict[str, Any], key: str, value: str) -> list[dict[str, Any]]:
        return [{key: k, value: data[k]} for k in sorted(data)]

    @jp_functions.signature({"types": ["array", "string"]}, {"types": []})  # type: ignore[untyped-decorator]
    def _func_contains(self, subject: Any, search: Any) -> bool:
        if isinstance(subject, str):
            return isinstance(search, str) and search in subject
        return any(type(item) is type(search) and item == search for item in subject)


class ForkInterpreter(jp_visitor.TreeInterpreter):  # type: ignore[misc]
    """`Unknown key` on a missing map key; swallowed (-> null) inside function arguments,
    comparators, the left of `||`, multiselects, projection bodies, filters and flatten."""

    def _soft(self, node: dict[str, Any], value: Any) -> Any:
        try:
            return self.visit(node, value)
        except UnknownKey:
            return None

    def visit_field(self, node: dict[str, Any], value: Any) -> Any:
        if isinstance(value, dict) and node["value"] not in value:
            raise UnknownKey(node["value"])
        return super().visit_field(node, value)

    def visit_function_expression(self, node: dict[str, Any], value: Any) -> Any:
        args = [self._soft(child, value) for child in node["children"]]
        return self._functions.call_function(node["value"], args)

    def visit_comparator(self, node: dict[str, Any], value: Any) -> Any:
        left, right = (self._soft(child, value) for child in node["children"])
        if node["value"] not in ("eq", "ne") and not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)
        ):
            return None  # go-jmespath orders numbers only
        literal = {"type": "literal"}
        return super().visit_comparator(
            {**node, "children": [{**literal, "value": left}, {**literal, "value": right}]}, value
        )

    def visit_or_expression(self, node: dict[str, Any], value: Any) -> Any:
        matched = self._soft(node["children"][0], value)
        return self.visit(node["children"][1], value) if self._is_false(matched) else matched

    def visit_multi_select_list(self, node: dict[str, Any], value: Any) -> Any:
        return None if value is None else [self._soft(c, value) for c in node["children"]]

    def visit_multi_select_dict(self, node: dict[str, Any], value: Any) -> Any:
        if value is None:
            return None
        return {c["value"]: self._soft(c["children"][0], value) for c in node["children"]}

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        base = self._soft(node["children"][0], value)
        literal = {"type": "literal", "value": base}
        return super().visit_flatten({**node, "children": [literal]}, value)

    def visit_projection(self, node: dict[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        collected = (self._soft(node["children"][1], element) for element in base)
        return [item for item in collected if item is not None]

    def visit_filter_projection(self, node: dict[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        kept = [e for e in base if self._is_true(self._soft(node["children"][2], e))]
        collected = (self._soft(node["children"][1], element) for element in kept)
        return [item for item in collected if item is not None]


@cache
def _parsed(expression: str) -> dict[str, Any]:
    return jmespath.compile(expression).parsed  # type: ignore[no-any-return]


def query(expression: str, data: dict[str, Any]) -> Any:
    options = jmespath.Options(custom_functions=KyvernoFunctions())
    return ForkInterpreter(options).visit(_parsed(expression), data)


VARIABLE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
ESCAPED_VARIABLE = re.compile(r"\\\{\{(?:\{[^{}]*\}|[^{}])*\}\}")
REFERENCE = re.compile(r"(^|[^\\])\$\(")


def substitute(value: Any, data: dict[str, Any]) -> Any:
    """Kyverno's variable substitution of every string leaf; an unresolvable variable raises."""
    if isinstance(value, dict):
        return {key: substitute(item, data) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, data) for item in value]
    if not isinstance(value, str):
        return value
    if REFERENCE.search(value):
        raise Unsupported(f"$( ) reference in {value!r}")
    value = value.replace("\\$(", "$(")  # references are resolved (and unescaped) first
    while match := VARIABLE.search(value):
        variable = match.group(2)
        result = query(variable[2:-2].strip(), data)
        if result is None:
            raise UnknownKey(f"variable {variable} resolved to null")
        if value == variable:
            return result
        text = result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))
        value = value[: match.start(2)] + text + value[match.end(2) :]
    return ESCAPED_VARIABLE.sub(lambda m: m.group(0)[1:], value)


def wildcard(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))).replace(r"\?", "."), text,
                        re.DOTALL) is not None


def equals(key: Any, value: Any) -> bool:
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if isinstance(key, str) and isinstance(value, str):
        return wildcard(value, key)
    raise Unsupported(f"Equals on {key!r} and {value!r}")


def not_equals(key: Any, value: Any) -> bool:
    return not equals(key, value)


OPERATORS = {"Equals": equals, "NotEquals": not_equals}


def conditions(block: dict[str, Any], data: dict[str, Any]) -> tuple[bool, list[str]]:
    """An any/all block: (result, messages of the conditions that decided it when true)."""
    def check(condition: dict[str, Any]) -> bool:
        key, value = substitute(condition["key"], data), substitute(condition["value"], data)
        return bool(OPERATORS[condition["operator"]](key, value))

    true_messages: list[str] = []
    if "any" in block:
        hit = next((c for c in block["any"] if check(c)), None)
        if hit is None:
            return False, []
        true_messages.append(hit.get("message", ""))
    for condition in block.get("all", []):
        if not check(condition):
            return False, []
        true_messages.append(condition.get("message", ""))
    return True, [m for m in true_messages if m]


@dataclasses.dataclass(frozen=True)
class RuleResult:
    rule: str
    status: str  # pass | fail | skip
    message: str = ""
    action: str = ""


def _wildcards(patterns: list[str] | None, text: str) -> bool:
    return patterns is None or any(wildcard(p, text) for p in patterns)


def _resources_match(resources: dict[str, Any], request: AdmissionRequest) -> bool:
    kinds = resources.get("kinds")
    if kinds is not None:
        if request.sub_resource and not (request.kind == "Pod"
                                         and request.sub_resource == "ephemeralcontainers"):
            return False
        if request.kind not in kinds:
            return False
    operations = resources.get("operations")
    return (operations is None or request.operation in operations) and _wildcards(
        resources.get("namespaces"), request.namespace
    )


class KyvernoRules:
    """One ClusterPolicy as Kyverno would run it on one admission request (or background scan)."""

    CRONJOB = ("request.object.spec.jobTemplate.spec.template.spec",
               "request.object.spec.jobTemplate.spec.template.metadata")
    CONTROLLER = ("request.object.spec.template.spec", "request.object.spec.template.metadata")

    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy

    def rules_for(self, kind: str) -> list[dict[str, Any]]:
        """Autogen: Pod rules copied for a controller with `request.object.spec|metadata`
        rewritten over the rule's whole JSON text (kyverno pkg/autogen/v1/rule.go)."""
        rules: list[dict[str, Any]] = self.policy["spec"]["rules"]
        if kind == "CronJob":
            prefix, (spec, metadata) = "autogen-cronjob-", self.CRONJOB
        elif kind in CONTROLLERS:
            prefix, (spec, metadata) = "autogen-", self.CONTROLLER
        else:
            return rules
        generated = []
        for rule in (r for r in rules if r["match"]["any"][0]["resources"]["kinds"] == ["Pod"]):
            text = json.dumps(rule).replace("request.object.spec", spec)
            text = text.replace("request.object.metadata", metadata)
            new = json.loads(text)
            new["name"] = (prefix + rule["name"])[:63]
            for block in new["match"]["any"]:
                block["resources"]["kinds"] = [kind]
            generated.append(new)
        return rules + generated

    def evaluate(self, request: AdmissionRequest, review: dict[str, Any] | None = None,
                 ) -> list[RuleResult]:
        data = {"request": review if review is not None else request.to_review()}
        results = []
        for rule in self.rules_for(request.kind):
            if not self._matches(rule, request):
                continue
            results.append(self._rule(rule, dict(data)))
        return results

    def denials(self, request: AdmissionRequest) -> dict[str, str]:
        """Failed rule -> message, for the rules whose failure blocks the request (Enforce)."""
        return {r.rule: r.message for r in self.evaluate(request)
                if r.status == "fail" and r.action == "Enforce"}

    @staticmethod
    def _matches(rule: dict[str, Any], request: AdmissionRequest) -> bool:
        if not any(_resources_match(f["resources"], request) for f in rule["match"]["any"]):
            return False
        excluded = rule.get("exclude", {}).get("any", [])
        return not any(_resources_match(f["resources"], request) for f in excluded)

    def _rule(self, rule: dict[str, Any], data: dict[str, Any]) -> RuleResult:
        validate = rule["validate"]
        action = validate["failureAction"]
        for entry in rule.get("context", []):
            data[entry["name"]] = substitute(entry["variable"]["value"], data)
        if "preconditions" in rule and not conditions(rule["preconditions"], data)[0]:
            return RuleResult(rule["name"], "skip", action=action)
        if "deny" in validate:
            status, message = self._deny(validate["deny"], validate, data)
        else:
            status, message = self._foreach(validate["foreach"], validate, data, 0)
        return RuleResult(rule["name"], status, message, action)

    @staticmethod
    def _deny(deny: dict[str, Any], validate: dict[str, Any], data: dict[str, Any],
              ) -> tuple[str, str]:
        denied, messages = conditions(deny["conditions"], data)
        if not denied:
            return "pass", ""
        text = "; ".join(m for m in [validate.get("message", ""), *messages] if m)
        return "fail", str(substitute(text, data))

    def _foreach(self, entries: list[dict[str, Any]], validate: dict[str, Any],
                 data: dict[str, Any], nesting: int) -> tuple[str, str]:
        applied = 0
        for entry in entries:
            try:
                elements = query(entry["list"], data)
            except UnknownKey:
                continue  # Kyverno skips a foreach entry whose list does not resolve
            for index, element in enumerate(elements if isinstance(elements, list) else [elements]):
                if element is None:
                    continue
                scoped = {**data, "element": element, f"element{nesting}": element,
                          "elementIndex": index, f"elementIndex{nesting}": index}
                if "preconditions" in entry and not conditions(entry["preconditions"], scoped)[0]:
                    continue
                if "deny" in entry:
                    status, message = self._deny(entry["deny"], validate, scoped)
                else:
                    status, message = self._foreach(entry["foreach"], validate, scoped, nesting + 1)
                if status == "fail":
                    return status, message
                applied += status == "pass"
        return ("pass" if applied else "skip"), ""


# ---- bindings and renderings ------------------------------------------------------------------

@cache
def example_plan() -> ClusterPlan:
    return next(plan for plan in load_inputs().plans if plan.name == "dev")


def with_bindings(**changes: Any) -> ClusterPlan:
    """The example plan with every binding changed (action, namespaces, exemptions, ...)."""
    plan = example_plan()
    bindings = tuple(dataclasses.replace(b, **changes) for b in plan.bindings)
    return dataclasses.replace(plan, kyverno_flavor="ClusterPolicy", bindings=bindings)


def bound(policy: Policy, **parameters: Any) -> Binding:
    """The policy with its defaults (and `parameters`), enforced in every namespace."""
    return Binding(cluster="test", group="all", policy=policy,
                   parameters={**policy.default_parameters(), **parameters}, action="enforce",
                   namespaces=(), excluded_namespaces=(), exempt_images=())


def binding_for(policy_id: str, **parameters: Any) -> Binding:
    return bound(CATALOG.get(policy_id), **parameters)


def cluster_policy(binding: Binding) -> dict[str, Any]:
    plan = dataclasses.replace(example_plan(), kyverno_flavor="ClusterPolicy", bindings=(binding,))
    (document,) = TARGET.render(plan)
    return document.body


@cache
def catalog_bindings() -> tuple[Binding, ...]:
    """Every catalog policy with the example fleet's parameters (the fixtures' convention)."""
    fleet = load_fleet(CATALOG_DIR / "fleet.yaml")[0].parameters
    return tuple(bound(policy, **fleet.get(policy.id, {})) for policy in CATALOG.policies)


@cache
def catalog_policies() -> dict[str, dict[str, Any]]:
    return {b.policy.id: cluster_policy(b) for b in catalog_bindings()}


@cache
def example_policies() -> dict[str, dict[str, Any]]:
    return {doc.file: doc.body for doc in TARGET.render(example_plan())}


def all_rules() -> Iterator[tuple[str, dict[str, Any]]]:
    for file, body in example_policies().items():
        for rule in body["spec"]["rules"]:
            yield file, rule


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def in_namespace(request: AdmissionRequest, namespace: str = NAMESPACE) -> AdmissionRequest:
    return dataclasses.replace(request, namespace=namespace)


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": list(containers), **spec}}


def container(name: str = "app", image: str = "ubuntu:24.04", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def privileged(name: str = "app", image: str = "ubuntu:24.04") -> dict[str, Any]:
    return container(name, image, securityContext={"privileged": True})


def controller(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """A Pod's spec and metadata as the pod template of a Deployment or a CronJob."""
    metadata = {k: v for k, v in obj["metadata"].items() if k in ("labels", "annotations")}
    template = {"metadata": metadata, "spec": obj["spec"]}
    outer = {"name": "c", **({"namespace": obj["metadata"]["namespace"]}
                             if "namespace" in obj["metadata"] else {})}
    if kind == "CronJob":
        spec: dict[str, Any] = {"schedule": "* * * * *",
                                "jobTemplate": {"spec": {"template": template}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": outer, "spec": spec}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": outer,
            "spec": {"selector": {}, "template": template}}


def plain_update(obj: dict[str, Any], sub_resource: str = "") -> AdmissionRequest:
    request = request_for(obj, "UPDATE", NAMESPACE)
    return dataclasses.replace(request, old_object=obj, sub_resource=sub_resource)


# ---- expected (oracle) and actual denials -----------------------------------------------------

def autogen_name(rule: str, kind: str) -> str:
    prefix = "autogen-cronjob-" if kind == "CronJob" else "autogen-" if kind in CONTROLLERS else ""
    return (prefix + rule)[:63]


def expected_denials(binding: Binding, request: AdmissionRequest) -> dict[str, str]:
    """Rule name -> the oracle's first message of that rule's check (Kyverno reports the first
    offender of a foreach)."""
    policy = binding.policy
    expected = {}
    for name, check in zip(rule_names(policy.checks), policy.checks, strict=True):
        single = policy.model_copy(update={"checks": [check]})
        messages = evaluate_policy(single, binding.parameters, request, binding.exempt_images)
        if messages:
            expected[autogen_name(name, request.kind)] = messages[0]
    return expected


def harness_denials(binding: Binding, request: AdmissionRequest) -> dict[str, str]:
    return KyvernoRules(cluster_policy(binding)).denials(request)


FOREACH_PREFIX = "validation failure: "


def engine_denials(body: dict[str, Any], request: AdmissionRequest) -> dict[str, str]:
    """Denying violations of the offline engine, without its per-foreach-level prefixes."""
    engine = pytest.importorskip("polgen.engines.kyverno").CLI_ENGINE
    return engine_review(engine.load([("rendered", body)]), request)


@cache
def catalog_engine_policies() -> dict[str, Any]:
    engine = pytest.importorskip("polgen.engines.kyverno").CLI_ENGINE
    return {name: engine.load([(name, body)]) for name, body in catalog_policies().items()}


def engine_review(policies: Any, request: AdmissionRequest) -> dict[str, str]:
    denials = {}
    for violation in policies.review(request):
        if violation.action == "deny":
            message = violation.message
            while message.startswith(FOREACH_PREFIX):
                message = message.removeprefix(FOREACH_PREFIX)
            denials[violation.rule or ""] = message
    return denials


# ---- documents --------------------------------------------------------------------------------

def test_one_cluster_policy_per_binding() -> None:
    plan = example_plan()
    policies = example_policies()
    assert sorted(policies) == sorted(f"clusterpolicy-{b.name}.yaml" for b in plan.bindings)
    for binding in plan.bindings:
        body = policies[f"clusterpolicy-{binding.name}.yaml"]
        assert (body["apiVersion"], body["kind"]) == ("kyverno.io/v1", "ClusterPolicy")
        assert body["metadata"]["name"] == f"polgen-{binding.name}"
        assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "polgen"}
        policy = binding.policy
        assert body["metadata"]["annotations"] == {
            "policies.kyverno.io/title": policy.title,
            "policies.kyverno.io/category": policy.category,
            "policies.kyverno.io/severity": policy.severity,
            "policies.kyverno.io/subject": "Service" if policy.subject == "service" else "Pod",
            "policies.kyverno.io/description": policy.description,
            "polgen.dev/policy": policy.id,
            "polgen.dev/binding": binding.name,
        }
        assert body["spec"]["background"] is True
        assert [r["name"] for r in body["spec"]["rules"]] == rule_names(policy.checks)


def test_every_check_kind_has_a_template_and_every_policy_renders() -> None:
    for kind in CHECK_KINDS:
        assert (templates_dir() / "kyverno" / "checks" / f"{kind}.yaml.j2").is_file(), kind
    for policy in CATALOG.policies:
        assert TARGET.support(policy).supported, policy.id
    assert set(catalog_policies()) == {p.id for p in CATALOG.policies}
    assert "1.13" in TARGET.minimum_versions and "1.17" in TARGET.minimum_versions


def test_empty_container_types_are_unsupported_and_refused() -> None:
    binding = binding_for("disallow-privileged")
    check = {"kind": "container-field", "field": "securityContext.privileged",
             "allowed": [False], "containerTypes": []}
    policy = Policy.model_validate({**binding.policy.model_dump(), "checks": [check]})
    assert "containerTypes" in TARGET.support(policy).reason
    assert not TARGET.support(policy).supported
    with pytest.raises(PolgenError, match="cannot render a Kyverno ClusterPolicy"):
        cluster_policy(dataclasses.replace(binding, policy=policy))


@pytest.mark.parametrize(("action", "failure_action", "warning"),
                         [("enforce", "Enforce", False), ("warn", "Audit", True),
                          ("audit", "Audit", False)])
def test_action_maps_to_failure_action(action: Action, failure_action: str, warning: bool) -> None:
    for document in TARGET.render(with_bindings(action=action)):
        spec = document.body["spec"]
        assert "validationFailureAction" not in spec
        assert "validationFailureActionOverrides" not in spec
        assert spec.get("emitWarning", False) is warning
        for rule in spec["rules"]:
            assert rule["validate"]["failureAction"] == failure_action
            assert rule["validate"]["allowExistingViolations"] is False


def test_rules_match_the_subject_in_the_binding_namespaces() -> None:
    named = [binding for binding in example_plan().bindings if binding.namespaces]
    assert named
    for binding in named:
        kind = "Service" if binding.policy.subject == "service" else "Pod"
        for rule in cluster_policy(binding)["spec"]["rules"]:
            assert rule["match"] == {"any": [{"resources": {
                "kinds": [kind], "operations": ["CREATE", "UPDATE"],
                "namespaces": list(binding.namespaces)}}]}
            assert "exclude" not in rule


def test_catch_all_group_excludes_named_namespaces() -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), namespaces=(),
                                  excluded_namespaces=("kube-system", "prd"))
    for rule in cluster_policy(binding)["spec"]["rules"]:
        assert "namespaces" not in rule["match"]["any"][0]["resources"]
        assert rule["exclude"] == {"any": [{"resources": {"namespaces": ["kube-system", "prd"]}}]}


def test_nothing_disables_autogen() -> None:
    """kyverno CanAutoGen: no annotation, no names/selector/annotations in match or exclude, one
    kind per filter, no mutate/generate; every `request.object` path is one autogen rewrites."""
    for policy_id, body in catalog_policies().items():
        assert AUTOGEN_ANNOTATION not in body["metadata"]["annotations"], policy_id
        for rule in body["spec"]["rules"]:
            assert set(rule) <= {"name", "match", "exclude", "context", "preconditions", "validate"}
            for block in rule["match"]["any"] + rule.get("exclude", {}).get("any", []):
                assert set(block["resources"]) <= {"kinds", "namespaces", "operations"}
                assert len(block["resources"].get("kinds", ["Pod"])) == 1
            text = json.dumps(rule)
            assert "oldObject" not in text
            for found in re.finditer(r"request\.object(\.[A-Za-z]+)?", text):
                assert found.group(1) in (".spec", ".metadata"), (policy_id, found.group(0))


def _expressions(rule: dict[str, Any]) -> Iterator[str]:
    """Every JMESPath expression of a rule: `{{ }}` variables (context holds data) and lists."""
    for text in strings({key: value for key, value in rule.items() if key != "context"}):
        yield from (match.group(2)[2:-2] for match in VARIABLE.finditer(text))
    stack = list(rule["validate"].get("foreach", []))
    while stack:
        entry = stack.pop()
        yield entry["list"]
        stack.extend(entry.get("foreach", []))


def catalog_rules() -> Iterator[tuple[str, dict[str, Any]]]:
    for policy_id, body in catalog_policies().items():
        for rule in body["spec"]["rules"]:
            yield policy_id, rule


def test_every_jmespath_expression_compiles_with_known_functions() -> None:
    known = set(KyvernoFunctions.FUNCTION_TABLE)
    count = 0
    for policy_id, rule in catalog_rules():
        for expression in _expressions(rule):
            stack = [jmespath.compile(expression).parsed]
            while stack:
                node = stack.pop()
                if node["type"] == "function_expression":
                    assert node["value"] in known, (policy_id, expression)
                stack.extend(c for c in node.get("children", []) if isinstance(c, dict))
            count += 1
    assert count > 100


CONTEXT_NAMES = {"polgenAllowed", "polgenForbidden", "polgenValues", "polgenKeys", "polgenRange",
                 "polgenIgnore", "polgenKeyPrefix", "polgenAllowedValues", "polgenAllowedImages",
                 "polgenExemptImages", "polgenSkipIf"}


def test_context_data_stays_out_of_expressions() -> None:
    """Only context variables carry catalog and fleet data: expressions hold no JSON literal
    (but the number 0) and no quoted identifier."""
    binding = dataclasses.replace(catalog_bindings()[0], exempt_images=("x*",))
    rules = [*catalog_rules(), *(("exempt", r) for r in cluster_policy(binding)["spec"]["rules"])]
    for policy_id, rule in rules:
        assert {entry["name"] for entry in rule.get("context", [])} <= CONTEXT_NAMES, policy_id
        for expression in _expressions(rule):
            code = expression.replace("`0`", "")
            assert "`" not in code and '"' not in code, (policy_id, expression)


def test_image_regexes_hold_nothing_kyverno_would_act_on() -> None:
    entries = ["ghcr.io/{{ request.object }}", "a$(b)c", "request.object.spec", "x y", "ü/é"]
    for pattern in (repository_pattern(entries), exemption_pattern(tuple(entries)) or ""):
        go_regex(pattern)
        assert "{{" not in pattern and "$(" not in pattern
        assert "request.object.spec" not in pattern


def test_rule_names_are_unique_and_short() -> None:
    checks = [c for p in CATALOG.policies for c in p.checks] * 2
    names = rule_names(checks)
    assert len(set(names)) == len(names)
    assert all(len(n) <= MAX_RULE_NAME and re.fullmatch(r"[a-z0-9-]+", n) for n in names)
    probes = rule_names(CATALOG.get("disallow-host-probes").checks)
    assert "container-field-livenessprobe-httpget-host" in probes
    assert "container-field-prestop-tcpsocket-host" in probes


def test_rendering_is_deterministic() -> None:
    first = [(d.file, json.dumps(d.body)) for d in TARGET.render(example_plan())]
    second = [(d.file, json.dumps(d.body)) for d in TARGET.render(example_plan())]
    assert first == second


def test_validating_policy_flavour_delegates() -> None:
    module = pytest.importorskip("polgen.targets.kyverno_validating")
    plan = dataclasses.replace(example_plan(), kyverno_flavor="ValidatingPolicy")
    assert TARGET.render(plan) == module.render_validating_policies(plan)


# ---- image repositories and exact-or-prefix lists: the regexes equal the reference ------------

ENTRIES = ["ubuntu", "ghcr.io", "ghcr.io/org", "docker.io", "index.docker.io", "library",
           "docker.io/library/ubuntu", "localhost:5000", "localhost", "my.org/app", "org/app",
           "library/ubuntu", "ubuntu/", "docker.io/my.org/x", "a@b", "ghcr.io/org/app:1.0",
           "Ubuntu", "ub?ntu", "a.b", ""]
PARTS = ["ubuntu", "ubuntuevil", "library", "docker.io", "index.docker.io", "ghcr.io", "org",
         "app", "localhost", "localhost:5000", "localhos", "my.org", "myXorg", "a@b", "a.b",
         "ubuntu:5000", "app:1.0", "", "Ubuntu", "ub?ntu", "x"]
SUFFIXES = ["", ":24.04", "@sha256:abc", ":t@sha256:x", "\n", ":a/b"]


def test_repository_regex_admits_exactly_what_imageref_admits() -> None:
    names = [*PARTS, *("/".join(p) for p in itertools.product(PARTS, repeat=2)),
             *("/".join(p) for p in itertools.product(PARTS[:8], repeat=3))]
    images = [name + suffix for name in names for suffix in SUFFIXES]
    for entries in [[e] for e in ENTRIES] + [["ubuntu", "ghcr.io/org"], []]:
        pattern = go_regex(repository_pattern(entries))
        wrong = [i for i in images if bool(pattern.search(i)) != is_allowed(i, entries)]
        assert not wrong, (entries, wrong[:5])


def test_exact_or_prefix_regex_matches_the_reference() -> None:
    patterns = ("ghcr.io/tools/debug:1.0", "registry.corp/*", "a.b", "x?y*", "")
    texts = ["ghcr.io/tools/debug:1.0", "ghcr.io/tools/debug:1.0x", "registry.corp/a",
             "registry-corp/a", "a.b", "aXb", "a.b\n", "x?yz", "xzyz", "", "\n"]
    pattern = go_regex(exemption_pattern(patterns) or "")
    assert [bool(pattern.search(t)) for t in texts] == [is_exempt(t, patterns) for t in texts]
    assert exemption_pattern(()) is None
    assert not go_regex(prefix_pattern([])).search("")


# ---- the rules give the oracle's verdicts on the catalog fixtures ------------------------------

def fixture_files() -> list[tuple[str, str, Path]]:
    return [(policy_id, verdict, path) for policy_id, entry in CATALOG.entries.items()
            for verdict in ("allowed", "disallowed") for path in entry.fixtures(verdict)]


@cache
def fixture_object(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fixture_request(path: Path) -> AdmissionRequest:
    if path.name.startswith("ephemeral-"):
        return debug_request(fixture_object(path), NAMESPACE)
    return request_for(fixture_object(path), "CREATE", NAMESPACE)


@cache
def fixture_expectations(path: Path, update: bool = False) -> dict[str, dict[str, str]]:
    """Policy id -> the oracle's denials, for the fixture's request (or its plain UPDATE)."""
    request = plain_update(fixture_object(path)) if update else fixture_request(path)
    return {b.policy.id: expected_denials(b, request) for b in catalog_bindings()}


FIXTURE_IDS = [f"{policy_id}/{verdict}/{path.name}" for policy_id, verdict, path in fixture_files()]


@pytest.mark.parametrize(("policy_id", "verdict", "path"), fixture_files(), ids=FIXTURE_IDS)
def test_fixture_verdicts_and_messages_match_the_oracle(policy_id: str, verdict: str,
                                                        path: Path) -> None:
    """Every catalog policy, through the stand-in: same denying rules, same first messages."""
    request = fixture_request(path)
    actual = {policy: KyvernoRules(body).denials(request)
              for policy, body in catalog_policies().items()}
    assert actual == fixture_expectations(path)
    assert bool(actual[policy_id]) is (verdict == "disallowed")


@pytest.mark.parametrize(("policy_id", "verdict", "path"), fixture_files(), ids=FIXTURE_IDS)
def test_engine_gives_the_oracle_verdicts_on_fixtures(policy_id: str, verdict: str,
                                                     path: Path) -> None:
    """The same through the project's offline Kyverno engine."""
    request = fixture_request(path)
    actual = {policy: engine_review(policies, request)
              for policy, policies in catalog_engine_policies().items()}
    assert actual == fixture_expectations(path)
    assert bool(actual[policy_id]) is (verdict == "disallowed")


def test_fixtures_cover_pods_controllers_services_and_debug() -> None:
    names = [path.name for _, _, path in fixture_files()]
    kinds = {fixture_object(path)["kind"] for _, _, path in fixture_files()}
    assert {"Pod", "Deployment", "CronJob", "Service"} <= kinds
    assert any(name.startswith("ephemeral-") for name in names)


POD_FIXTURES = [(policy_id, path) for policy_id, _, path in fixture_files()
                if not path.name.startswith("ephemeral-") and fixture_object(path)["kind"] == "Pod"]


@pytest.mark.parametrize(("policy_id", "path"), POD_FIXTURES,
                         ids=[f"{p}/{path.name}" for p, path in POD_FIXTURES])
def test_plain_pod_updates_run_only_mutable_checks(policy_id: str, path: Path) -> None:
    """A Pod UPDATE without subresource: image and label checks judge it, every other check
    skips it (the oracle says the same), in the stand-in and in the engine."""
    request = plain_update(fixture_object(path))
    expected = fixture_expectations(path, update=True)
    assert {policy: KyvernoRules(body).denials(request)
            for policy, body in catalog_policies().items()} == expected
    assert {policy: engine_review(policies, request)
            for policy, policies in catalog_engine_policies().items()} == expected


# ---- scenarios: every kind's edge cases, as Pod, Deployment and CronJob ------------------------

SCENARIOS: list[dict[str, Any]] = yaml.safe_load((DATA / "scenarios.yaml").read_text())


def scenario_binding(scenario: dict[str, Any]) -> Binding:
    policy = Policy.model_validate({"id": "under-test", "title": "t", "description": "d",
                                    "severity": "low", "category": "c", **scenario["policy"]})
    binding = bound(policy, **scenario.get("values", {}))
    return dataclasses.replace(binding, exempt_images=tuple(scenario.get("exemptImages", ())))


def scenario_requests(scenario: dict[str, Any]) -> list[AdmissionRequest]:
    obj, namespace = scenario["object"], scenario.get("namespace", NAMESPACE)
    if scenario.get("debug"):
        return [debug_request(obj, namespace)]
    if scenario.get("update"):
        return [in_namespace(plain_update(obj, scenario.get("subResource", "")), namespace)]
    objects = [obj] + ([controller(obj, k) for k in ("Deployment", "CronJob")]
                       if obj["kind"] == "Pod" else [])
    return [request_for(o, "CREATE", namespace) for o in objects]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario_matches_the_oracle(scenario: dict[str, Any]) -> None:
    binding = scenario_binding(scenario)
    body = cluster_policy(binding)
    for request in scenario_requests(scenario):
        expected = expected_denials(binding, request)
        assert bool(expected) is scenario["denied"], (request.kind, expected)
        assert KyvernoRules(body).denials(request) == expected, request.kind
        assert engine_denials(body, request) == expected, request.kind


def test_scenarios_cover_every_check_kind() -> None:
    kinds = {check["kind"] for s in SCENARIOS for check in s["policy"]["checks"]}
    assert kinds == set(CHECK_KINDS)


# ---- operations, namespaces, exemptions -------------------------------------------------------

def denied_rules(binding: Binding, request: AdmissionRequest) -> set[str]:
    return set(KyvernoRules(cluster_policy(binding)).denials(request))


def test_kubectl_debug_is_judged_but_other_subresources_are_not_matched() -> None:
    """`pods/ephemeralcontainers` meets every check, also on a Pod that already violates
    (`allowExistingViolations: false`); Kyverno's bare `Pod` kind does not match `pods/resize`
    (reference §3.2), so a resize is never blocked, not even by image checks."""
    privileged_binding = binding_for("disallow-privileged")
    body = cluster_policy(privileged_binding)
    for running in (container(), privileged("old")):
        debug = debug_request(pod(running, ephemeralContainers=[privileged("debug")]), NAMESPACE)
        expected = {"container-field-privileged": expected_denials(privileged_binding, debug)[
            "container-field-privileged"]}
        assert KyvernoRules(body).denials(debug) == engine_denials(body, debug) == expected
    bad = pod(privileged(image="busybox"))
    resize = plain_update(bad, "resize")
    for policy_id in ("disallow-privileged", "allowed-repos"):
        body = cluster_policy(binding_for(policy_id))
        assert KyvernoRules(body).evaluate(resize) == []
        assert engine_denials(body, resize) == {}
    assert denied_rules(binding_for("allowed-repos"), plain_update(bad)) == {"image-repository"}
    assert denied_rules(binding_for("disallow-privileged"), plain_update(bad)) == set()


def test_controller_update_is_judged_in_full() -> None:
    update = request_for(controller(pod(privileged()), "Deployment"), "UPDATE", NAMESPACE)
    assert denied_rules(binding_for("disallow-privileged"), update) == {
        "autogen-container-field-privileged"}


def test_background_scan_without_operation_is_judged_like_create() -> None:
    request = request_for(pod(privileged(), hostPID=True), "CREATE", "default")
    review = {"object": request.object, "namespace": "default"}
    for policy_id, rule in (("disallow-privileged", "container-field-privileged"),
                            ("disallow-host-namespaces", "pod-field-hostpid"),
                            ("disallow-default-namespace", "namespace")):
        results = KyvernoRules(cluster_policy(binding_for(policy_id))).evaluate(request, review)
        assert (rule, "fail") in {(r.rule, r.status) for r in results}


def test_other_namespaces_and_delete_are_not_matched() -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), namespaces=("prd",))
    assert denied_rules(binding, request_for(pod(privileged()), "CREATE", "sbx-other")) == set()
    assert denied_rules(binding, request_for(pod(privileged()), "CREATE", "prd")) == {
        "container-field-privileged"}
    delete = request_for(pod(privileged()), "DELETE", "prd")
    assert KyvernoRules(cluster_policy(binding)).evaluate(delete) == []


def test_excluded_namespaces_are_not_judged() -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"),
                                  excluded_namespaces=("kube-system",))
    request = request_for(pod(privileged()), "CREATE", "kube-system")
    assert denied_rules(binding, request) == set()
    assert denied_rules(binding, in_namespace(request, "anywhere")) == {
        "container-field-privileged"}


def test_exempt_images_skip_container_checks_only() -> None:
    exempt = "registry.corp/debug"
    binding = dataclasses.replace(binding_for("disallow-privileged"), exempt_images=(exempt + "*",))
    assert denied_rules(binding, request_for(pod(privileged(image=exempt + ":1")))) == set()
    lookalike = request_for(pod(privileged(image="registry-corp/debug:1")))
    assert denied_rules(binding, lookalike) == {"container-field-privileged"}
    host = dataclasses.replace(binding_for("disallow-host-namespaces"),
                               exempt_images=(exempt + "*",))
    assert denied_rules(host, request_for(pod(container(image=exempt), hostPID=True))) == {
        "pod-field-hostpid"}


@pytest.mark.parametrize(("action", "denied"), [("enforce", True), ("warn", False),
                                                 ("audit", False)])
def test_only_enforce_blocks(action: Action, denied: bool) -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), action=action)
    results = KyvernoRules(cluster_policy(binding)).evaluate(request_for(pod(privileged())))
    assert [r.status for r in results] == ["fail"]
    assert bool(denied_rules(binding, request_for(pod(privileged())))) is denied


def test_services_are_judged_without_autogen() -> None:
    body = cluster_policy(binding_for("disallow-nodeport-services"))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"type": "NodePort"}}
    for request in (request_for(service), request_for(service, "UPDATE")):
        assert KyvernoRules(body).denials(request) == {
            "service-field-type": 'spec.type must not be one of ["NodePort"]'}
    assert KyvernoRules(body).rules_for("Deployment") == body["spec"]["rules"]
    assert KyvernoRules(body).evaluate(request_for(pod(container()))) == []


# ---- skipIf: inlined per binding --------------------------------------------------------------

WINDOWS = pod(container(), os={"name": "windows"})


def _skip_conditions(binding: Binding) -> list[dict[str, Any]]:
    (rule, *_) = cluster_policy(binding)["spec"]["rules"]
    return list(rule.get("preconditions", {}).get("all", []))


@pytest.mark.parametrize("exempt", [True, False])
def test_skip_if_follows_its_parameter(exempt: bool) -> None:
    binding = binding_for("disallow-privilege-escalation", exemptWindowsPods=exempt)
    assert len(_skip_conditions(binding)) == (1 if exempt else 0)
    rule = "container-field-allowprivilegeescalation"
    for obj in (WINDOWS, controller(WINDOWS, "CronJob")):
        request = request_for(obj)
        expected = {} if exempt else {autogen_name(rule, obj["kind"]): (
            'container "app": securityContext.allowPrivilegeEscalation must be one of [false]')}
        assert expected_denials(binding, request) == expected
        assert harness_denials(binding, request) == expected
        assert engine_denials(cluster_policy(binding), request) == expected


def test_skip_if_without_parameter_always_applies_and_compares_exactly() -> None:
    binding = binding_for("require-read-only-root-filesystem")
    assert len(_skip_conditions(binding)) == 1
    assert harness_denials(binding, request_for(WINDOWS)) == {}
    for os_name in ("Windows", "linux"):
        request = request_for(pod(container(), os={"name": os_name}))
        assert harness_denials(binding, request) == expected_denials(binding, request) != {}


# ---- parameters are data ----------------------------------------------------------------------

TRICKY = [
    "{{ request.object.metadata.name }}",
    "it's \"quoted\"",
    "line\nbreak",
    "key: [value, {x: y}] # not a comment",
    "back\\slash\\{{x}}",
    "a}b{c",
    "`backtick` 'single'",
    "$(./../x)",
]


def _capabilities_pod(*added: Any) -> AdmissionRequest:
    caps: dict[str, Any] = {"capabilities": {"add": list(added)}}
    return request_for(pod(container(securityContext=caps)))


@pytest.mark.parametrize("value", TRICKY)
def test_parameter_survives_as_data(value: str) -> None:
    body = cluster_policy(binding_for("restrict-capabilities",
                                      allowedCapabilities=[value, "CHOWN"]))
    rule = body["spec"]["rules"][0]
    engine = KyvernoRules(body)
    context = substitute(rule["context"][0]["variable"]["value"], {"request": {}})
    assert context == [value, "CHOWN"]
    assert engine.denials(_capabilities_pod(value, "CHOWN")) == {}
    (message,) = engine.denials(_capabilities_pod(value + "x")).values()
    if "{{" not in value and "$(" not in value:  # Kyverno re-substitutes resource values
        expected = f'container "app": securityContext.capabilities.add may not contain "{value}x"'
        assert message == expected


def _contains_policy() -> Policy:
    return Policy.model_validate({
        "id": "under-test", "title": "t", "description": "d", "severity": "low", "category": "c",
        "parameters": {"drop": {"type": "array", "items": "string", "default": [],
                                "description": "d"}},
        "checks": [{"kind": "container-list-contains", "field": "securityContext.capabilities.drop",
                    "values": {"param": "drop"}}]})


@pytest.mark.parametrize("value", TRICKY)
def test_data_shown_in_messages_survives_as_data(value: str) -> None:
    """Label keys, list values and allowed lists that messages show come out literally."""
    labelled = {**pod(container()), "metadata": {"name": "p", "labels": {"team": "a"}}}
    volume = pod(container(), volumes=[{"name": "v", "hostPath": {"path": "/"}}])
    cases = [
        (binding_for("require-labels", keys=[value, "team"]), labelled,
         {"pod-labels": f'metadata.labels must include "{value}"'}),
        (bound(_contains_policy(), drop=["ALL", value]),
         pod(container(securityContext={"capabilities": {"drop": ["ALL"]}})),
         {"container-list-contains-drop":
          f'container "app": securityContext.capabilities.drop must contain "{value}"'}),
        (binding_for("restrict-volume-types", allowedTypes=[value, "emptyDir"]), volume,
         {"pod-list-keys": f'spec.volumes item "v": hostPath is not allowed (allowed: {value},'
                           " emptyDir)"}),
        (binding_for("disallow-latest-tag", forbiddenTags=[value, "latest"]),
         pod(container(image="ubuntu:latest")),
         {"image-tag": 'container "app": image "ubuntu:latest" uses forbidden tag "latest"'}),
    ]
    for binding, obj, expected in cases:
        request = request_for(obj)
        assert harness_denials(binding, request) == expected_denials(binding, request) == expected
    admitted = {**pod(container()), "metadata": {"name": "p", "labels": {value: "", "team": ""}}}
    assert harness_denials(cases[0][0], request_for(admitted)) == {}


def test_allowed_values_compare_by_type() -> None:
    engine = KyvernoRules(cluster_policy(binding_for("restrict-capabilities",
                                                     allowedCapabilities=[1, True, "0"])))
    assert engine.denials(_capabilities_pod(1, True, "0")) == {}
    for other in ("1", "true", 0, False):
        assert engine.denials(_capabilities_pod(other)), other


def test_parameter_in_message_survives_as_data() -> None:
    """A pod-field check whose `allowed` (shown in its message) is a parameter holding `{{ }}`."""
    binding = binding_for("restrict-capabilities",
                          allowedCapabilities=["{{ request.object.metadata.name }}"])
    check = {"kind": "pod-field", "field": "hostPID", "allowed": {"param": "allowedCapabilities"}}
    policy = Policy.model_validate({**binding.policy.model_dump(), "checks": [check]})
    body = cluster_policy(dataclasses.replace(binding, policy=policy))
    request = request_for(pod(container(), hostPID=True))
    expected = 'spec.hostPID must be unset or one of ["{{ request.object.metadata.name }}"]'
    assert KyvernoRules(body).denials(request) == {"pod-field-hostpid": expected}


def test_repository_parameter_survives_as_data() -> None:
    entries = ["ghcr.io/{{ request.object.metadata.name }}", "it's\nodd", "ubuntu"]
    engine = KyvernoRules(cluster_policy(binding_for("allowed-repos", repos=entries)))
    for image in ("ghcr.io/{{ request.object.metadata.name }}/x:1", "ubuntu:24.04"):
        assert engine.denials(request_for(pod(container(image=image)))) == {}
    (message,) = engine.denials(request_for(pod(container(image="nginx")))).values()
    assert message == ('container "app": image "nginx" is not from an allowed repository'
                       f" (allowed: {', '.join(entries)})")

"""The kyverno target (ClusterPolicy flavour): the documents it renders, and proof that its rules
deny the disallowed catalog fixtures and admit the allowed ones.

The proof uses a small TEST-ONLY stand-in for Kyverno (`KyvernoRules` below), not the project's
engine: it evaluates exactly the rule shapes this target emits (match/exclude, context variables,
preconditions, foreach/nested foreach, deny conditions with Equals/NotEquals) with the `jmespath`
package, following /work/shared/reference/kyverno.md: `{{ }}` substitution and `\\{{` escapes,
the fork's `Unknown key` errors (swallowed only where the reference says so), `regex_match`
with Go RE2 anchors, and autogen's textual rewrite of `request.object.spec` for controllers.
A failed rule reports the deny message without the "validation failure: " prefixes Kyverno adds
per foreach level.
"""

from __future__ import annotations

import copy
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
from polgen.errors import PolgenError
from polgen.fleet import Action
from polgen.imageref import is_allowed
from polgen.pipeline import load_inputs
from polgen.plan import Binding, ClusterPlan
from polgen.semantics import evaluate_policy, is_exempt
from polgen.targets.kyverno import (
    MAX_RULE_NAME,
    TARGET,
    TEMPLATED_KINDS,
    exemption_pattern,
    repository_pattern,
    rule_names,
)

CATALOG: Catalog = load_catalog(Path(__file__).resolve().parents[1] / "catalog")
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


class KyvernoFunctions(jp_functions.Functions):
    """Kyverno's `regex_match` stand-in, and `contains` with JSON (type-strict) equality."""

    @jp_functions.signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_regex_match(self, pattern: str, value: Any) -> bool:
        return go_regex(pattern).search(value if isinstance(value, str) else str(value)) is not None

    @jp_functions.signature({"types": ["array", "string"]}, {"types": []})
    def _func_contains(self, subject: Any, search: Any) -> bool:
        if isinstance(subject, str):
            return isinstance(search, str) and search in subject
        return any(type(item) is type(search) and item == search for item in subject)


class ForkInterpreter(jp_visitor.TreeInterpreter):
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


def query(expression: str, data: dict[str, Any]) -> Any:
    parsed = jmespath.compile(expression).parsed
    options = jmespath.Options(custom_functions=KyvernoFunctions())
    return ForkInterpreter(options).visit(parsed, data)


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


OPERATORS = {"Equals": equals, "NotEquals": lambda key, value: not equals(key, value)}


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
        for rule in rules:
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
            results.append(self._rule(rule, copy.deepcopy(data)))
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


# ---- the example rendering and helpers --------------------------------------------------------

@cache
def example_plan() -> ClusterPlan:
    return next(plan for plan in load_inputs().plans if plan.name == "dev")


def with_bindings(**changes: Any) -> ClusterPlan:
    """The example plan with every binding changed (action, namespaces, exemptions, ...)."""
    plan = example_plan()
    bindings = tuple(dataclasses.replace(b, **changes) for b in plan.bindings)
    return dataclasses.replace(plan, kyverno_flavor="ClusterPolicy", bindings=bindings)


def binding_for(policy_id: str, group: str = NAMESPACE) -> Binding:
    return next(b for b in example_plan().bindings if b.policy.id == policy_id and b.group == group)


def cluster_policy(binding: Binding) -> dict[str, Any]:
    plan = dataclasses.replace(example_plan(), bindings=(binding,))
    (document,) = TARGET.render(plan)
    return document.body


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


def deployment(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"metadata": {}, "spec": pod_spec}}}


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
        expected = {
            "policies.kyverno.io/title": policy.title,
            "policies.kyverno.io/category": policy.category,
            "policies.kyverno.io/severity": policy.severity,
            "policies.kyverno.io/description": policy.description,
            "polgen.dev/policy": policy.id,
            "polgen.dev/binding": binding.name,
        }
        if policy.podSecurity is not None:
            expected["policies.kyverno.io/subject"] = "Pod"
        assert body["metadata"]["annotations"] == expected
        assert body["spec"]["background"] is True
        assert [r["name"] for r in body["spec"]["rules"]] == rule_names(policy.checks)


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


def test_rules_match_pods_in_the_binding_namespaces() -> None:
    for binding in example_plan().bindings:
        for rule in cluster_policy(binding)["spec"]["rules"]:
            assert rule["match"] == {"any": [{"resources": {
                "kinds": ["Pod"], "operations": ["CREATE", "UPDATE"],
                "namespaces": list(binding.namespaces)}}]}
            assert "exclude" not in rule


def test_catch_all_group_excludes_named_namespaces() -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), namespaces=(),
                                  excluded_namespaces=("kube-system", "prd"))
    for rule in cluster_policy(binding)["spec"]["rules"]:
        assert "namespaces" not in rule["match"]["any"][0]["resources"]
        assert rule["exclude"] == {"any": [{"resources": {"namespaces": ["kube-system", "prd"]}}]}


def test_nothing_disables_autogen() -> None:
    """kyverno CanAutoGen: no annotation, no names/selector/annotations in match or exclude, only
    `Pod` as kind, no mutate/generate; every `request.object` path is one autogen rewrites."""
    for file, body in example_policies().items():
        assert AUTOGEN_ANNOTATION not in body["metadata"]["annotations"], file
        for rule in body["spec"]["rules"]:
            assert set(rule) <= {"name", "match", "exclude", "context", "preconditions", "validate"}
            for block in rule["match"]["any"] + rule.get("exclude", {}).get("any", []):
                assert set(block["resources"]) <= {"kinds", "namespaces", "operations"}
                assert block["resources"].get("kinds", ["Pod"]) == ["Pod"]
            text = json.dumps(rule)
            assert "oldObject" not in text
            for found in re.finditer(r"request\.object(\.[A-Za-z]+)?", text):
                assert found.group(1) in (".spec", ".metadata"), (file, found.group(0))


def _expressions(rule: dict[str, Any]) -> Iterator[str]:
    """Every JMESPath expression of a rule: `{{ }}` variables (context holds data) and lists."""
    for text in strings({key: value for key, value in rule.items() if key != "context"}):
        yield from (match.group(2)[2:-2] for match in VARIABLE.finditer(text))
    stack = list(rule["validate"].get("foreach", []))
    while stack:
        entry = stack.pop()
        yield entry["list"]
        stack.extend(entry.get("foreach", []))


def test_every_jmespath_expression_compiles_with_known_functions() -> None:
    known = set(KyvernoFunctions.FUNCTION_TABLE)
    count = 0
    for file, rule in all_rules():
        for expression in _expressions(rule):
            parsed = jmespath.compile(expression).parsed
            stack = [parsed]
            while stack:
                node = stack.pop()
                if node["type"] == "function_expression":
                    assert node["value"] in known, (file, expression)
                stack.extend(c for c in node.get("children", []) if isinstance(c, dict))
            count += 1
    assert count > 50


def test_context_data_stays_out_of_expressions() -> None:
    """Only context variables carry fleet data; their names are all an expression mentions."""
    for file, rule in all_rules():
        names = {entry["name"] for entry in rule["context"]}
        assert names <= {"polgenAllowed", "polgenAllowedImages", "polgenExemptImages"}, file
        for expression in _expressions(rule):
            assert "`" not in expression and '"' not in expression, (file, expression)


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


def test_rendering_is_deterministic() -> None:
    first = [(d.file, json.dumps(d.body)) for d in TARGET.render(example_plan())]
    second = [(d.file, json.dumps(d.body)) for d in TARGET.render(example_plan())]
    assert first == second


def test_support_and_versions() -> None:
    for policy in CATALOG.policies:
        expressible = all(check.kind in TEMPLATED_KINDS for check in policy.checks)
        assert TARGET.support(policy).supported is expressible, policy.id
    assert "1.13" in TARGET.minimum_versions and "1.17" in TARGET.minimum_versions


@pytest.mark.parametrize("check", [
    {"kind": "pod-field", "field": "hostPID", "forbidden": [True]},
    {"kind": "pod-field", "field": "hostPID", "allowed": [False],
     "skipIf": [{"field": "os.name", "equals": "windows"}]},
    {"kind": "image-digest"},
])
def test_unimplemented_checks_are_unsupported_and_refused(check: dict[str, Any]) -> None:
    binding = binding_for("disallow-host-namespaces")
    policy = Policy.model_validate({**binding.policy.model_dump(), "checks": [check]})
    assert not TARGET.support(policy).supported
    with pytest.raises(PolgenError, match="cannot render a Kyverno ClusterPolicy"):
        cluster_policy(dataclasses.replace(binding, policy=policy))


def test_validating_policy_flavour_delegates() -> None:
    module = pytest.importorskip("polgen.targets.kyverno_validating")
    plan = dataclasses.replace(example_plan(), kyverno_flavor="ValidatingPolicy")
    assert TARGET.render(plan) == module.render_validating_policies(plan)


# ---- image repositories: the regex equals polgen.imageref -------------------------------------

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


def test_exemption_regex_matches_the_reference() -> None:
    patterns = ("ghcr.io/tools/debug:1.0", "registry.corp/*", "a.b", "x?y*")
    images = ["ghcr.io/tools/debug:1.0", "ghcr.io/tools/debug:1.0x", "registry.corp/a",
              "registry-corp/a", "a.b", "aXb", "a.b\n", "x?yz", "xzyz", ""]
    pattern = go_regex(exemption_pattern(patterns) or "")
    assert [bool(pattern.search(i)) for i in images] == [is_exempt(i, patterns) for i in images]
    assert exemption_pattern(()) is None


# ---- the rules deny and admit the catalog fixtures --------------------------------------------

def fixture_files() -> list[tuple[str, str, Path]]:
    return [(policy_id, verdict, path) for policy_id, entry in CATALOG.entries.items()
            for verdict in ("allowed", "disallowed") for path in entry.fixtures(verdict)]


def fixture_request(path: Path) -> AdmissionRequest:
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    if path.name.startswith("ephemeral-"):
        return debug_request(obj, NAMESPACE)
    return request_for(obj, "CREATE", NAMESPACE)


def expected_denials(request: AdmissionRequest) -> dict[str, str]:
    """policy id -> rule name -> first oracle message of that check (Kyverno reports the first
    offender of a foreach), for every example prd binding."""
    expected = {}
    for binding in example_plan().bindings:
        if binding.group != NAMESPACE:
            continue
        policy = binding.policy
        for name, check in zip(rule_names(policy.checks), policy.checks, strict=True):
            single = policy.model_copy(update={"checks": [check]})
            messages = evaluate_policy(single, binding.parameters, request)
            if messages:
                expected[f"{policy.id}/{_autogen_name(name, request.kind)}"] = messages[0]
    return expected


def _autogen_name(rule: str, kind: str) -> str:
    prefix = "autogen-cronjob-" if kind == "CronJob" else "autogen-" if kind in CONTROLLERS else ""
    return (prefix + rule)[:63]


def actual_denials(request: AdmissionRequest) -> dict[str, str]:
    denials = {}
    for binding in example_plan().bindings:
        if binding.group == NAMESPACE:
            body = example_policies()[f"clusterpolicy-{binding.name}.yaml"]
            for rule, message in KyvernoRules(body).denials(request).items():
                denials[f"{binding.policy.id}/{rule}"] = message
    return denials


@pytest.mark.parametrize(("policy_id", "verdict", "path"), fixture_files(),
                         ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_fixture_verdicts_and_messages_match_the_oracle(policy_id: str, verdict: str,
                                                        path: Path) -> None:
    request = fixture_request(path)
    actual = actual_denials(request)
    assert actual == expected_denials(request)
    denied_policies = {key.split("/")[0] for key in actual}
    assert (policy_id in denied_policies) == (verdict == "disallowed")


def test_fixtures_cover_pods_controllers_and_debug() -> None:
    names = [path.name for _, _, path in fixture_files()]
    kinds = {yaml.safe_load(path.read_text())["kind"] for _, _, path in fixture_files()}
    assert {"Pod", "Deployment", "CronJob"} <= kinds
    assert any(name.startswith("ephemeral-") for name in names)


# ---- operations, namespaces, exemptions -------------------------------------------------------

def denied_rules(binding: Binding, request: AdmissionRequest) -> set[str]:
    return set(KyvernoRules(cluster_policy(binding)).denials(request))


def test_plain_pod_update_runs_only_image_checks() -> None:
    bad = pod(privileged(image="busybox"))
    update = in_namespace(dataclasses.replace(request_for(bad, "UPDATE"), old_object=bad))
    assert denied_rules(binding_for("disallow-privileged"), update) == set()
    assert denied_rules(binding_for("allowed-repos"), update) == {"image-repository"}
    assert denied_rules(binding_for("disallow-privileged"), debug_request(
        pod(container(), ephemeralContainers=[privileged("debug")]), NAMESPACE),
    ) == {"container-field-privileged"}


def test_controller_update_is_judged_in_full() -> None:
    update = in_namespace(request_for(deployment(pod(privileged())["spec"]), "UPDATE"))
    assert denied_rules(binding_for("disallow-privileged"), update) == {
        "autogen-container-field-privileged"}


def test_background_scan_without_operation_is_judged_like_create() -> None:
    request = in_namespace(request_for(pod(privileged(), hostPID=True)))
    review = {"object": request.object, "namespace": NAMESPACE}
    for policy_id, rule in (("disallow-privileged", "container-field-privileged"),
                            ("disallow-host-namespaces", "pod-field-hostpid")):
        results = KyvernoRules(cluster_policy(binding_for(policy_id))).evaluate(request, review)
        assert (rule, "fail") in {(r.rule, r.status) for r in results}


def test_other_namespaces_and_delete_are_not_matched() -> None:
    binding = binding_for("disallow-privileged")
    assert denied_rules(binding, request_for(pod(privileged()), "CREATE", "sbx-other")) == set()
    delete = in_namespace(request_for(pod(privileged()), "DELETE"))
    assert KyvernoRules(cluster_policy(binding)).evaluate(delete) == []


def test_excluded_namespaces_are_not_judged() -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), namespaces=(),
                                  excluded_namespaces=("kube-system",))
    request = request_for(pod(privileged()), "CREATE", "kube-system")
    assert denied_rules(binding, request) == set()
    assert denied_rules(binding, in_namespace(request, "anywhere")) == {
        "container-field-privileged"}


def test_exempt_images_skip_container_checks_only() -> None:
    exempt = "registry.corp/debug"
    binding = dataclasses.replace(binding_for("disallow-privileged"), exempt_images=(exempt + "*",))
    request = in_namespace(request_for(pod(privileged(image=exempt + ":1"))))
    assert denied_rules(binding, request) == set()
    lookalike = in_namespace(request_for(pod(privileged(image="registry-corp/debug:1"))))
    assert denied_rules(binding, lookalike) == {"container-field-privileged"}
    host = dataclasses.replace(binding_for("disallow-host-namespaces"),
                               exempt_images=(exempt + "*",))
    assert denied_rules(host, in_namespace(request_for(
        pod(container(image=exempt), hostPID=True)))) == {"pod-field-hostpid"}


@pytest.mark.parametrize(("action", "denied"), [("enforce", True), ("warn", False),
                                                 ("audit", False)])
def test_only_enforce_blocks(action: Action, denied: bool) -> None:
    binding = dataclasses.replace(binding_for("disallow-privileged"), action=action)
    results = KyvernoRules(cluster_policy(binding)).evaluate(
        in_namespace(request_for(pod(privileged()))))
    assert [r.status for r in results] == ["fail"]
    assert bool(denied_rules(binding, in_namespace(request_for(pod(privileged()))))) is denied


# ---- parameters are data ----------------------------------------------------------------------

TRICKY = [
    "{{ request.object.metadata.name }}",
    "it's \"quoted\"",
    "line\nbreak",
    "key: [value, {x: y}] # not a comment",
    "back\\slash\\{{x}}",
    "a}b{c",
    "`backtick` 'single'",
]


def _restrict_capabilities(values: list[Any]) -> Binding:
    binding = binding_for("restrict-capabilities")
    return dataclasses.replace(binding, parameters={**binding.parameters,
                                                    "allowedCapabilities": values})


def _capabilities_pod(*added: Any) -> AdmissionRequest:
    caps = {"securityContext": {"capabilities": {"add": list(added)}}}
    return in_namespace(request_for(pod(container(**caps))))


@pytest.mark.parametrize("value", TRICKY)
def test_parameter_survives_as_data(value: str) -> None:
    body = cluster_policy(_restrict_capabilities([value, "CHOWN"]))
    rule = body["spec"]["rules"][0]
    engine = KyvernoRules(body)
    context = substitute(rule["context"][0]["variable"]["value"], {"request": {}})
    assert context == [value, "CHOWN"]
    assert engine.denials(_capabilities_pod(value, "CHOWN")) == {}
    (message,) = engine.denials(_capabilities_pod(value + "x")).values()
    if "{{" not in value:  # Kyverno re-substitutes `{{ }}` that a resource value brings along
        expected = f'container "app": securityContext.capabilities.add may not contain "{value}x"'
        assert message == expected


def test_allowed_values_compare_by_type() -> None:
    engine = KyvernoRules(cluster_policy(_restrict_capabilities([1, True, "0"])))
    assert engine.denials(_capabilities_pod(1, True, "0")) == {}
    for other in ("1", "true", 0, False):
        assert engine.denials(_capabilities_pod(other)), other


def test_parameter_in_message_survives_as_data() -> None:
    """A pod-field check whose `allowed` (shown in its message) is a parameter holding `{{ }}`."""
    binding = _restrict_capabilities(["{{ request.object.metadata.name }}"])
    check = {"kind": "pod-field", "field": "hostPID", "allowed": {"param": "allowedCapabilities"}}
    policy = Policy.model_validate({**binding.policy.model_dump(), "checks": [check]})
    body = cluster_policy(dataclasses.replace(binding, policy=policy))
    request = in_namespace(request_for(pod(container(), hostPID=True)))
    expected = 'spec.hostPID must be unset or one of ["{{ request.object.metadata.name }}"]'
    assert KyvernoRules(body).denials(request) == {"pod-field-hostpid": expected}


def test_repository_parameter_survives_as_data() -> None:
    binding = binding_for("allowed-repos")
    entries = ["ghcr.io/{{ request.object.metadata.name }}", "it's\nodd", "ubuntu"]
    binding = dataclasses.replace(binding, parameters={"repos": entries})
    engine = KyvernoRules(cluster_policy(binding))
    for image in ("ghcr.io/{{ request.object.metadata.name }}/x:1", "ubuntu:24.04"):
        assert engine.denials(in_namespace(request_for(pod(container(image=image))))) == {}
    (message,) = engine.denials(in_namespace(request_for(pod(container(image="nginx"))))).values()
    assert message == ('container "app": image "nginx" is not from an allowed repository'
                       f" (allowed: {', '.join(entries)})")

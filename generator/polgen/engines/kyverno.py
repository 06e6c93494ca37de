"""The offline Kyverno engine: kyverno.io/v1 ClusterPolicy and Policy validate rules.

Per request Kyverno computes the rules for the resource's kind (autogen for pod controllers),
keeps those whose match/exclude select the request and evaluates each: pass, fail, skip or
error. `results` returns exactly that (what `kyverno test` compares); `review` is the admission
webhook: a request the installation filters out (`kyverno_filters`) is admitted unseen, else
failures become violations per the rule's failureAction and every error a deny, since an
evaluation polgen cannot finish must never look like a pass. Unsupported constructs fail at
load time.

`ENGINE` (the registry's, used by `polgen scan` and the harness) is a default Helm install: it
predicts what a cluster does, so a ReplicaSet or anything in kube-system is admitted unseen
(the ReplicaSet's Pods are checked when they are created). `CLI_ENGINE` has no filters, like
`kyverno test` / `kyverno apply`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polgen.admission import Action, AdmissionRequest, Violation
from polgen.engines.base import EngineError
from polgen.engines.kyverno_autogen import compute_rules
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_filters import (
    HELM_INSTALL,
    AdmissionFilters,
)
from polgen.engines.kyverno_match import rule_matches, selector_matches
from polgen.engines.kyverno_policy_check import check_policy
from polgen.engines.kyverno_rule_eval import evaluate_rule
from polgen.engines.kyverno_scalars import wildcard_match

_KINDS = ("ClusterPolicy", "Policy")
_API_VERSIONS = ("kyverno.io/v1",)


@dataclass(frozen=True)
class KyvernoPolicy:
    """One loaded policy document."""

    source: str
    document: dict[str, Any]
    _rules: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def name(self) -> str:
        return str((self.document.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        """The namespace of a namespaced Policy ('' for a ClusterPolicy)."""
        if self.document.get("kind") != "Policy":
            return ""
        return str((self.document.get("metadata") or {}).get("namespace") or "default")

    @property
    def spec(self) -> dict[str, Any]:
        return self.document.get("spec") or {}

    def rules_for(self, kind: str) -> list[dict[str, Any]]:
        """`compute_rules` for this kind, computed once: autogen deep-copies every rule, and a
        loaded policy never changes, so per request it would only repeat the same work."""
        if kind not in self._rules:
            self._rules[kind] = compute_rules(self.document, kind)
        return self._rules[kind]


@dataclass(frozen=True)
class PolicyRuleResult:
    """A rule response: which policy and rule (autogen names included), status, message."""

    policy: str
    rule: str
    status: str
    message: str
    action: str


def failure_action(policy: KyvernoPolicy, rule: dict[str, Any], request: KyvernoRequest) -> str:
    """`Enforce` or `Audit`: rule-level failureAction wins over the deprecated spec field."""
    validate = rule.get("validate") or {}
    action = str(
        validate.get("failureAction") or policy.spec.get("validationFailureAction") or "Audit"
    )
    overrides = validate.get("failureActionOverrides")
    if overrides is None:
        overrides = policy.spec.get("validationFailureActionOverrides") or []
    for override in overrides:
        namespaces = [str(n) for n in override.get("namespaces") or []]
        selector = override.get("namespaceSelector")
        if namespaces and not any(wildcard_match(n, request.namespace) for n in namespaces):
            continue
        if selector is not None and not selector_matches(selector, request.namespace_labels):
            continue
        action = str(override.get("action") or action)
    return "Enforce" if action.lower() == "enforce" else "Audit"


def evaluate_policy(
    policy: KyvernoPolicy, request: KyvernoRequest, namespace: dict[str, Any] | None = None
) -> list[PolicyRuleResult]:
    """Every rule response Kyverno produces for this request (no entry for unmatched rules)."""
    results: list[PolicyRuleResult] = []
    one = policy.spec.get("applyRules") == "One"
    for rule in policy.rules_for(request.kind):
        if rule.get("validate") is None or not rule_matches(rule, request, policy.namespace):
            continue
        action = failure_action(policy, rule, request)
        result = evaluate_rule(
            rule,
            request,
            namespace,
            enforce=action == "Enforce",
            matches_old=_old_matcher(rule, policy.namespace),
        )
        if result is None:
            continue
        results.append(
            PolicyRuleResult(policy.name, result.rule, result.status, result.message, action)
        )
        if one and result.status in ("pass", "fail"):
            break
    return results


def _old_matcher(rule: dict[str, Any], namespace: str) -> Callable[[KyvernoRequest], bool]:
    def matches(old: KyvernoRequest) -> bool:
        return rule_matches(rule, old, namespace)

    return matches


class KyvernoPolicySet:
    """Loaded ClusterPolicies and Policies, and the admission filters of the installation."""

    def __init__(
        self, policies: list[KyvernoPolicy], filters: AdmissionFilters | None = None
    ) -> None:
        self.policies = policies
        self.filters = filters or AdmissionFilters()

    def results(
        self, request: KyvernoRequest, namespace: dict[str, Any] | None = None
    ) -> list[PolicyRuleResult]:
        """Rule responses of every policy, in policy then rule order."""
        found: list[PolicyRuleResult] = []
        for policy in self.policies:
            found.extend(evaluate_policy(policy, request, namespace))
        return found

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """Violations: fail → deny (Enforce) / warn (Audit + emitWarning) / audit; error → deny.
        Nothing for a request the installation's filters admit before any policy runs."""
        kyverno_request = KyvernoRequest.from_admission(request, namespace)
        if self.filters.skips(kyverno_request):
            return []
        warn = {p.name for p in self.policies if p.spec.get("emitWarning") is True}
        violations: list[Violation] = []
        for result in self.results(kyverno_request, namespace):
            if result.status == "error":
                violations.append(
                    Violation(result.policy, f"error: {result.message}", "deny", result.rule)
                )
            elif result.status == "fail":
                action: Action = (
                    "deny"
                    if result.action == "Enforce"
                    else ("warn" if result.policy in warn else "audit")
                )
                violations.append(Violation(result.policy, result.message, action, result.rule))
        return violations


class KyvernoEngine:
    """The `kyverno` engine (ClusterPolicy / Policy); ValidatingPolicy is `kyverno-validating`.

    `filters` are the installation's (ConfigMap `resourceFilters` and `excludeGroups`, the
    webhook's excluded namespaces); the default is a Helm install's."""

    name = "kyverno"

    def __init__(self, filters: AdmissionFilters = HELM_INSTALL) -> None:
        self.filters = filters

    def accepts(self, document: dict[str, Any]) -> bool:
        return document.get("apiVersion") in _API_VERSIONS and document.get("kind") in _KINDS

    def load(self, documents: list[tuple[str, dict[str, Any]]]) -> KyvernoPolicySet:
        """Check and keep every accepted document; EngineError names the unsupported construct."""
        policies: list[KyvernoPolicy] = []
        for source, document in documents:
            if not self.accepts(document):
                continue
            policy = KyvernoPolicy(source, document)
            if not policy.name:
                raise EngineError(source, f"{document.get('kind')} without metadata.name")
            check_policy(source, document)
            policies.append(policy)
        return KyvernoPolicySet(sorted(policies, key=lambda p: (p.namespace, p.name)), self.filters)


ENGINE = KyvernoEngine()
CLI_ENGINE = KyvernoEngine(AdmissionFilters())

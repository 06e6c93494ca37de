"""Offline Kyverno ValidatingPolicy engine (policies.kyverno.io v1, v1beta1, v1alpha1).

A ValidatingPolicy is a ValidatingAdmissionPolicy without bindings: `spec.matchConstraints` is
matched exactly like a VAP's (`vap.resources_match`, the same Kubernetes matcher Kyverno uses),
and `spec.validationActions` (default Deny) and `spec.failurePolicy` (default Fail) sit on the
policy. Evaluation follows Kyverno's `vpol` compiler, which differs from the API server's:

- matchConditions see no `variables`; any false condition skips the policy; errors (with none
  false) are an error result under failurePolicy Fail and a skip under Ignore.
- validations run in order and STOP at the first error (result `error`) or the first false one
  (result `fail`). The failure message is the messageExpression's string (even if blank; a failing
  messageExpression gives `failed to evaluate message expression: ...`), else `message`, else
  `CEL expression validation failed at index <i>`.
- auditAnnotations are evaluated after the validations pass; an error there is an `error` result.
- `evaluation.admission.enabled: false` keeps a policy out of admission (`review`); it still gets
  results (as in `kyverno test`). `evaluation.mode: JSON` is not an admission policy: load error.
- NamespacedValidatingPolicy only sees requests in its own namespace.

Autogen (Kyverno pkg/cel/autogen, "implemented as Kyverno does"): when matchConstraints is exactly
one resourceRule `""/v1/pods` with no resourceNames, no excludeResourceRules and empty selectors,
Kyverno adds a policy copy for the pod controllers in `spec.autogen.podControllers.controllers`
(default: daemonsets, deployments, replicasets, statefulsets, jobs; and cronjobs). The copy keeps
the rule's operations, matches `apps/v1` / `batch/v1` controllers, and is the policy spec as JSON
with a plain text replacement: `object.spec` -> `object.spec.template.spec` and `object.metadata`
-> `object.spec.template.metadata` (CronJob: `spec.jobTemplate.spec.template...`), same for
`oldObject`, except where the match is directly followed by `.name` or `.namespace`. Being textual,
it also rewrites messages and matchConditions, and it does not rewrite `object["spec"]`.

`kubectl debug` (`pods/ephemeralcontainers`) is not matched by a `pods` rule: Kyverno registers
ValidatingPolicy webhooks from matchConstraints verbatim (reference §3.12).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from polgen.admission import Action, AdmissionRequest, Violation
from polgen.engines.base import EngineError
from polgen.engines.cel_admission import CelPolicyExpressions, admission_activation
from polgen.engines.cel_runtime import CelCompileError, CelEvaluationError, PreparedActivation
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_filters import (
    HELM_INSTALL,
    AdmissionFilters,
)
from polgen.engines.vap_match import ACTIONS, check_selectors, namespace_object, resources_match

Status = Literal["pass", "fail", "error", "skip"]

_GROUP = "policies.kyverno.io"
_VERSIONS = ("v1", "v1beta1", "v1alpha1")
_KINDS = ("ValidatingPolicy", "NamespacedValidatingPolicy")
_VARIABLES = ("object", "oldObject", "request", "namespaceObject")
# controller resource -> (group, version, replacement set), pkg/cel/autogen/config.go
_CONTROLLERS = {
    "daemonsets": ("apps", "v1", "defaults"),
    "deployments": ("apps", "v1", "defaults"),
    "replicasets": ("apps", "v1", "defaults"),
    "statefulsets": ("apps", "v1", "defaults"),
    "jobs": ("batch", "v1", "defaults"),
    "cronjobs": ("batch", "v1", "cronjobs"),
}
_TEMPLATE_PATHS = {"defaults": "spec.template", "cronjobs": "spec.jobTemplate.spec.template"}


@dataclass(frozen=True)
class PolicyResult:
    """One policy's outcome for one request, as `kyverno test` reports it."""

    policy: str
    status: Status
    message: str = ""


@dataclass(frozen=True)
class _Variant:
    """The policy as written, or one of its autogen copies."""

    match_constraints: dict[str, Any]
    expressions: CelPolicyExpressions


@dataclass(frozen=True)
class _Policy:
    name: str
    namespace: str | None
    actions: tuple[Action, ...]
    fail_on_error: bool
    admission: bool
    variants: tuple[_Variant, ...]


def autogen_specs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod-controller copies of a policy spec that Kyverno generates (none if ineligible)."""
    match = spec.get("matchConstraints") or {}
    if not _can_autogen(match):
        return []
    configured = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    controllers = _CONTROLLERS if configured is None else {
        c: _CONTROLLERS[c] for c in configured if c in _CONTROLLERS
    }
    operations = match["resourceRules"][0].get("operations") or []
    copies: list[dict[str, Any]] = []
    for replacement in sorted({target[2] for target in controllers.values()}):
        by_group_version: dict[tuple[str, str], list[str]] = {}
        for resource, (group, version, used) in controllers.items():
            if used == replacement:
                by_group_version.setdefault((group, version), []).append(resource)
        copy = dict(spec)
        copy["matchConstraints"] = {
            "resourceRules": [
                {"apiGroups": [g], "apiVersions": [v], "resources": sorted(resources),
                 "operations": list(operations)}
                for (g, v), resources in sorted(by_group_version.items())
            ]
        }
        copies.append(_replace_paths(copy, _TEMPLATE_PATHS[replacement]))
    return copies


def _can_autogen(match: dict[str, Any]) -> bool:
    for selector in ("namespaceSelector", "objectSelector"):
        chosen = match.get(selector) or {}
        if chosen.get("matchLabels") or chosen.get("matchExpressions"):
            return False
    rules = match.get("resourceRules") or []
    if match.get("excludeResourceRules") or len(rules) != 1 or rules[0].get("resourceNames"):
        return False
    rule = rules[0]
    return (rule.get("apiGroups"), rule.get("apiVersions"), rule.get("resources")) == (
        [""], ["v1"], ["pods"]
    )


def _replace_paths(spec: dict[str, Any], template: str) -> dict[str, Any]:
    text = json.dumps(spec)
    for field in ("spec", "metadata"):
        for root in ("object", "oldObject"):
            pattern = re.compile(re.escape(f"{root}.{field}") + r"(?!\.(?:name|namespace)\b)")
            text = pattern.sub(f"{root}.{template}.{field}", text)
    result: dict[str, Any] = json.loads(text)
    return result


class KyvernoValidatingPolicySet:
    """Compiled ValidatingPolicies with their autogen copies."""

    def __init__(
        self, policies: list[_Policy], filters: AdmissionFilters | None = None
    ) -> None:
        self._policies = policies
        self._filters = filters or AdmissionFilters()

    def results(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[PolicyResult]:
        """A result for every policy (variant) that matches the request; none for the others."""
        return [result for _, result in self._evaluate(request, namespace, admission=False)]

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """Violations for failures (and errors under failurePolicy Fail), per validationActions.
        Nothing for a request the installation's filters admit before any policy runs: Kyverno's
        `/vpol` webhook handler has the same `WithFilter(configuration)` as ClusterPolicy's."""
        if self._filters.skips(KyvernoRequest.from_admission(request, namespace)):
            return []
        violations: list[Violation] = []
        for policy, result in self._evaluate(request, namespace, admission=True):
            if result.status == "fail" or (result.status == "error" and policy.fail_on_error):
                violations.extend(Violation(policy.name, result.message, a) for a in policy.actions)
        return violations

    def _evaluate(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None, admission: bool
    ) -> list[tuple[_Policy, PolicyResult]]:
        namespace_obj = namespace_object(request, namespace) if request.namespace else None
        data = PreparedActivation(_VARIABLES, admission_activation(request, namespace_obj))
        found: list[tuple[_Policy, PolicyResult]] = []
        for policy in self._policies:
            if admission and not policy.admission:
                continue
            if policy.namespace is not None and policy.namespace != request.namespace:
                continue
            for variant in policy.variants:
                if resources_match(variant.match_constraints, request, namespace):
                    found.append((policy, _result(policy, variant.expressions, data)))
        return found


def _result(
    policy: _Policy, expressions: CelPolicyExpressions, data: PreparedActivation
) -> PolicyResult:
    matched, error = expressions.match(data)
    if error is not None:
        return PolicyResult(policy.name, "error" if policy.fail_on_error else "skip", error)
    if not matched:
        return PolicyResult(policy.name, "skip", "matchConditions not met")
    for index, validation in enumerate(expressions.validations):
        try:
            outcome = validation.program.evaluate_prepared(data)
        except CelEvaluationError as failure:
            return PolicyResult(policy.name, "error", _error(validation.expression, failure))
        if not isinstance(outcome, bool):
            reason = f"expected a bool, got {type(outcome).__name__}"
            return PolicyResult(policy.name, "error", f"expression '{validation.expression}': "
                                                     f"{reason}")
        if not outcome:
            message = validation.message
            if validation.message_program is not None:
                message = _message_expression(validation.message_program, data)
            return PolicyResult(policy.name, "fail",
                                message or f"CEL expression validation failed at index {index}")
    for key, program in expressions.audit_annotations:
        try:
            program.evaluate_prepared(data)
        except CelEvaluationError as failure:
            return PolicyResult(policy.name, "error",
                                f"failed to evaluate auditAnnotation '{key}': {failure.reason}")
    return PolicyResult(policy.name, "pass")


def _message_expression(program: Any, data: PreparedActivation) -> str:
    try:
        text = program.evaluate_prepared(data)
    except CelEvaluationError as failure:
        return f"failed to evaluate message expression: {failure.reason}"
    if not isinstance(text, str):
        return f"failed to convert message expression to string: got {type(text).__name__}"
    return text


def _error(expression: str, failure: CelEvaluationError) -> str:
    return f"expression '{expression}' resulted in error: {failure.reason}"


class KyvernoValidatingEngine:
    """The `kyverno-validating` engine. `filters` are the installation's, as for the `kyverno`
    engine; the default is a Helm install's."""

    name = "kyverno-validating"

    def __init__(self, filters: AdmissionFilters = HELM_INSTALL) -> None:
        self.filters = filters

    def accepts(self, document: dict[str, Any]) -> bool:
        """ValidatingPolicy and NamespacedValidatingPolicy documents."""
        group, _, version = str(document.get("apiVersion", "")).rpartition("/")
        return group == _GROUP and version in _VERSIONS and document.get("kind") in _KINDS

    def load(self, documents: list[tuple[str, dict[str, Any]]]) -> KyvernoValidatingPolicySet:
        """Compile every policy and its autogen copies; EngineError when one cannot be evaluated."""
        policies = [_compile(source, document) for source, document in documents
                    if self.accepts(document)]
        return KyvernoValidatingPolicySet(sorted(policies, key=lambda p: p.name), self.filters)


def _compile(source: str, document: dict[str, Any]) -> _Policy:
    metadata = document.get("metadata") or {}
    name = str(metadata.get("name") or "")
    where = f"{document['kind']} {name!r}"
    spec = document.get("spec") or {}
    evaluation = spec.get("evaluation") or {}
    if (evaluation.get("mode") or "Kubernetes") != "Kubernetes":
        raise EngineError(source, f"{where}: evaluation.mode {evaluation['mode']!r} policies "
                                  "validate JSON payloads, not admission requests")
    if not (spec.get("matchConstraints") or {}).get("resourceRules"):
        raise EngineError(source, f"{where}: spec.matchConstraints.resourceRules is required")
    actions = spec.get("validationActions") or ["Deny"]
    if any(a not in ACTIONS for a in actions):
        raise EngineError(source, f"{where}: validationActions must be Deny, Warn or Audit")
    try:
        check_selectors(spec["matchConstraints"])
        variants = tuple(
            _Variant(variant["matchConstraints"], CelPolicyExpressions.compile(variant, _VARIABLES))
            for variant in [spec, *autogen_specs(spec)]
        )
    except CelCompileError as error:
        raise EngineError(source, f"{where}: {error.reason}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise EngineError(source, f"{where}: malformed spec ({error})") from None
    return _Policy(
        name=name,
        namespace=str(metadata.get("namespace") or "default")
        if document["kind"] == "NamespacedValidatingPolicy" else None,
        actions=tuple(ACTIONS[a] for a in actions),
        fail_on_error=(spec.get("failurePolicy") or "Fail") == "Fail",
        admission=(evaluation.get("admission") or {}).get("enabled", True) is not False,
        variants=variants,
    )


ENGINE = KyvernoValidatingEngine()
CLI_ENGINE = KyvernoValidatingEngine(AdmissionFilters())

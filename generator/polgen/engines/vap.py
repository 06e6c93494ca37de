"""Offline ValidatingAdmissionPolicy engine: policies, bindings, param objects in; violations out.

Semantics follow the API server's validating admission policy plugin:

- A policy acts only through a ValidatingAdmissionPolicyBinding (`spec.policyName`); a policy
  without one is not enforced. Each matching binding (and each of its param objects) evaluates
  the policy once.
- A request must match the policy's `matchConstraints` and the binding's `matchResources`
  (`vap_match.resources_match`): resourceRules with operations and subresources (`pods` is not
  `pods/ephemeralcontainers`; `pods/*` is both), excludeResourceRules, namespaceSelector (against
  the Namespace's labels, including `kubernetes.io/metadata.name`), objectSelector (object or old
  object labels), and matchPolicy (`Equivalent`, the default, ignores the version and maps the
  old `extensions` group; there is no discovery offline).
- matchConditions, then every validation. A false validation is a failure with its
  messageExpression (if it yields a non-blank single-line string), else its message, else
  `failed expression: <expression>`. An evaluation error (or a non-bool result) is a failure
  `expression '<expression>' resulted in error: <reason>` when failurePolicy is Fail (the default)
  and ignored when it is Ignore; so is an error in matchConditions or auditAnnotations.
- Every failure is enforced per the binding's validationActions: one Violation per action
  (Deny -> deny, Warn -> warn, Audit -> audit). Binding misconfiguration (missing params with
  parameterNotFoundAction Deny, a namespaced paramRef on a cluster-scoped request) denies under
  failurePolicy Fail regardless of the actions, as upstream does.
- Param objects: `accepts()` recognises policies and bindings only (a param object is an ordinary
  resource); pass param objects to `load()` with them — every other document is kept as a
  candidate for a binding's `paramRef` and ignored otherwise.

Violation.policy is the policy name, Violation.rule is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polgen.admission import KNOWN_KINDS, Action, AdmissionRequest, Violation
from polgen.engines.base import EngineError
from polgen.engines.cel_admission import (
    ADMISSION_VARIABLES,
    CelPolicyExpressions,
    admission_activation,
    validation_failures,
)
from polgen.engines.cel_runtime import CelCompileError, PreparedActivation
from polgen.engines.vap_match import (
    ACTIONS,
    check_selectors,
    namespace_object,
    object_labels,
    resources_match,
    selector_matches,
)

_GROUP = "admissionregistration.k8s.io"
_VERSIONS = ("v1", "v1beta1")
_POLICY, _BINDING = "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"


@dataclass(frozen=True)
class _Policy:
    name: str
    spec: dict[str, Any]
    expressions: CelPolicyExpressions

    @property
    def fail_on_error(self) -> bool:
        return (self.spec.get("failurePolicy") or "Fail") == "Fail"


@dataclass(frozen=True)
class _Binding:
    name: str
    policy: str
    spec: dict[str, Any]
    actions: tuple[Action, ...]


class VapPolicySet:
    """Compiled policies, bindings and candidate param objects."""

    def __init__(self, policies: dict[str, _Policy], bindings: list[_Binding],
                 params: list[dict[str, Any]]) -> None:
        self._policies = policies
        self._bindings = bindings
        self._params = params

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """Violations of every bound policy that matches the request."""
        violations: list[Violation] = []
        # One activation per param object, shared by the policies: the request is converted to
        # CEL once, and equal variables of different policies are evaluated once.
        activations: dict[int, PreparedActivation] = {}
        for binding in self._bindings:
            policy = self._policies.get(binding.policy)
            if policy is None or not resources_match(
                policy.spec.get("matchConstraints"), request, namespace
            ):
                continue
            if not resources_match(binding.spec.get("matchResources"), request, namespace, False):
                continue
            violations.extend(self._evaluate(policy, binding, request, namespace, activations))
        return violations

    def _evaluate(self, policy: _Policy, binding: _Binding, request: AdmissionRequest,
                  namespace: dict[str, Any] | None,
                  activations: dict[int, PreparedActivation]) -> list[Violation]:
        namespace_obj = namespace_object(request, namespace) if request.namespace else None
        try:
            param_sets = self._params_for(policy, binding, request)
        except ValueError as error:
            if not policy.fail_on_error:
                return []
            message = f"failed to configure binding: {error}"
            return [Violation(policy.name, message, "deny")]
        violations: list[Violation] = []
        for params in param_sets:
            data = activations.get(id(params))
            if data is None:
                data = activations[id(params)] = PreparedActivation(
                    ADMISSION_VARIABLES, admission_activation(request, namespace_obj, params)
                )
            for message in validation_failures(policy.expressions, data, policy.fail_on_error):
                violations.extend(Violation(policy.name, message, a) for a in binding.actions)
        return violations

    def _params_for(self, policy: _Policy, binding: _Binding,
                    request: AdmissionRequest) -> list[Any]:
        kind = policy.spec.get("paramKind")
        ref = binding.spec.get("paramRef")
        if not kind or not ref:
            return [None]
        candidates = [
            p for p in self._params
            if p.get("apiVersion") == kind.get("apiVersion") and p.get("kind") == kind.get("kind")
        ]
        known = KNOWN_KINDS.get(str(kind.get("kind")))
        namespaced = known[3] if known else any(_namespace_of(p) for p in candidates)
        namespace = ref.get("namespace") or ""
        if namespaced and not namespace:
            if not request.namespace:
                raise ValueError("cannot use a namespaced paramRef without a namespace on a "
                                 "cluster-scoped request")
            namespace = request.namespace
        found = [
            p for p in candidates
            if _namespace_of(p) == namespace
            and (ref.get("name") is None or (p.get("metadata") or {}).get("name") == ref["name"])
            and (ref.get("selector") is None or selector_matches(ref["selector"], object_labels(p)))
        ]
        if found:
            return found
        if (ref.get("parameterNotFoundAction") or "Deny") == "Allow":
            return []
        raise ValueError("no params found for policy binding with `Deny` parameterNotFoundAction")


def _namespace_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _api(document: dict[str, Any]) -> tuple[str, str]:
    group, _, version = str(document.get("apiVersion", "")).rpartition("/")
    return group, version


class VapEngine:
    """The `vap` engine (ValidatingAdmissionPolicy, admissionregistration.k8s.io v1 / v1beta1)."""

    name = "vap"

    def accepts(self, document: dict[str, Any]) -> bool:
        """Policies and bindings (param objects are passed to load() alongside)."""
        group, version = _api(document)
        return group == _GROUP and version in _VERSIONS and document.get("kind") in (
            _POLICY, _BINDING,
        )

    def load(self, documents: list[tuple[str, dict[str, Any]]]) -> VapPolicySet:
        """Compile every policy; raise EngineError for anything that cannot be evaluated."""
        policies: dict[str, _Policy] = {}
        bindings: list[_Binding] = []
        params: list[dict[str, Any]] = []
        for source, document in documents:
            if not self.accepts(document):
                params.append(document)
                continue
            name = str((document.get("metadata") or {}).get("name") or "")
            spec = document.get("spec") or {}
            if document["kind"] == _POLICY:
                policies[name] = _compile_policy(source, name, spec)
            else:
                bindings.append(_binding(source, name, spec))
        bindings.sort(key=lambda b: b.name)
        return VapPolicySet(policies, bindings, params)


def _compile_policy(source: str, name: str, spec: dict[str, Any]) -> _Policy:
    if not (spec.get("matchConstraints") or {}).get("resourceRules"):
        raise EngineError(source, f"{_POLICY} {name!r}: spec.matchConstraints.resourceRules "
                                  "is required")
    try:
        check_selectors(spec["matchConstraints"])
        expressions = CelPolicyExpressions.compile(spec, ADMISSION_VARIABLES)
    except CelCompileError as error:
        raise EngineError(source, f"{_POLICY} {name!r}: {error.reason}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise EngineError(source, f"{_POLICY} {name!r}: malformed spec ({error})") from None
    return _Policy(name, spec, expressions)


def _binding(source: str, name: str, spec: dict[str, Any]) -> _Binding:
    actions = spec.get("validationActions") or []
    unknown = [a for a in actions if a not in ACTIONS]
    if not spec.get("policyName") or not actions or unknown or {"Deny", "Warn"} <= set(actions):
        raise EngineError(source, f"{_BINDING} {name!r}: needs spec.policyName and "
                                  "validationActions from Deny, Warn, Audit (not Deny with Warn)")
    try:
        check_selectors(spec.get("matchResources"))
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise EngineError(source, f"{_BINDING} {name!r}: malformed spec ({error})") from None
    return _Binding(name, str(spec["policyName"]), spec, tuple(ACTIONS[a] for a in actions))


ENGINE = VapEngine()

"""Pod Security Admission offline: Namespace labels pick a PSS level per mode; requests are judged.

Mirrors k8s.io/pod-security-admission's admission flow:
- Pods (and every pod subresource except exec, attach, binding, eviction, log, portforward,
  proxy, status) get enforce (action `deny`), audit (`audit`) and warn (`warn`); warn is
  dropped when enforce already denies. A Pod UPDATE is judged only when it is significant:
  container / initContainer count or image changed, or an ephemeral container added or its
  image changed (`kubectl debug` is a pods/ephemeralcontainers UPDATE). An UPDATE without an
  old object is judged (an offline request may lack it; judging is the safe side).
- Workloads (Deployment, DaemonSet, StatefulSet, ReplicaSet, ReplicationController, Job,
  CronJob, PodTemplate) get audit and warn on their pod template, never enforce; their
  subresources are ignored.
- Exemptions (usernames, runtimeClasses, namespaces) skip every mode.

A Violation's `policy` is `PodSecurity <level>:<version>` of the mode that failed, its `rule`
the failing check IDs, and its `message` upstream's text: `violates PodSecurity "..."` for
deny, `would violate PodSecurity "..."` for audit and warn.

The namespace policy comes from the `namespace` passed to `review` when it carries any
pod-security label, else from the loaded Namespace of the request's namespace, else from the
configured defaults (an unlabelled namespace). `polgen scan --pss level:version` uses
`LevelPolicySet` / `review_at_level` instead: one level for every Pod and pod template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polgen.admission import Action, AdmissionRequest, Violation
from polgen.engines.base import EngineError
from polgen.engines.pss import (
    LEVELS,
    MAX_MINOR,
    PssFailure,
    evaluate_pod,
    format_message,
    format_warning,
    is_valid_version,
    pod_template,
)
from polgen.engines.pss_defaults import with_host_network_ports
from polgen.engines.pss_pod import Json, dict_items, mapping, name_of, text

LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
_STRICTNESS = {level: rank for rank, level in enumerate(LEVELS)}
IGNORED_POD_SUBRESOURCES = frozenset(
    {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
)
CONTROLLER_RESOURCES = frozenset({
    ("", "replicationcontrollers"), ("", "podtemplates"), ("apps", "replicasets"),
    ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("batch", "cronjobs"),
})


@dataclass(frozen=True)
class LevelVersion:
    level: str = "privileged"
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class NamespacePolicy:
    """The level:version of each mode; the default is privileged:latest everywhere."""

    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    def fully_privileged(self) -> bool:
        return all(lv.level == "privileged" for lv in (self.enforce, self.audit, self.warn))


@dataclass(frozen=True)
class Exemptions:
    """PodSecurityConfiguration exemptions: exact names, no wildcards (as upstream)."""

    usernames: frozenset[str] = field(default_factory=frozenset)
    runtime_classes: frozenset[str] = field(default_factory=frozenset)
    namespaces: frozenset[str] = field(default_factory=frozenset)


def policy_from_labels(
    labels: dict[str, Any], defaults: NamespacePolicy | None = None
) -> tuple[NamespacePolicy, list[str]]:
    """PolicyToEvaluate: the namespace's policy and the label errors.

    Invalid values fall back as upstream does (enforce level to restricted, audit/warn level
    to privileged, versions to latest). Since Kubernetes 1.26 an unset warn follows a valid
    enforce label that is stricter than the default warn level.
    """
    defaults = defaults or NamespacePolicy()
    modes = {"enforce": defaults.enforce, "audit": defaults.audit, "warn": defaults.warn}
    errors: list[str] = []
    fallback = {"enforce": "restricted", "audit": "privileged", "warn": "privileged"}
    for mode in MODES:
        level_key, version_key = f"{LABEL_PREFIX}{mode}", f"{LABEL_PREFIX}{mode}-version"
        level, version = modes[mode].level, modes[mode].version
        if level_key in labels:
            level = text(labels[level_key])
            if level not in LEVELS:
                errors.append(_invalid(level_key, level, f"must be one of {', '.join(LEVELS)}"))
                level = fallback[mode]
        if version_key in labels:
            version = text(labels[version_key])
            if not is_valid_version(version):
                errors.append(_invalid(version_key, version, 'must be "latest" or "v1.x"'))
                version = "latest"
        modes[mode] = LevelVersion(level, version)
    enforce_set = text(labels.get(f"{LABEL_PREFIX}enforce")) in LEVELS
    if (
        f"{LABEL_PREFIX}warn" not in labels and enforce_set
        and _STRICTNESS[modes["enforce"].level] > _STRICTNESS[modes["warn"].level]
    ):
        own_version = f"{LABEL_PREFIX}warn-version" in labels
        warn_version = modes["warn"].version if own_version else modes["enforce"].version
        modes["warn"] = LevelVersion(modes["enforce"].level, warn_version)
    return NamespacePolicy(**modes), errors


def _invalid(key: str, value: str, reason: str) -> str:
    return f'metadata.labels[{key}]: Invalid value: "{value}": {reason}'


def _significant_pod_update(new_spec: Json, old_spec: Json) -> bool:
    """isSignificantPodUpdate: only image and container-count changes reach the checks."""
    for list_name in ("containers", "initContainers"):
        new, old = dict_items(new_spec.get(list_name)), dict_items(old_spec.get(list_name))
        if len(new) != len(old):
            return True
        if any(n.get("image") != o.get("image") for n, o in zip(new, old, strict=True)):
            return True
    previous: dict[str, Json] = {}
    for container in dict_items(old_spec.get("ephemeralContainers")):
        previous.setdefault(name_of(container), container)
    return any(
        name_of(c) not in previous or previous[name_of(c)].get("image") != c.get("image")
        for c in dict_items(new_spec.get("ephemeralContainers"))
    )


def _pod_update_ignored(request: AdmissionRequest) -> bool:
    """A Pod request PSA lets through unjudged (ignored subresource, insignificant UPDATE)."""
    if request.sub_resource in IGNORED_POD_SUBRESOURCES:
        return True
    if request.operation != "UPDATE" or not isinstance(request.old_object, dict):
        return False
    new_spec = mapping(mapping(request.object).get("spec"))
    return not _significant_pod_update(new_spec, mapping(request.old_object.get("spec")))


def _is_pod(request: AdmissionRequest) -> bool:
    return (request.group, request.resource) == ("", "pods")


def _subject(request: AdmissionRequest) -> Json | None:
    """The pod PSA judges: a Pod's own metadata and spec (after the API server's hostNetwork
    port defaulting, which Pods get and templates do not), or a workload's pod template."""
    obj = mapping(request.object)
    if _is_pod(request):
        pod = {"metadata": mapping(obj.get("metadata")), "spec": mapping(obj.get("spec"))}
        return with_host_network_ports(pod)
    return pod_template(obj)


def _violation(lv: LevelVersion, failures: list[PssFailure], action: Action) -> Violation:
    text_of = format_message if action == "deny" else format_warning
    return Violation(
        policy=f"PodSecurity {lv}",
        message=text_of(lv.level, lv.version, failures),
        action=action,
        rule=", ".join(f.check for f in failures),
    )


def review_at_level(
    request: AdmissionRequest, level: str, version: str, *, max_minor: int = MAX_MINOR
) -> list[Violation]:
    """Judge a Pod or a workload's pod template at one level:version, as a `deny` (for scans).

    No namespace, mode or exemption is involved: the question is whether the pod would be
    admitted at that level. Pod UPDATEs follow the same significance rule as admission.
    """
    if request.operation not in ("CREATE", "UPDATE") or not isinstance(request.object, dict):
        return []
    if _is_pod(request) and _pod_update_ignored(request):
        return []
    pod = _subject(request)
    if pod is None:
        return []
    failures = evaluate_pod(level, version, pod, max_minor=max_minor)
    return [_violation(LevelVersion(level, version), failures, "deny")] if failures else []


class LevelPolicySet:
    """A PolicySet judging every request at one level:version (`polgen scan --pss`)."""

    def __init__(self, level: str, version: str, *, max_minor: int = MAX_MINOR) -> None:
        if level not in LEVELS or not is_valid_version(version):
            raise ValueError(f"invalid Pod Security level:version {level}:{version}")
        self.level = level
        self.version = version
        self.max_minor = max_minor

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """`review_at_level`; the namespace plays no part."""
        return review_at_level(request, self.level, self.version, max_minor=self.max_minor)


class PodSecurityPolicySet:
    """Loaded Namespace policies plus the admission configuration (defaults, exemptions)."""

    def __init__(
        self, namespaces: dict[str, NamespacePolicy], defaults: NamespacePolicy,
        exemptions: Exemptions, max_minor: int,
    ) -> None:
        self.namespaces = namespaces
        self.defaults = defaults
        self.exemptions = exemptions
        self.max_minor = max_minor

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """Upstream's Validate for pods and pod controllers; every other request passes."""
        if request.operation not in ("CREATE", "UPDATE") or not isinstance(request.object, dict):
            return []
        is_pod = _is_pod(request)
        if not is_pod and (request.group, request.resource) not in CONTROLLER_RESOURCES:
            return []
        if _pod_update_ignored(request) if is_pod else bool(request.sub_resource):
            return []
        if self._exempt_request(request):
            return []
        policy = self._policy(request.namespace, namespace)
        if policy.fully_privileged():
            return []
        if not is_pod and policy.audit.level == policy.warn.level == "privileged":
            return []
        pod = _subject(request)
        if pod is None:
            return []
        runtime_class = text(mapping(pod["spec"]).get("runtimeClassName"))
        if runtime_class and runtime_class in self.exemptions.runtime_classes:
            return []
        return self._evaluate(pod, policy, enforce=is_pod)

    def _exempt_request(self, request: AdmissionRequest) -> bool:
        username = text(mapping(request.user_info).get("username"))
        return (
            (bool(request.namespace) and request.namespace in self.exemptions.namespaces)
            or username in self.exemptions.usernames
        )

    def _policy(self, name: str, namespace: dict[str, Any] | None) -> NamespacePolicy:
        labels = mapping(mapping(mapping(namespace).get("metadata")).get("labels"))
        if any(str(key).startswith(LABEL_PREFIX) for key in labels):
            return policy_from_labels(labels, self.defaults)[0]
        return self.namespaces.get(name, self.defaults)

    def _evaluate(self, pod: Json, policy: NamespacePolicy, *, enforce: bool) -> list[Violation]:
        cache: dict[LevelVersion, list[PssFailure]] = {}

        def failures(lv: LevelVersion) -> list[PssFailure]:
            if lv not in cache:
                cache[lv] = evaluate_pod(lv.level, lv.version, pod, max_minor=self.max_minor)
            return cache[lv]

        violations = []
        if enforce and failures(policy.enforce):
            violations.append(_violation(policy.enforce, failures(policy.enforce), "deny"))
        if failures(policy.audit):
            violations.append(_violation(policy.audit, failures(policy.audit), "audit"))
        denied = bool(violations) and violations[0].action == "deny"
        if not denied and failures(policy.warn):
            violations.append(_violation(policy.warn, failures(policy.warn), "warn"))
        return violations


class PodSecurityAdmissionEngine:
    """Engine `psa`: v1 Namespaces carrying pod-security.kubernetes.io labels are its policies."""

    name = "psa"

    def __init__(
        self, exemptions: Exemptions | None = None, defaults: NamespacePolicy | None = None,
        max_minor: int = MAX_MINOR,
    ) -> None:
        """`defaults`, `exemptions`: the PodSecurityConfiguration; `max_minor`: emulated release."""
        self.exemptions = exemptions or Exemptions()
        self.defaults = defaults or NamespacePolicy()
        self.max_minor = max_minor

    def accepts(self, document: dict[str, Any]) -> bool:
        if document.get("apiVersion") != "v1" or document.get("kind") != "Namespace":
            return False
        labels = mapping(mapping(document.get("metadata")).get("labels"))
        return any(str(key).startswith(LABEL_PREFIX) for key in labels)

    def load(self, documents: list[tuple[str, dict[str, Any]]]) -> PodSecurityPolicySet:
        """Namespaces with invalid labels are errors: the API server refuses to create them."""
        namespaces: dict[str, NamespacePolicy] = {}
        for source, document in documents:
            if not self.accepts(document):
                raise EngineError(source, "not a v1 Namespace with Pod Security labels")
            metadata = mapping(document.get("metadata"))
            name = text(metadata.get("name"))
            if not name:
                raise EngineError(source, "Namespace without metadata.name")
            policy, errors = policy_from_labels(mapping(metadata.get("labels")), self.defaults)
            if errors:
                raise EngineError(source, f'Namespace "{name}" is invalid: {"; ".join(errors)}')
            if namespaces.get(name, policy) != policy:
                raise EngineError(source, f'Namespace "{name}" defined twice, labels differ')
            namespaces[name] = policy
        return PodSecurityPolicySet(namespaces, self.defaults, self.exemptions, self.max_minor)


ENGINE = PodSecurityAdmissionEngine()

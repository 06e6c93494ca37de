"""Which admission requests an installed Kyverno never evaluates.

Before any policy runs, Kyverno's webhook handler admits a request outright when its user is
in an excluded group (ConfigMap `excludeGroups`, chart default `system:nodes`) or when the
request matches an entry of the ConfigMap's `resourceFilters` (pkg/webhooks/handlers/filter.go,
pkg/config/config.go ToFilter); the API server does not even send requests from namespaces the
webhook's namespaceSelector excludes. `kyverno test` and `kyverno apply` have none of this.

A filter `[kind,namespace,name]` parses its kind like a match kind (`Pod`, `Pod/binding`,
`*/*` = every kind and subresource) and compares every part with Kyverno's wildcards, against
the request's top-level kind (a `pods/ephemeralcontainers` request is kind Pod, subresource
`ephemeralcontainers`); a Namespace request is also filtered when its name matches the
namespace part, so `[*/*,kube-system,*]` covers the kube-system Namespace itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_match import parse_kind_selector
from polgen.engines.kyverno_scalars import wildcard_match

_ENTRY = re.compile(r"\[([^\[\]]*)\]")

DEFAULT_RESOURCE_FILTERS: tuple[str, ...] = (
    "[*/*,kyverno,*]",
    "[Event,*,*]",
    "[*/*,kube-system,*]",
    "[*/*,kube-public,*]",
    "[*/*,kube-node-lease,*]",
    "[Node,*,*]",
    "[Node/?*,*,*]",
    "[APIService,*,*]",
    "[APIService/?*,*,*]",
    "[TokenReview,*,*]",
    "[SubjectAccessReview,*,*]",
    "[SelfSubjectAccessReview,*,*]",
    "[Binding,*,*]",
    "[Pod/binding,*,*]",
    "[ReplicaSet,*,*]",
    "[ReplicaSet/?*,*,*]",
    "[EphemeralReport,*,*]",
    "[ClusterEphemeralReport,*,*]",
    "[ClusterRole,*,kyverno:admission-controller]",
    "[ClusterRole,*,kyverno:admission-controller:core]",
    "[ClusterRole,*,kyverno:admission-controller:additional]",
    "[ClusterRole,*,kyverno:background-controller]",
    "[ClusterRole,*,kyverno:background-controller:core]",
    "[ClusterRole,*,kyverno:background-controller:additional]",
    "[ClusterRole,*,kyverno:cleanup-controller]",
    "[ClusterRole,*,kyverno:cleanup-controller:core]",
    "[ClusterRole,*,kyverno:cleanup-controller:additional]",
    "[ClusterRole,*,kyverno:reports-controller]",
    "[ClusterRole,*,kyverno:reports-controller:core]",
    "[ClusterRole,*,kyverno:reports-controller:additional]",
    "[ClusterRoleBinding,*,kyverno:admission-controller]",
    "[ClusterRoleBinding,*,kyverno:background-controller]",
    "[ClusterRoleBinding,*,kyverno:cleanup-controller]",
    "[ClusterRoleBinding,*,kyverno:reports-controller]",
    "[ServiceAccount,kyverno,kyverno-admission-controller]",
    "[ServiceAccount/?*,kyverno,kyverno-admission-controller]",
    "[ServiceAccount,kyverno,kyverno-background-controller]",
    "[ServiceAccount/?*,kyverno,kyverno-background-controller]",
    "[ServiceAccount,kyverno,kyverno-cleanup-controller]",
    "[ServiceAccount/?*,kyverno,kyverno-cleanup-controller]",
    "[ServiceAccount,kyverno,kyverno-reports-controller]",
    "[ServiceAccount/?*,kyverno,kyverno-reports-controller]",
    "[Role,kyverno,kyverno:admission-controller]",
    "[Role,kyverno,kyverno:background-controller]",
    "[Role,kyverno,kyverno:cleanup-controller]",
    "[Role,kyverno,kyverno:reports-controller]",
    "[RoleBinding,kyverno,kyverno:admission-controller]",
    "[RoleBinding,kyverno,kyverno:background-controller]",
    "[RoleBinding,kyverno,kyverno:cleanup-controller]",
    "[RoleBinding,kyverno,kyverno:reports-controller]",
    "[ConfigMap,kyverno,kyverno]",
    "[ConfigMap,kyverno,kyverno-metrics]",
    "[Deployment,kyverno,kyverno-admission-controller]",
    "[Deployment/?*,kyverno,kyverno-admission-controller]",
    "[Deployment,kyverno,kyverno-background-controller]",
    "[Deployment/?*,kyverno,kyverno-background-controller]",
    "[Deployment,kyverno,kyverno-cleanup-controller]",
    "[Deployment/?*,kyverno,kyverno-cleanup-controller]",
    "[Deployment,kyverno,kyverno-reports-controller]",
    "[Deployment/?*,kyverno,kyverno-reports-controller]",
    "[Pod,kyverno,kyverno-admission-controller-*]",
    "[Pod/?*,kyverno,kyverno-admission-controller-*]",
    "[Pod,kyverno,kyverno-background-controller-*]",
    "[Pod/?*,kyverno,kyverno-background-controller-*]",
    "[Pod,kyverno,kyverno-cleanup-controller-*]",
    "[Pod/?*,kyverno,kyverno-cleanup-controller-*]",
    "[Pod,kyverno,kyverno-reports-controller-*]",
    "[Pod/?*,kyverno,kyverno-reports-controller-*]",
    "[Job,kyverno,kyverno-hook-pre-delete]",
    "[Job/?*,kyverno,kyverno-hook-pre-delete]",
    "[NetworkPolicy,kyverno,kyverno-admission-controller]",
    "[NetworkPolicy/?*,kyverno,kyverno-admission-controller]",
    "[NetworkPolicy,kyverno,kyverno-background-controller]",
    "[NetworkPolicy/?*,kyverno,kyverno-background-controller]",
    "[NetworkPolicy,kyverno,kyverno-cleanup-controller]",
    "[NetworkPolicy/?*,kyverno,kyverno-cleanup-controller]",
    "[NetworkPolicy,kyverno,kyverno-reports-controller]",
    "[NetworkPolicy/?*,kyverno,kyverno-reports-controller]",
    "[PodDisruptionBudget,kyverno,kyverno-admission-controller]",
    "[PodDisruptionBudget/?*,kyverno,kyverno-admission-controller]",
    "[PodDisruptionBudget,kyverno,kyverno-background-controller]",
    "[PodDisruptionBudget/?*,kyverno,kyverno-background-controller]",
    "[PodDisruptionBudget,kyverno,kyverno-cleanup-controller]",
    "[PodDisruptionBudget/?*,kyverno,kyverno-cleanup-controller]",
    "[PodDisruptionBudget,kyverno,kyverno-reports-controller]",
    "[PodDisruptionBudget/?*,kyverno,kyverno-reports-controller]",
    "[Service,kyverno,kyverno-svc]",
    "[Service/?*,kyverno,kyverno-svc]",
    "[Service,kyverno,kyverno-svc-metrics]",
    "[Service/?*,kyverno,kyverno-svc-metrics]",
    "[Service,kyverno,kyverno-background-controller-metrics]",
    "[Service/?*,kyverno,kyverno-background-controller-metrics]",
    "[Service,kyverno,kyverno-cleanup-controller]",
    "[Service/?*,kyverno,kyverno-cleanup-controller]",
    "[Service,kyverno,kyverno-cleanup-controller-metrics]",
    "[Service/?*,kyverno,kyverno-cleanup-controller-metrics]",
    "[Service,kyverno,kyverno-reports-controller-metrics]",
    "[Service/?*,kyverno,kyverno-reports-controller-metrics]",
    "[ServiceMonitor,kyverno,kyverno-admission-controller]",
    "[ServiceMonitor,kyverno,kyverno-background-controller]",
    "[ServiceMonitor,kyverno,kyverno-cleanup-controller]",
    "[ServiceMonitor,kyverno,kyverno-reports-controller]",
    "[Secret,kyverno,kyverno-svc.kyverno.svc.*]",
    "[Secret,kyverno,kyverno-cleanup-controller.kyverno.svc.*]",
)
"""charts/kyverno values.yaml `config.resourceFilters` as a default install renders them
(release `kyverno` in namespace `kyverno`, `excludeKyvernoNamespace: true` prepends the first)."""

DEFAULT_WEBHOOK_EXCLUDED_NAMESPACES: tuple[str, ...] = ("kube-system", "kyverno")
"""The chart's webhook namespaceSelector: `kubernetes.io/metadata.name NotIn` these."""

DEFAULT_EXCLUDED_GROUPS: tuple[str, ...] = ("system:nodes",)
"""The chart's `config.excludeGroups`: requests by kubelets are never evaluated."""


@dataclass(frozen=True)
class ResourceFilter:
    """One parsed `[kind,namespace,name]` entry."""

    group: str
    version: str
    kind: str
    subresource: str
    namespace: str
    name: str


def parse_resource_filters(entries: Sequence[str]) -> tuple[ResourceFilter, ...]:
    """Kyverno's parseKinds over the joined entries: `[kind]`, `[kind,namespace]` or
    `[kind,namespace,name]`; an entry with more parts repeats the previous one (Go keeps the
    last parsed filter in a variable outside its loop)."""
    parsed: list[ResourceFilter] = []
    current = ResourceFilter("", "", "", "", "", "")
    for found in _ENTRY.finditer("".join(entries)):
        parts = found.group(1).split(",")
        if len(parts) <= 3:
            kind, namespace, name = [*parts, "", ""][:3]
            current = _filter(kind, namespace, name)
        parsed.append(current)
    return tuple(parsed)


def _filter(kind: str, namespace: str, name: str) -> ResourceFilter:
    if not kind:
        return ResourceFilter("", "", "", "", "", "")
    group, version, kind_name, subresource = parse_kind_selector(kind)
    return ResourceFilter(group, version, kind_name, subresource, namespace, name)


@dataclass(frozen=True)
class AdmissionFilters:
    """The filters of one Kyverno installation (all empty: the CLI, which has none)."""

    resource_filters: tuple[ResourceFilter, ...] = ()
    excluded_namespaces: tuple[str, ...] = ()
    excluded_groups: tuple[str, ...] = ()

    @classmethod
    def of_install(
        cls,
        resource_filters: Sequence[str] = DEFAULT_RESOURCE_FILTERS,
        excluded_namespaces: Sequence[str] = DEFAULT_WEBHOOK_EXCLUDED_NAMESPACES,
        excluded_groups: Sequence[str] = DEFAULT_EXCLUDED_GROUPS,
    ) -> AdmissionFilters:
        """The filters of an installation's ConfigMap and webhook (defaults: the Helm chart's)."""
        return cls(
            parse_resource_filters(resource_filters),
            tuple(excluded_namespaces),
            tuple(excluded_groups),
        )

    def skips(self, request: KyvernoRequest) -> bool:
        """Is the request admitted before any policy sees it?"""
        groups = [str(g) for g in (request.user_info or {}).get("groups") or []]
        if any(wildcard_match(p, g) for p in self.excluded_groups for g in groups):
            return True
        if any(_filters(f, request) for f in self.resource_filters):
            return True
        namespace = request.name if _is_namespace(request) else request.namespace
        return bool(namespace) and namespace in self.excluded_namespaces


HELM_INSTALL = AdmissionFilters.of_install()
"""The filters of a default Helm install of Kyverno (what the engines assume unless told)."""


def _is_namespace(request: KyvernoRequest) -> bool:
    return (request.group, request.version, request.kind) == ("", "v1", "Namespace")


def _filters(entry: ResourceFilter, request: KyvernoRequest) -> bool:
    """configuration.ToFilter for one entry."""
    if not (
        wildcard_match(entry.group, request.group)
        and wildcard_match(entry.version, request.version)
        and wildcard_match(entry.kind, request.kind)
        and wildcard_match(entry.subresource, request.subresource)
    ):
        return False
    if wildcard_match(entry.namespace, request.namespace) and wildcard_match(
        entry.name, request.name
    ):
        return True
    return _is_namespace(request) and wildcard_match(entry.namespace, request.name)

"""Resolve a fleet against a catalog into per-cluster plans: concrete, validated bindings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polgen.bundles import BUNDLE_PREFIX
from polgen.catalog import Catalog, Policy
from polgen.errors import PolgenError, Problem
from polgen.fleet import (
    Action,
    Cluster,
    Fleet,
    GatekeeperSettings,
    KyvernoFlavor,
    NamespaceGroup,
    PodSecurityLabels,
)
from polgen.yamlio import LineMap, line_for

ALL_POLICIES = "*"


@dataclass(frozen=True)
class Binding:
    """One catalog policy applied to one namespace group of one cluster."""

    cluster: str
    group: str
    policy: Policy
    parameters: dict[str, Any]
    action: Action
    namespaces: tuple[str, ...]
    """Exact namespace names; empty means every namespace not excluded."""
    excluded_namespaces: tuple[str, ...]
    exempt_images: tuple[str, ...]

    @property
    def name(self) -> str:
        """Stable resource name, unique within a cluster."""
        return f"{self.policy.id}-{self.group}"


@dataclass(frozen=True)
class NamespaceSecurity:
    """Pod Security Admission labels wanted on one namespace."""

    namespace: str
    group: str
    labels: PodSecurityLabels


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    description: str
    targets: tuple[str, ...]
    kyverno_flavor: KyvernoFlavor
    bindings: tuple[Binding, ...]
    namespaces: tuple[NamespaceSecurity, ...]
    gatekeeper: GatekeeperSettings = field(default_factory=GatekeeperSettings)

    def policies(self) -> list[Policy]:
        """Each bound policy once, by id."""
        seen = {binding.policy.id: binding.policy for binding in self.bindings}
        return [seen[key] for key in sorted(seen)]


class _Planner:
    def __init__(
        self, fleet: Fleet, lines: LineMap, file: Path, catalog: Catalog, known_targets: list[str]
    ) -> None:
        self.fleet = fleet
        self.lines = lines
        self.file = file
        self.catalog = catalog
        self.known_targets = known_targets
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        where = ".".join(str(p) for p in path)
        self.problems.append(Problem(str(self.file), message, line_for(self.lines, path), where))

    def check_parameters(
        self, path: tuple[str | int, ...], values: dict[str, dict[str, Any]]
    ) -> None:
        for policy_id, params in values.items():
            if policy_id not in self.catalog.entries:
                self.problem((*path, policy_id), f"parameters for unknown policy {policy_id!r}")
                continue
            declared = self.catalog.get(policy_id).parameters
            for name, value in params.items():
                if name not in declared:
                    expected = ", ".join(sorted(declared)) or "none"
                    self.problem(
                        (*path, policy_id, name),
                        f"policy {policy_id!r} has no parameter {name!r}"
                        f" (expected one of: {expected})",
                    )
                    continue
                reason = declared[name].type_problem(value)
                if reason:
                    self.problem((*path, policy_id, name), f"parameter {name!r} {reason}")

    def bundle_labels(self, group: NamespaceGroup) -> PodSecurityLabels | None:
        """Without explicit podSecurity labels, a group using a Pod Security bundle gets the
        matching PSA label for its action, so PSA and the engines enforce the same level."""
        levels = [
            self.catalog.bundles[entry.removeprefix(BUNDLE_PREFIX)].podSecurityLevel
            for entry in group.policies
            if entry.startswith(BUNDLE_PREFIX)
            and entry.removeprefix(BUNDLE_PREFIX) in self.catalog.bundles
        ]
        known = [level for level in levels if level is not None]
        if not known or group.is_catch_all:
            return None
        level = "restricted" if "restricted" in known else "baseline"
        version = group.podSecurityVersion
        return PodSecurityLabels.model_validate(
            {group.action: level, f"{group.action}Version": version}
        )

    def policy_ids(
        self, path: tuple[str | int, ...], group: NamespaceGroup
    ) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The group's policy ids, and the parameter values its bundles set."""
        ids: list[str] = []
        bundle_params: dict[str, dict[str, Any]] = {}
        for index, entry in enumerate(group.policies):
            if entry == ALL_POLICIES:
                ids.extend(k for k, v in self.catalog.entries.items() if not v.policy.optIn)
            elif entry.startswith(BUNDLE_PREFIX):
                bundle_id = entry.removeprefix(BUNDLE_PREFIX)
                if bundle_id not in self.catalog.bundles:
                    known = ", ".join(sorted(self.catalog.bundles)) or "none"
                    self.problem(
                        (*path, "policies", index),
                        f"unknown bundle {bundle_id!r} (expected one of: {known})",
                    )
                    continue
                ids.extend(self.catalog.bundle_policies(bundle_id, group.podSecurityVersion))
                for policy_id, values in self.catalog.bundles[bundle_id].parameters.items():
                    bundle_params.setdefault(policy_id, {}).update(values)
            elif entry in self.catalog.entries:
                ids.append(entry)
            else:
                known = ", ".join(sorted(self.catalog.entries))
                self.problem(
                    (*path, "policies", index),
                    f"unknown policy {entry!r} (expected '*', 'bundle:<id>' or one of: {known})",
                )
        return sorted(set(ids)), bundle_params

    def cluster(self, index: int, cluster: Cluster) -> ClusterPlan:
        path: tuple[str | int, ...] = ("clusters", index)
        targets = cluster.targets if cluster.targets is not None else self.known_targets
        for t_index, target in enumerate(targets):
            if target not in self.known_targets:
                self.problem(
                    (*path, "targets", t_index),
                    f"unknown target {target!r} (expected one of: {', '.join(self.known_targets)})",
                )
        owners: dict[str, str] = {}
        named: set[str] = set()
        catch_all = [g for g in cluster.namespaceGroups if g.is_catch_all]
        if len(catch_all) > 1:
            self.problem((*path, "namespaceGroups"), "at most one group may use namespaces ['*']")
        group_names: set[str] = set()
        for g_index, group in enumerate(cluster.namespaceGroups):
            g_path = (*path, "namespaceGroups", g_index)
            if group.name in group_names:
                self.problem((*g_path, "name"), f"duplicate namespace group name {group.name!r}")
            group_names.add(group.name)
            for ns in group.namespaces:
                if ns == "*":
                    continue
                if ns in owners:
                    self.problem(
                        (*g_path, "namespaces"),
                        f"namespace {ns!r} is already in group {owners[ns]!r}; a namespace belongs"
                        " to one group per cluster",
                    )
                owners[ns] = group.name
                named.add(ns)
        bindings: list[Binding] = []
        namespaces: list[NamespaceSecurity] = []
        for g_index, group in enumerate(cluster.namespaceGroups):
            g_path = (*path, "namespaceGroups", g_index)
            self.check_parameters((*g_path, "parameters"), group.parameters)
            if group.is_catch_all:
                selected: tuple[str, ...] = ()
                excluded = tuple(sorted(set(group.exemptions.namespaces) | named))
            else:
                selected = tuple(sorted(set(group.namespaces) - set(group.exemptions.namespaces)))
                excluded = ()
                if not selected:
                    self.problem(
                        (*g_path, "exemptions", "namespaces"),
                        "exempts every namespace of the group; remove the group instead",
                    )
                    continue
            policy_ids, bundle_params = self.policy_ids(g_path, group)
            for policy_id in policy_ids:
                policy = self.catalog.get(policy_id)
                params = policy.default_parameters(group.podSecurityVersion)
                params.update(bundle_params.get(policy_id, {}))
                params.update(self.fleet.parameters.get(policy_id, {}))
                params.update(group.parameters.get(policy_id, {}))
                bindings.append(
                    Binding(
                        cluster=cluster.name,
                        group=group.name,
                        policy=policy,
                        parameters=params,
                        action=group.action,
                        namespaces=selected,
                        excluded_namespaces=excluded,
                        exempt_images=tuple(group.exemptions.images),
                    )
                )
            labels = group.podSecurity or self.bundle_labels(group)
            if labels is not None:
                namespaces.extend(NamespaceSecurity(ns, group.name, labels) for ns in selected)
        return ClusterPlan(
            name=cluster.name,
            description=cluster.description,
            targets=tuple(t for t in self.known_targets if t in targets),
            kyverno_flavor=cluster.kyvernoFlavor,
            bindings=tuple(sorted(bindings, key=lambda b: (b.policy.id, b.group))),
            namespaces=tuple(sorted(namespaces, key=lambda n: n.namespace)),
            gatekeeper=cluster.gatekeeper,
        )

    def run(self) -> list[ClusterPlan]:
        self.check_parameters(("parameters",), self.fleet.parameters)
        seen: set[str] = set()
        plans = []
        for index, cluster in enumerate(self.fleet.clusters):
            if cluster.name in seen:
                self.problem(
                    ("clusters", index, "name"), f"duplicate cluster name {cluster.name!r}"
                )
            seen.add(cluster.name)
            plans.append(self.cluster(index, cluster))
        if self.problems:
            raise PolgenError(self.problems)
        return plans


def plan_fleet(
    fleet: Fleet, lines: LineMap, file: Path, catalog: Catalog, known_targets: list[str]
) -> list[ClusterPlan]:
    """Validate the fleet against the catalog and expand it into one plan per cluster."""
    return _Planner(fleet, lines, file, catalog, known_targets).run()

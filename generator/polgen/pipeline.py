"""The library entry points the CLI calls: load inputs, plan, render, write or compare."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from polgen.catalog import Catalog, load_catalog
from polgen.errors import PolgenError
from polgen.fleet import KyvernoFlavor, load_fleet
from polgen.output import Selection, Staleness, compare_tree, desired_tree, render_tree, write_tree
from polgen.plan import ClusterPlan, plan_fleet
from polgen.resources import default_catalog_dir
from polgen.targets import TARGETS


@dataclass(frozen=True)
class Inputs:
    catalog: Catalog
    plans: list[ClusterPlan]


def load_inputs(catalog_dir: Path | None = None, fleet_file: Path | None = None) -> Inputs:
    """Load and cross-validate the catalog and the fleet."""
    catalog = load_catalog(catalog_dir or default_catalog_dir())
    fleet_path = fleet_file or catalog.root / "fleet.yaml"
    if not fleet_path.is_file():
        raise PolgenError.single(fleet_path, "fleet file not found (give one with --fleet)")
    fleet, lines = load_fleet(fleet_path)
    plans = plan_fleet(fleet, lines, fleet_path, catalog, list(TARGETS))
    return Inputs(catalog, plans)


def select(
    plans: list[ClusterPlan],
    clusters: tuple[str, ...],
    targets: tuple[str, ...],
    kyverno_flavor: KyvernoFlavor | None,
    gatekeeper: dict[str, bool] | None = None,
) -> tuple[list[ClusterPlan], Selection]:
    """Apply the CLI's --cluster, --target, --kyverno-flavor and --gatekeeper-* choices."""
    known = {plan.name for plan in plans}
    unknown = [name for name in clusters if name not in known]
    if unknown:
        raise PolgenError.single(
            "--cluster",
            f"unknown cluster {unknown[0]!r} (expected one of: {', '.join(sorted(known))})",
        )
    if kyverno_flavor is not None:
        plans = [dataclasses.replace(plan, kyverno_flavor=kyverno_flavor) for plan in plans]
    if gatekeeper:
        plans = [
            dataclasses.replace(plan, gatekeeper=plan.gatekeeper.model_copy(update=gatekeeper))
            for plan in plans
        ]
    selection = Selection(
        clusters=frozenset(clusters) if clusters else None,
        targets=frozenset(targets) if targets and "all" not in targets else None,
    )
    return plans, selection


def selected_plans(
    plans: list[ClusterPlan],
    clusters: tuple[str, ...],
    targets: tuple[str, ...],
    kyverno_flavor: KyvernoFlavor | None = None,
) -> list[ClusterPlan]:
    """The selected clusters, each narrowed to the selected targets (what scan and test
    evaluate)."""
    plans, selection = select(plans, clusters, targets, kyverno_flavor)
    return [
        dataclasses.replace(
            plan, targets=tuple(t for t in plan.targets if selection.owns(plan.name, t))
        )
        for plan in plans
        if selection.clusters is None or plan.name in selection.clusters
    ]


def render_out(
    inputs: Inputs, selection: Selection, out_dir: Path, plans: list[ClusterPlan]
) -> dict[str, str]:
    """Render the selection and write the whole `out/` atomically; returns the written tree."""
    tree = desired_tree(out_dir, render_tree(plans, TARGETS, selection), selection, inputs.plans)
    write_tree(out_dir, tree)
    return tree


def check_out(
    inputs: Inputs, selection: Selection, out_dir: Path, plans: list[ClusterPlan]
) -> Staleness:
    """Render in memory and report how `out/` differs."""
    tree = desired_tree(out_dir, render_tree(plans, TARGETS, selection), selection, inputs.plans)
    return compare_tree(out_dir, tree)

"""The `polgen` command line: parses options and calls the library; nothing else."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from polgen import __version__
from polgen.catalog import load_catalog
from polgen.errors import PolgenError
from polgen.pipeline import check_out, load_inputs, render_out, select
from polgen.policy_list import policy_table
from polgen.resources import default_catalog_dir
from polgen.targets import TARGETS

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


def reports_user_errors(func: F) -> F:
    """Print user errors one per line, exit 2, and never show a traceback for them."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PolgenError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return cast(F, wrapper)


catalog_option = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Catalog folder (policies/<id>/policy.yaml). Default: the catalog shipped with polgen.",
)
fleet_option = click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Fleet file. Default: fleet.yaml in the catalog folder.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="polgen")
def main() -> None:
    """Render one engine-neutral policy catalog into Gatekeeper, Kyverno, Pod Security Admission
    and ValidatingAdmissionPolicy, for every cluster of a fleet.

    Exit codes: 0 success, 1 check failed (render --check found out/ stale), 2 bad input or usage.
    """


@main.command()
@catalog_option
@fleet_option
@click.option(
    "--target",
    "targets",
    multiple=True,
    type=click.Choice([*TARGETS, "all"]),
    help="Target to render (repeatable). Default: all targets each cluster selects.",
)
@click.option(
    "--cluster", "clusters", multiple=True, help="Cluster to render (repeatable). Default: all."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out"),
    show_default=True,
    help="Output folder; written atomically as out/<cluster>/<target>/.",
)
@click.option(
    "--kyverno-flavor",
    type=click.Choice(["ClusterPolicy", "ValidatingPolicy"]),
    help="Override every cluster's kyvernoFlavor (kyverno.io/v1 ClusterPolicy or"
    " policies.kyverno.io/v1 ValidatingPolicy).",
)
@click.option("--check", is_flag=True, help="Render in memory; exit 1 if out/ differs (for CI).")
@reports_user_errors
def render(
    catalog_dir: Path | None,
    fleet_file: Path | None,
    targets: tuple[str, ...],
    clusters: tuple[str, ...],
    out_dir: Path,
    kyverno_flavor: Any,
    check: bool,
) -> None:
    """Render the fleet into OUT/<cluster>/<target>/ (one resource per file, kustomization.yaml in
    every folder, OUT/index.yaml listing every file with its sha256).

    Rendering a subset (--target, --cluster) replaces only those folders.
    """
    inputs = load_inputs(catalog_dir, fleet_file)
    plans, selection = select(inputs.plans, clusters, targets, kyverno_flavor)
    if check:
        staleness = check_out(inputs, selection, out_dir, plans)
        if staleness.stale:
            for label, paths in (
                ("missing", staleness.missing),
                ("changed", staleness.changed),
                ("extra", staleness.extra),
            ):
                for path in paths:
                    click.echo(f"{label}: {out_dir / path}")
            click.echo(
                f"{out_dir} is stale: {len(staleness.missing)} missing, {len(staleness.changed)}"
                f" changed, {len(staleness.extra)} extra; run 'polgen render'"
            )
            sys.exit(EXIT_CHECK_FAILED)
        click.echo(f"{out_dir} is up to date")
        return
    tree = render_out(inputs, selection, out_dir, plans)
    click.echo(f"wrote {len(tree)} files to {out_dir}")


@main.command(name="list")
@catalog_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@reports_user_errors
def list_policies(catalog_dir: Path | None, fmt: str) -> None:
    """List the catalog: levels, parameters, and which targets implement each policy."""
    catalog = load_catalog(catalog_dir or default_catalog_dir())
    rows = policy_table(catalog, TARGETS)
    if fmt == "json":
        click.echo(json.dumps({"policies": rows}, indent=2))
        return
    for row in rows:
        level = row["podSecurity"]["level"] if row["podSecurity"] else "-"
        click.echo(f"{row['id']}  [{row['severity']}, pss: {level}]  {row['title']}")
        for name, param in row["parameters"].items():
            click.echo(
                f"    param {name} ({param['type']}), default {json.dumps(param['default'])}"
            )
        for target, support in row["targets"].items():
            mark = "yes" if support["supported"] else "no "
            click.echo(f"    {target:<11} {mark} {support['reason']}".rstrip())


@main.command()
@catalog_option
@fleet_option
@reports_user_errors
def validate(catalog_dir: Path | None, fleet_file: Path | None) -> None:
    """Validate the catalog and the fleet without writing anything."""
    inputs = load_inputs(catalog_dir, fleet_file)
    bindings = sum(len(plan.bindings) for plan in inputs.plans)
    click.echo(
        f"ok: {len(inputs.catalog.entries)} policies, {len(inputs.plans)} clusters,"
        f" {bindings} bindings"
    )

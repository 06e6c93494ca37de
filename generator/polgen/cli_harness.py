"""`polgen test` and `polgen export-tests`: click commands registered on `polgen.cli.main`.

This module does not import `polgen.cli` (which registers these commands), so importing either
first works. The engines (an optional install) are imported only when a command runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from polgen.cli_common import (
    EXIT_CHECK_FAILED,
    F,
    catalog_option,
    cluster_option,
    fleet_option,
    out_option,
    reports_user_errors,
    target_option,
)
from polgen.errors import PolgenError

if TYPE_CHECKING:
    from polgen.harness import Runner
    from polgen.pipeline import Inputs
    from polgen.scenarios import ScenarioFile


ENGINES = ("offline", "kind", "kubeconfig")


def _inputs_options(func: F) -> F:
    """--catalog, --fleet, --cluster and --scenarios, shared by both commands."""
    scenarios = click.option(
        "--scenarios",
        "scenarios_dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Scenario folder. Default: scenarios/ in the catalog folder.",
    )
    return catalog_option(fleet_option(cluster_option("include")(scenarios(func))))


def _scenarios(inputs: Inputs, folder: Path | None) -> list[ScenarioFile]:
    """The given folder, else the catalog's `scenarios/` when it has one."""
    from polgen.scenarios import load_scenarios

    default = inputs.catalog.root / "scenarios"
    if folder is None and not default.is_dir():
        return []
    return load_scenarios(folder or default, inputs.catalog)


def _cluster_runner(engine: str, kubeconfig: Path | None, context: str | None) -> Runner:
    """`polgen.cluster.runner.ClusterRunner`, imported only when asked for (it needs the
    optional `kind` install and Docker)."""
    try:
        module = importlib.import_module("polgen.cluster.runner")
    except ImportError as exc:
        raise PolgenError.single(
            "--engine", f"{engine}: the cluster runner is not available ({exc})"
        ) from exc

    def progress(message: str) -> None:
        click.echo(message, err=True)

    return cast("Runner", module.ClusterRunner(engine, kubeconfig, context, progress))


@click.command(name="test")
@_inputs_options
@target_option("test")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="offline",
    show_default=True,
    help="offline: polgen's engines; kind: a throwaway kind cluster; kubeconfig: an"
    " existing cluster. A cluster engine is also compared with offline.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Kubeconfig file (--engine kubeconfig).",
)
@click.option("--context", help="Kubeconfig context (--engine kubeconfig).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "junit"]),
    default="text",
    show_default=True,
)
@reports_user_errors
def test_command(
    catalog_dir: Path | None,
    fleet_file: Path | None,
    clusters: tuple[str, ...],
    scenarios_dir: Path | None,
    targets: tuple[str, ...],
    engine: str,
    kubeconfig: Path | None,
    context: str | None,
    fmt: str,
) -> None:
    """Submit every catalog fixture and attack scenario to every target of every cluster and
    print the outcome matrix (denied / warned / admitted, by which policy, expected or not).

    Exit 0 when every outcome is what must happen, 1 when one is not (or a cluster engine
    disagrees with the offline engines), 2 for bad input.
    """
    from polgen.harness import OfflineRunner, agreement, fixture_cases, run_cases, scenario_cases
    from polgen.harness_report import FORMATS, Report
    from polgen.pipeline import load_inputs, selected_plans

    if engine != "kubeconfig" and (kubeconfig or context):
        raise PolgenError.single(
            "--kubeconfig", "--kubeconfig and --context need --engine kubeconfig"
        )
    inputs = load_inputs(catalog_dir, fleet_file)
    plans = selected_plans(inputs.plans, clusters, targets)
    cases = fixture_cases(inputs.catalog) + scenario_cases(_scenarios(inputs, scenarios_dir))
    offline = run_cases(OfflineRunner(), inputs.catalog, plans, cases)
    report = Report("offline", offline)
    if engine != "offline":
        runner = _cluster_runner(engine, kubeconfig, context)
        outcomes = run_cases(runner, inputs.catalog, plans, cases)
        report = Report(runner.name, outcomes, agreement(offline, outcomes))
    click.echo(FORMATS[fmt](report), nl=False)
    if report.failed:
        sys.exit(EXIT_CHECK_FAILED)


@click.command(name="export-tests")
@_inputs_options
@out_option("tests-export", "Output folder; replaced atomically.")
@reports_user_errors
def export_tests_command(
    catalog_dir: Path | None,
    fleet_file: Path | None,
    clusters: tuple[str, ...],
    scenarios_dir: Path | None,
    out_dir: Path,
) -> None:
    """Write engine-native test suites for each cluster: Gatekeeper `gator verify` suites and
    Kyverno CLI `kyverno-test.yaml` files, next to copies of the rendered policies, for every
    policy's fixtures and the scenarios that concern it."""
    from polgen.export_tests import export_tree
    from polgen.harness import fixture_cases, scenario_cases
    from polgen.output import write_tree
    from polgen.pipeline import load_inputs, selected_plans

    inputs = load_inputs(catalog_dir, fleet_file)
    plans = selected_plans(inputs.plans, clusters, ())
    cases = fixture_cases(inputs.catalog) + scenario_cases(_scenarios(inputs, scenarios_dir))
    tree = export_tree(plans, cases)
    write_tree(out_dir, tree)
    click.echo(f"wrote {len(tree)} files to {out_dir}")

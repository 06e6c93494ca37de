"""The `polgen` command line: parses options and calls the library; nothing else.

Commands import the library parts they use when they run, so `polgen --help` and a scan against
`--pss` or `--policies` start without loading the catalog models, Jinja and unused engines.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from polgen import __version__
from polgen.cli_common import (
    EXIT_CHECK_FAILED,
    catalog_option,
    cluster_option,
    fleet_option,
    kyverno_flavor_option,
    out_option,
    reports_user_errors,
    target_option,
)
from polgen.cli_harness import export_tests_command, test_command
from polgen.manifests import load_manifests
from polgen.reports import FORMATS, render_report


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
@target_option("render")
@cluster_option("render")
@out_option("out", "Output folder; written atomically as out/<cluster>/<target>/.")
@kyverno_flavor_option
@click.option(
    "--gatekeeper-native-validation/--no-gatekeeper-native-validation",
    default=None,
    help="Override every cluster's gatekeeper.nativeValidation: also emit CEL"
    " (K8sNativeValidation) in ConstraintTemplates.",
)
@click.option(
    "--gatekeeper-legacy-rego/--no-gatekeeper-legacy-rego",
    default=None,
    help="Override every cluster's gatekeeper.legacyRego: Rego v0 in the legacy rego field,"
    " for Gatekeeper 3.14-3.18.",
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
    gatekeeper_native_validation: bool | None,
    gatekeeper_legacy_rego: bool | None,
    check: bool,
) -> None:
    """Render the fleet into OUT/<cluster>/<target>/ (one resource per file, kustomization.yaml in
    every folder, OUT/index.yaml listing every file with its sha256).

    Rendering a subset (--target, --cluster) replaces only those folders.
    """
    from polgen.pipeline import check_out, load_inputs, render_out, select

    inputs = load_inputs(catalog_dir, fleet_file)
    overrides = {
        key: value
        for key, value in (
            ("nativeValidation", gatekeeper_native_validation),
            ("legacyRego", gatekeeper_legacy_rego),
        )
        if value is not None
    }
    plans, selection = select(inputs.plans, clusters, targets, kyverno_flavor, overrides)
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
    """List the catalog: levels, parameters, which targets implement each policy (and why
    not), and which policies each bundle (Pod Security Standards level) holds."""
    from polgen.catalog import load_catalog
    from polgen.policy_list import bundle_table, policy_table
    from polgen.resources import default_catalog_dir
    from polgen.targets import TARGETS

    catalog = load_catalog(catalog_dir or default_catalog_dir())
    rows = policy_table(catalog, TARGETS)
    bundles = bundle_table(catalog)
    if fmt == "json":
        click.echo(json.dumps({"policies": rows, "bundles": bundles}, indent=2))
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
    for bundle in bundles:
        level = bundle["podSecurityLevel"] or "-"
        click.echo(
            f"bundle:{bundle['id']}  [pss: {level}, versions {bundle['minimumVersion']}+]"
            f"  {', '.join(bundle['policies'])}"
        )


@main.command()
@catalog_option
@fleet_option
@reports_user_errors
def validate(catalog_dir: Path | None, fleet_file: Path | None) -> None:
    """Validate the catalog and the fleet without writing anything."""
    from polgen.pipeline import load_inputs

    inputs = load_inputs(catalog_dir, fleet_file)
    bindings = sum(len(plan.bindings) for plan in inputs.plans)
    click.echo(
        f"ok: {len(inputs.catalog.entries)} policies, {len(inputs.plans)} clusters,"
        f" {bindings} bindings"
    )


def _parse_pss(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    level, _, version = value.partition(":")
    if level not in ("privileged", "baseline", "restricted"):
        raise click.BadParameter(
            f"level {level!r} (expected privileged, baseline or restricted)", param_hint="--pss"
        )
    version = version or "latest"
    if version != "latest" and not re.fullmatch(r"v1\.\d+", version):
        raise click.BadParameter(
            f"version {version!r} (expected latest or v1.N)", param_hint="--pss"
        )
    return level, version


@main.command(name="scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@catalog_option
@fleet_option
@target_option("evaluate")
@cluster_option("evaluate")
@click.option(
    "--policies",
    "policy_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Evaluate against these policy files instead of the fleet: ConstraintTemplates +"
    " Constraints, ClusterPolicies, ValidatingPolicies, ValidatingAdmissionPolicies + Bindings,"
    " or Namespaces with Pod Security labels.",
)
@click.option(
    "--pss", "pss", help="Evaluate against a Pod Security Standards level: LEVEL[:VERSION]."
)
@click.option(
    "--operation",
    type=click.Choice(["CREATE", "UPDATE"]),
    default="CREATE",
    show_default=True,
    help="Operation for plain manifests (AdmissionReview documents carry their own).",
)
@kyverno_flavor_option
@click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS)), default="text", show_default=True
)
@reports_user_errors
def scan_command(
    paths: tuple[Path, ...],
    catalog_dir: Path | None,
    fleet_file: Path | None,
    targets: tuple[str, ...],
    clusters: tuple[str, ...],
    policy_files: tuple[Path, ...],
    pss: str | None,
    operation: Any,
    kyverno_flavor: Any,
    fmt: str,
) -> None:
    """Review manifests offline (files or folders; YAML, JSON, List kinds, AdmissionReviews).

    By default every resource is evaluated, in its namespace, against what every selected cluster
    enforces for every selected target, with the real Rego and CEL engines, polgen's Kyverno
    evaluator and Pod Security Standards checker. Exit 0 if every resource is allowed, 1 if any
    is denied, 2 for bad input.

    The rendered fleet and compiled CEL are cached between runs in ~/.cache/polgen, keyed by every
    input (POLGEN_CACHE_DIR=DIR moves it, POLGEN_CACHE_DIR= turns it off).
    """
    # The engines need the optional [engines] dependencies (regopy, cel-expr-python, jmespath):
    # import them only when scanning, so `polgen render` works with a plain install.
    from polgen.scan import cached_fleet_sources, policy_file_sources, pss_source, scan

    level = _parse_pss(pss)
    manifests = load_manifests(list(paths), operation)
    sources = []
    if policy_files:
        sources.extend(policy_file_sources(list(policy_files)))
    if level is not None:
        sources.append(pss_source(*level))
    if not sources:
        sources = cached_fleet_sources(catalog_dir, fleet_file, clusters, targets, kyverno_flavor)
    results = scan(manifests, sources)
    click.echo(render_report(fmt, results), nl=False)
    if any(not result.verdict.allowed for result in results):
        sys.exit(EXIT_CHECK_FAILED)


@main.command(name="docs")
@catalog_option
@out_option("docs/policies", "Folder for the generated pages (replaced atomically).")
@click.option("--check", is_flag=True, help="Exit 1 if the pages in --out are stale (for CI).")
@reports_user_errors
def docs_command(catalog_dir: Path | None, out_dir: Path, check: bool) -> None:
    """Generate one Markdown page per policy: description, parameters, allowed and disallowed
    examples, and each target's rendered output; plus an index."""
    from polgen.catalog import load_catalog
    from polgen.docs_gen import docs_tree, stale_pages
    from polgen.output import write_tree
    from polgen.resources import default_catalog_dir
    from polgen.targets import TARGETS

    catalog = load_catalog(catalog_dir or default_catalog_dir())
    pages = docs_tree(catalog, TARGETS)
    if check:
        stale = stale_pages(out_dir, pages)
        for name in stale:
            click.echo(f"stale: {out_dir / name}")
        if stale:
            click.echo(f"{out_dir} is stale; run 'polgen docs'")
            sys.exit(EXIT_CHECK_FAILED)
        click.echo(f"{out_dir} is up to date")
        return
    write_tree(out_dir, pages)
    click.echo(f"wrote {len(pages)} pages to {out_dir}")


main.add_command(test_command)
main.add_command(export_tests_command)

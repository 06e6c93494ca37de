"""What every `polgen` command shares: exit codes, the user-error handler and the options
several commands take."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from polgen.errors import PolgenError
from polgen.targets import TARGET_NAMES

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHECK_FAILED = 1
"""A check failed: render --check found out/ stale, scan denied a resource, test was unexpected."""
EXIT_BAD_INPUT = 2


ENGINES_EXTRA = frozenset({"cel_expr_python", "regopy", "jmespath"})
"""The modules of the optional `polgen[engines]` install; `polgen render` works without them."""


def reports_user_errors(func: F) -> F:
    """Print user errors one per line, exit 2, and never show a traceback for them; a command
    that needs the engines says how to install them."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PolgenError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except ModuleNotFoundError as exc:
            if exc.name not in ENGINES_EXTRA:
                raise
            click.echo(f"error: this command needs the offline engines ({exc.name} is not "
                       "installed): pip install 'polgen[engines]'", err=True)
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


def cluster_option(verb: str) -> Callable[[F], F]:
    """--cluster NAME, repeatable; `verb` says what the command does with it."""
    return click.option(
        "--cluster", "clusters", multiple=True,
        help=f"Cluster to {verb} (repeatable). Default: every cluster of the fleet.",
    )


def target_option(verb: str) -> Callable[[F], F]:
    """--target T|all, repeatable; `verb` says what the command does with it."""
    return click.option(
        "--target", "targets", multiple=True, type=click.Choice([*TARGET_NAMES, "all"]),
        help=f"Target to {verb} (repeatable). Default: all targets each cluster selects.",
    )


def out_option(default: str, what: str) -> Callable[[F], F]:
    """--out DIR, the folder a command writes; `what` says how."""
    return click.option(
        "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
        default=Path(default), show_default=True, help=what,
    )


def kyverno_flavor_option(func: F) -> F:
    """--kyverno-flavor, overriding every cluster's kyvernoFlavor."""
    return click.option(
        "--kyverno-flavor",
        type=click.Choice(["ClusterPolicy", "ValidatingPolicy"]),
        help="Override every cluster's kyvernoFlavor (kyverno.io/v1 ClusterPolicy or"
        " policies.kyverno.io/v1 ValidatingPolicy).",
    )(func)

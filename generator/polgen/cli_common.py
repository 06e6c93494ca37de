"""What every `polgen` command shares: exit codes and the user-error handler."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from polgen.errors import PolgenError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHECK_FAILED = 1
"""A check failed: render --check found out/ stale, scan denied a resource, test was unexpected."""
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

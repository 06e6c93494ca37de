"""Shared fixtures: a writable copy of the shipped catalog, and the CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import polgen.engines  # noqa: F401  (loads the CEL runtime before regopy: see _native_order)
from polgen.cli import main
from polgen.resources import default_catalog_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped catalog that a test may break."""
    target = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), target)
    return target


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke `polgen` in-process and return click's result."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke

"""Shared fixtures: a writable copy of the shipped catalog, the CLI runner, and a cache folder of
the test session's own (the user's polgen cache is never touched; the tests exercise it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import polgen.engines  # noqa: F401  (loads the CEL runtime before regopy: see _native_order)
from polgen.cache import CACHE_VARIABLE
from polgen.cli import main
from polgen.resources import default_catalog_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """POLGEN_CACHE_DIR for the session (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("polgen-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_VARIABLE, str(folder))
        yield folder


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


Process = Callable[..., tuple[str, set[str]]]


@pytest.fixture
def polgen_process() -> Process:
    """Run `polgen ARGS...` in a fresh interpreter; its standard output and the modules it had
    imported by the end (what start-up costs depend on)."""

    def run(*args: str) -> tuple[str, set[str]]:
        script = (
            "import contextlib, io, json, sys\n"
            "from polgen.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    try:\n"
            f"        main({list(args)!r})\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(json.dumps([out.getvalue(), sorted(sys.modules)]))\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True)
        output, modules = json.loads(done.stdout.splitlines()[-1])
        return output, set(modules)

    return run

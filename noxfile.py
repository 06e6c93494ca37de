"""Developer sessions: tests, lint, typecheck, render, bench, e2e (kind)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Unit, golden, engine and conformance tests (kind tests skip without Docker)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "generator", "tests", "benchmarks", "noxfile.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python="3.11")
def render(session: nox.Session) -> None:
    """Render the example fleet into out/ (or check it with `nox -s render -- --check`)."""
    session.install(".")
    session.run("polgen", "render", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Scan throughput per target at N = 1,000 and 5,000, peak memory, start-up time."""
    session.install(".[engines]")
    session.run("python", "benchmarks/scan_bench.py", *session.posargs)


@nox.session(python="3.11")
def e2e(session: nox.Session) -> None:
    """Every fixture and scenario through the real engines in kind (needs Docker and kind >=
    v0.31.0), or `nox -s e2e -- --kubeconfig PATH` for an existing cluster with Gatekeeper and
    Kyverno installed. Air-gapped: POLGEN_E2E_GATEKEEPER_MANIFEST / POLGEN_E2E_KYVERNO_MANIFEST."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "kind", "tests/test_e2e_kind.py", "-ra", *session.posargs)

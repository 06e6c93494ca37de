"""Which cluster the e2e run talks to, and with which engines.

`kind`: the cluster `polgen-e2e` on the pinned node image, created unless it exists (reused
as is), deleted afterwards only if this run created it (and `keep_cluster` is off); the pinned
engines are installed (idempotent) and Gatekeeper's webhook closed. `kubeconfig`: the given
context, engines as they are (installed only on request); a target whose engine is absent is
skipped, and a Gatekeeper webhook that fails open is reported.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from polgen.cluster.install import (
    Timeouts,
    gatekeeper_fails_closed,
    install_engines,
    missing_crds,
)
from polgen.cluster.kind import CLUSTER_NAME, Kind, context_name, docker_problem, kind_config
from polgen.cluster.kube import Api, KubeApi
from polgen.cluster.pins import ENGINES, EngineName, Pins

Mode = Literal["kind", "kubeconfig"]
Progress = Callable[[str], None]
ApiFactory = Callable[[Path | None, str | None], Api]
ENGINE_OF_TARGET: dict[str, EngineName | None] = {
    "gatekeeper": "gatekeeper",
    "kyverno": "kyverno",
    "vap": None,
    "psa": None,
}
"""The installed engine a target needs (vap and psa are part of the API server)."""


class ClusterUnavailable(RuntimeError):
    """No cluster to run against (no Docker daemon, no kind): the message says why."""


@dataclass
class Session:
    """A connected cluster: its API, and the targets that cannot run there (with why)."""

    api: Api
    adopt_stale: bool
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionOptions:
    """Where to run and what to set up: the ClusterRunner's choices."""

    mode: Mode
    kubeconfig: Path | None
    context: str | None
    pins: Pins
    keep_cluster: bool
    install: bool
    timeouts: Timeouts


@contextlib.contextmanager
def kind_cluster(
    options: SessionOptions, kind: Kind, progress: Progress, factory: ApiFactory
) -> Iterator[Api]:
    """Create (or reuse) the kind cluster; delete it afterwards if this run created it."""
    problem = docker_problem()
    if problem:
        raise ClusterUnavailable(problem)
    progress(f"kind: {kind.check_version(options.pins.kind.minimumVersion)}")
    with tempfile.TemporaryDirectory(prefix="polgen-e2e-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        created = CLUSTER_NAME not in kind.clusters()
        if created:
            progress(
                f"kind: creating cluster {CLUSTER_NAME} on {options.pins.kind.nodeImage}"
                " (pulls the node image on first use; a few minutes)"
            )
            kind.create(kind_config(options.pins.kind), kubeconfig)
        else:
            progress(f"kind: reusing cluster {CLUSTER_NAME}")
            kind.write_kubeconfig(CLUSTER_NAME, kubeconfig)
        try:
            yield factory(kubeconfig, context_name())
        finally:
            if created and not options.keep_cluster:
                progress(f"kind: deleting cluster {CLUSTER_NAME}")
                kind.delete(CLUSTER_NAME, kubeconfig)


@contextlib.contextmanager
def open_session(
    options: SessionOptions,
    progress: Progress,
    factory: ApiFactory = KubeApi,
    kind: Kind | None = None,
) -> Iterator[Session]:
    """The cluster of the run with its engines ready (or the targets that must be skipped)."""
    with contextlib.ExitStack() as stack:
        if options.mode == "kind":
            api = stack.enter_context(kind_cluster(options, kind or Kind(), progress, factory))
        else:
            where = options.context or "current context"
            progress(f"kubeconfig: {options.kubeconfig or 'default kubeconfig'} ({where})")
            api = factory(options.kubeconfig, options.context)
        session = Session(api, adopt_stale=options.mode == "kind")
        if options.install:
            install_engines(api, options.pins, progress, options.timeouts)
        check_engines(session, progress)
        yield session


def check_engines(session: Session, progress: Progress) -> None:
    """Mark targets whose engine is not installed; note a Gatekeeper webhook failing open."""
    for engine in ENGINES:
        missing = missing_crds(session.api, engine)
        if missing:
            for target, needs in ENGINE_OF_TARGET.items():
                if needs == engine:
                    session.unavailable[target] = f"{engine} is not installed: {missing[0]}"
                    progress(f"{target}: skipped ({session.unavailable[target]})")
    if "gatekeeper" not in session.unavailable:
        open_problem = gatekeeper_fails_closed(session.api)
        if open_problem:
            note = (
                f"gatekeeper: {open_problem}: a webhook call that fails or times out admits"
                " the request silently"
            )
            session.notes.append(note)
            progress(note)

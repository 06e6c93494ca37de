"""The kind cluster of the e2e run: its config, and create / reuse / delete through the `kind`
binary (versions.yaml sets the minimum release), plus the Docker check that decides whether
kind can run at all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from polgen.cluster.pins import KIND_BINARY_ENV, KindPins

CLUSTER_NAME = "polgen-e2e"
CREATE_WAIT = "300s"
"""`kind create cluster --wait`: how long kind waits for the control-plane node to be Ready."""
DOCKER_SOCKET = Path("/var/run/docker.sock")
DOCKER_INFO_TIMEOUT_SECONDS = 20

Run = Callable[..., "subprocess.CompletedProcess[str]"]
"""`subprocess.run`'s shape, so tests can record the commands instead of running them."""


class KindError(RuntimeError):
    """kind failed or is missing; the message carries its stderr."""


def kind_config(pins: KindPins, name: str = CLUSTER_NAME) -> dict[str, Any]:
    """A one-node kind cluster on the pinned node image with the pinned feature gates."""
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "nodes": [{"role": "control-plane", "image": pins.nodeImage}],
    }
    if pins.featureGates:
        config["featureGates"] = dict(sorted(pins.featureGates.items()))
    return config


def docker_problem(run: Run = subprocess.run, socket: Path = DOCKER_SOCKET) -> str | None:
    """Why no Docker daemon is reachable, or None when `docker info` answers (it follows
    DOCKER_HOST and docker contexts, so a daemon on another socket counts too)."""
    if shutil.which("docker") is None:
        return "no Docker daemon reachable (the docker CLI is not installed)"
    try:
        result = run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        seconds = DOCKER_INFO_TIMEOUT_SECONDS
        return f"no Docker daemon reachable (docker info timed out after {seconds}s)"
    if result.returncode == 0:
        return None
    if not os.environ.get("DOCKER_HOST") and not socket.exists():
        return f"no Docker daemon reachable ({socket} is absent and DOCKER_HOST is unset)"
    reason = (result.stderr or result.stdout).strip().splitlines()
    return f"no Docker daemon reachable (docker info: {reason[-1] if reason else 'failed'})"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`kind v0.30.0 go1.24.6 linux/amd64` (or `v0.30.0`) -> (0, 30, 0)."""
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


class Kind:
    """The `kind` CLI: which clusters exist, and create / delete / kubeconfig of one."""

    def __init__(self, binary: str | None = None, run: Run = subprocess.run) -> None:
        self.binary = binary or os.environ.get(KIND_BINARY_ENV) or "kind"
        self.run = run

    def _call(self, *args: str) -> str:
        if os.sep not in self.binary and shutil.which(self.binary) is None:
            raise KindError(
                f"kind binary {self.binary!r} not found (install kind >= the pinned version,"
                f" or set {KIND_BINARY_ENV})"
            )
        result = self.run([self.binary, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KindError(f"kind {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def check_version(self, minimum: str) -> str:
        """The installed kind version; an older release than the node image's is an error."""
        output = self._call("version").strip()
        found, wanted = parse_version(output), parse_version(minimum)
        if found is None or wanted is None or found < wanted:
            raise KindError(f"kind {minimum} or newer is needed for the node image: {output}")
        return output

    def clusters(self) -> list[str]:
        """Names of the existing kind clusters (`No kind clusters found.` goes to stderr)."""
        return [line.strip() for line in self._call("get", "clusters").splitlines() if line.strip()]

    def create(self, config: dict[str, Any], kubeconfig: Path) -> None:
        """`kind create cluster` from `config`, writing the admin kubeconfig to `kubeconfig`."""
        with tempfile.TemporaryDirectory(prefix="polgen-kind-") as tmp:
            config_file = Path(tmp) / "kind-config.yaml"
            config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            self._call(
                "create",
                "cluster",
                "--name",
                str(config["name"]),
                "--config",
                str(config_file),
                "--kubeconfig",
                str(kubeconfig),
                "--wait",
                CREATE_WAIT,
            )

    def write_kubeconfig(self, name: str, kubeconfig: Path) -> None:
        """Export an existing cluster's kubeconfig without touching the user's default one."""
        kubeconfig.write_text(self._call("get", "kubeconfig", "--name", name), encoding="utf-8")
        kubeconfig.chmod(0o600)

    def delete(self, name: str, kubeconfig: Path | None = None) -> None:
        args: Sequence[str] = ("delete", "cluster", "--name", name)
        if kubeconfig is not None:
            args = (*args, "--kubeconfig", str(kubeconfig))
        self._call(*args)


def context_name(cluster: str = CLUSTER_NAME) -> str:
    """kind names the kubeconfig context of cluster `x` `kind-x`."""
    return f"kind-{cluster}"

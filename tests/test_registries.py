"""The target and engine registries: complete, and loaded only when a command needs them."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import polgen.engines
import polgen.targets
from polgen.engines import ENGINES
from polgen.targets import TARGET_NAMES, TARGETS
from tests.conftest import Process

ONE_POD = """apiVersion: v1
kind: Pod
metadata: {name: r00t, namespace: default}
spec:
  hostPID: true
  containers: [{name: "1", image: alpine, securityContext: {privileged: true}}]
"""


def test_every_target_module_is_registered_under_its_name() -> None:
    modules = {info.name for info in pkgutil.iter_modules(polgen.targets.__path__)}
    with_target = {name for name in modules
                   if hasattr(__import__(f"polgen.targets.{name}", fromlist=["_"]), "TARGET")}
    assert set(TARGET_NAMES) == with_target
    assert tuple(TARGETS) == TARGET_NAMES
    assert all(target.name == name for name, target in TARGETS.items())


def test_every_engine_module_is_registered() -> None:
    modules = {info.name for info in pkgutil.iter_modules(polgen.engines.__path__)}
    with_engine = {name for name in modules
                   if hasattr(__import__(f"polgen.engines.{name}", fromlist=["_"]), "ENGINE")}
    registered = {type(engine).__module__.rpartition(".")[2] for engine in ENGINES.values()}
    assert registered == with_engine
    assert all(engine.name == name for name, engine in ENGINES.items())


def test_a_pss_scan_loads_no_catalog_template_or_other_engine(
    tmp_path: Path, polgen_process: Process
) -> None:
    (tmp_path / "pod.yaml").write_text(ONE_POD)
    _, loaded = polgen_process("scan", str(tmp_path / "pod.yaml"), "--pss", "restricted")
    assert "polgen.engines.psa" in loaded
    unwanted = {"jinja2", "pydantic", "polgen.catalog", "polgen.targets.gatekeeper",
                "polgen.engines.gatekeeper", "polgen.engines.kyverno", "polgen.engines.vap",
                "regopy"}
    assert not unwanted & loaded


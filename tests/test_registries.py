"""The target and engine registries: complete, and loaded only when a command needs them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
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



def _without_engines(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`polgen ARGS` where the `polgen[engines]` extra is not installed."""
    script = (
        "import sys\n"
        "for name in ('cel_expr_python', 'regopy', 'jmespath'):\n"
        "    sys.modules[name] = None  # what a plain `pip install polgen` lacks\n"
        "from polgen.cli import main\n"
        f"main({list(args)!r})\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, check=False)


def test_without_the_engines_extra_render_and_pss_work_and_the_rest_says_what_to_install(
    tmp_path: Path,
) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(ONE_POD)
    assert _without_engines(tmp_path, "render", "--out", str(tmp_path / "out")).returncode == 0
    assert _without_engines(tmp_path, "scan", str(pod), "--pss", "baseline").returncode == 1
    for args in (("scan", str(pod), "--target", "psa"), ("test", "--target", "vap"),
                 ("export-tests", "--out", str(tmp_path / "export"))):
        done = _without_engines(tmp_path, *args)
        assert done.returncode == 2, args
        assert "pip install 'polgen[engines]'" in done.stderr
        assert "Traceback" not in done.stderr

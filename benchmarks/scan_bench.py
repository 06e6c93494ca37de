"""Benchmark `polgen scan`: manifests per second per target and for all targets, peak memory,
and start-up time for one manifest, cold (no cache) and warm (polgen's cache filled by an
earlier run). The benchmark uses a cache folder of its own. Speed targets live here, never in
unit tests.

Usage: python benchmarks/scan_bench.py [--sizes 1000 5000] [--targets gatekeeper kyverno ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CONTROLLERS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob")
IMAGES = ("ubuntu:24.04", "open-policy-agent/opa:1.0", "evil.example/miner:1", "ubuntuevil/x")
TARGETS = ("gatekeeper", "kyverno", "psa", "vap")


def _container(rng: random.Random, index: int) -> dict[str, object]:
    security: dict[str, object] = {"allowPrivilegeEscalation": rng.random() < 0.8}
    if rng.random() < 0.15:
        security["privileged"] = True
    if rng.random() < 0.1:
        security["capabilities"] = {"add": ["SYS_ADMIN"]}
    return {"name": f"c{index}", "image": rng.choice(IMAGES), "securityContext": security}


def _pod_spec(rng: random.Random) -> dict[str, object]:
    spec: dict[str, object] = {
        "containers": [_container(rng, i) for i in range(rng.randint(1, 3))],
    }
    if rng.random() < 0.3:
        spec["initContainers"] = [_container(rng, 9)]
    if rng.random() < 0.1:
        spec["hostPID"] = True
    if rng.random() < 0.1:
        spec["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    return spec


def manifest(rng: random.Random, index: int) -> dict[str, object]:
    """One synthetic Pod or workload, compliant or not, in namespace sbx or prd."""
    namespace = rng.choice(("sbx", "prd"))
    metadata = {"name": f"m{index}", "namespace": namespace}
    kind = "Pod" if rng.random() < 0.5 else rng.choice(CONTROLLERS)
    spec = _pod_spec(rng)
    template = {"metadata": {"labels": {"app": f"m{index}"}}, "spec": spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    if kind == "CronJob":
        job = {"template": {**template, "spec": {**spec, "restartPolicy": "Never"}}}
        body = {"schedule": "* * * * *", "jobTemplate": {"spec": job}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": body}
    group = "batch/v1" if kind == "Job" else "apps/v1"
    body: dict[str, object] = {"template": template}
    if kind != "Job":
        body["selector"] = {"matchLabels": {"app": f"m{index}"}}
    return {"apiVersion": group, "kind": kind, "metadata": metadata, "spec": body}


def write_manifests(folder: Path, count: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    file = folder / f"manifests-{count}.yaml"
    file.write_text(yaml.safe_dump_all([manifest(rng, i) for i in range(count)]))
    return file


_MEASURE = """
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
from polgen.manifests import load_manifests
from polgen.scan import cached_fleet_sources, scan
targets = tuple(sys.argv[2:])
sources = cached_fleet_sources(None, None, (), targets, None)
manifests = load_manifests([Path(sys.argv[1])])
ready = time.perf_counter()
results = scan(manifests, sources)
done = time.perf_counter()
workers_kib = 0  # peak RSS of the Rego worker processes (Linux: VmHWM of each child)
for children in Path("/proc/self/task").glob("*/children"):
    for pid in children.read_text().split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                workers_kib += int(line.split()[1])
print(json.dumps({"manifests": len(manifests), "results": len(results),
    "setup_s": ready - start, "scan_s": done - ready,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "workers_mib": workers_kib / 1024}))
"""


def measure(file: Path, targets: tuple[str, ...]) -> dict[str, float]:
    """Run one scan in a fresh interpreter so peak memory is its own."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(file), *targets],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def startup(folder: Path, arguments: tuple[str, ...], cache: str, runs: int = 5) -> float:
    """Median wall time of the real CLI on one manifest (imports, render, compile, review) with
    POLGEN_CACHE_DIR set to `cache` ("" is no cache)."""
    one = write_manifests(folder, 1)
    environment = {**os.environ, "POLGEN_CACHE_DIR": cache}
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "polgen", *arguments, str(one)],
                       capture_output=True, check=False, env=environment)
        times.append(time.perf_counter() - begin)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--targets", nargs="+", default=[*TARGETS, "all"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = str(folder / "cache")
        os.environ["POLGEN_CACHE_DIR"] = cache  # the throughput runs below use it too
        print("start-up, one manifest, median of 5 (goal < 0.5 s):")
        print(f"  {'command':<34} {'no cache':>9} {'warm':>7}")
        commands = [("--help",), ("scan", "--pss", "restricted")]
        commands += [("scan",) if target == "all" else ("scan", "--target", target)
                     for target in args.targets]
        for arguments in commands:
            cold = startup(folder, arguments, "")
            startup(folder, arguments, cache, runs=1)  # fills the cache
            warm = startup(folder, arguments, cache)
            print(f"  {' '.join(arguments):<34} {cold:>7.2f} s {warm:>5.2f} s")
        header = ("N", "target", "manifests/s", "scan s", "setup s", "peak MiB", "workers MiB")
        print("{:>6}  {:<11} {:>12} {:>8} {:>8} {:>9} {:>12}".format(*header))
        for size in args.sizes:
            file = write_manifests(folder, size)
            for target in args.targets:
                chosen = () if target == "all" else (target,)
                m = measure(file, chosen)
                rate = m["manifests"] / m["scan_s"] if m["scan_s"] else float("inf")
                print(
                    f"{size:>6}  {target:<11} {rate:>12.0f} {m['scan_s']:>8.2f}"
                    f" {m['setup_s']:>8.2f} {m['peak_rss_mib']:>9.0f} {m['workers_mib']:>12.0f}"
                )


if __name__ == "__main__":
    main()

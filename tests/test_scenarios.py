"""The scenario model and loader, and the shape of the shipped attack corpus.

What every target does with each scenario is proven in test_harness.py (by the engines); here:
the schema (extra keys, reasons, catches) with file:line errors, the admission requests the
scenarios turn into, and that the corpus holds every attack the catalog must be tested against.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polgen.catalog import Catalog, load_catalog
from polgen.errors import PolgenError
from polgen.resources import default_catalog_dir
from polgen.scenarios import Expect, Scenario, ScenarioFile, load_scenario, load_scenarios
from polgen.targets import TARGETS

CATALOG: Catalog = load_catalog(default_catalog_dir())
CORPUS: list[ScenarioFile] = load_scenarios(CATALOG.root / "scenarios", CATALOG)
BY_NAME = {s.scenario.name: s.scenario for s in CORPUS}

VALID = """\
name: {name}
description: A privileged pod.
category: attack
catches: [disallow-privileged]
object:
  apiVersion: v1
  kind: Pod
  metadata:
    name: x
  spec:
    containers:
      - name: app
        image: ubuntu
        securityContext:
          privileged: true
expect:
  default: denied
"""


def write(tmp_path: Path, text: str, name: str = "sample") -> Path:
    file = tmp_path / f"{name}.yaml"
    file.write_text(text.replace("{name}", name), encoding="utf-8")
    return file


def test_expect_has_one_field_per_target() -> None:
    assert set(Expect.model_fields) - {"default", "reasons"} == set(TARGETS)


def test_valid_scenario_loads(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, VALID), CATALOG)
    assert loaded.scenario.namespace == "prd"
    assert loaded.scenario.expect.outcome("psa") == "denied"


# (replace this, with this, expected line, expected message part)
INVALID = [
    ("category: attack", "category: attack\nseverity: high", 4, "unknown key"),
    ("  default: denied", "  default: denied\n  psa: warned", 16, "reasons.psa must say why"),
    (
        "  default: denied",
        "  default: denied\n  psa: denied\n  reasons: {psa: x}",
        16,
        "default already",
    ),
    ("  default: denied", "  default: denied\n  reasons: {vap: x}", 16, "without an override"),
    ("  default: denied", "  default: blocked", 17, "'denied', 'warned' or 'admitted'"),
    ("catches: [disallow-privileged]", "catches: [disallow-everything]", 4, "unknown policy"),
    ("name: {name}", "name: other", 1, "must equal the file name"),
    ("category: attack", "category: benign", 3, "benign scenario catches nothing"),
    ("    name: x", "    name: x\n    namespace: sbx", 10, "is not the scenario's namespace"),
    ("    name: x", "    namex: x", 5, "needs apiVersion, kind and metadata.name"),
    (
        "expect:",
        "request: {subResource: ephemeralcontainers}\nexpect:",
        16,
        "need operation UPDATE",
    ),
    (
        "expect:",
        "request: {operation: UPDATE, subResource: ephemeralcontainers}\nexpect:",
        16,
        "needs a Pod with spec.ephemeralContainers",
    ),
]


@pytest.mark.parametrize(("old", "new", "line", "message"), INVALID)
def test_invalid_scenario_is_located(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    file = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(PolgenError) as info:
        load_scenarios(tmp_path, CATALOG)
    problem = info.value.problems[0]
    assert (problem.file, problem.line) == (str(file), line), str(problem)
    assert message in problem.message, str(problem)


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("category: attack", "category: nope"), "one")
    write(tmp_path, VALID.replace("name: {name}", "name: two\nextra: 1"), "two")
    with pytest.raises(PolgenError) as info:
        load_scenarios(tmp_path, CATALOG)
    assert {Path(p.file).name for p in info.value.problems} == {"one.yaml", "two.yaml"}


def test_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(PolgenError, match="scenario folder not found"):
        load_scenarios(tmp_path / "none", CATALOG)


def test_create_request_is_submitted_in_the_scenario_namespace() -> None:
    request = BY_NAME["host-pid"].admission_request()
    assert (request.operation, request.namespace, request.sub_resource) == ("CREATE", "prd", "")
    assert request.object is not None and request.object["metadata"]["namespace"] == "prd"
    assert BY_NAME["host-pid"].object["metadata"].get("namespace") is None  # model untouched


def test_debug_request_is_the_ephemeralcontainers_update() -> None:
    request = BY_NAME["privileged-debug-container"].admission_request()
    assert (request.operation, request.sub_resource, request.kind) == (
        "UPDATE",
        "ephemeralcontainers",
        "Pod",
    )
    assert request.object is not None and request.old_object is not None
    assert request.object["spec"]["ephemeralContainers"]
    assert "ephemeralContainers" not in request.old_object["spec"]
    assert request.old_object["spec"]["containers"] == request.object["spec"]["containers"]


def test_explicit_old_object_is_used() -> None:
    data = Scenario.model_validate(
        {
            **BY_NAME["benign-hardened-pod"].model_dump(),
            "name": "relabel",
            "request": {
                "operation": "UPDATE",
                "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "old"}},
            },
        }
    )
    request = data.admission_request()
    assert request.old_object == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "old", "namespace": "prd"},
    }
    assert request.sub_resource == ""


REQUIRED = {
    "breakout-untrusted-registry",
    "breakout-allowed-registry",
    "host-pid",
    "host-ipc",
    "host-network",
    "host-path-root",
    "host-path-containerd-socket",
    "cap-sys-admin",
    "cap-sys-admin-prefixed",
    "cap-sys-admin-lowercase",
    "privilege-escalation",
    "run-as-root",
    "proc-mount-unmasked",
    "seccomp-unconfined",
    "seccomp-unconfined-container-override",
    "apparmor-unconfined",
    "selinux-spc-t",
    "selinux-spc-t-container-override",
    "sysctl-core-pattern",
    "host-port",
    "windows-host-process",
    "node-debugger",
    "volume-type-nfs",
    "probe-host-metadata",
    "proc-mount-unmasked-user-namespace",
    "privileged-init-container",
    "privileged-debug-container",
    "privileged-deployment",
    "privileged-daemonset",
    "privileged-statefulset",
    "privileged-replicaset",
    "privileged-job",
    "privileged-cronjob",
    "registry-untrusted",
    "registry-lookalike-namespace",
    "registry-lookalike-host",
    "registry-lookalike-port",
    "registry-untrusted-init-container",
    "benign-hardened-pod",
    "benign-hardened-deployment",
    "benign-hardened-cronjob",
    "benign-digest-pinned",
    "benign-net-bind-service",
}


def test_corpus_has_every_required_scenario() -> None:
    assert sorted(REQUIRED - set(BY_NAME)) == []


def test_breakout_is_the_readme_one_liner() -> None:
    for name, image in (
        ("breakout-untrusted-registry", "alpine"),
        ("breakout-allowed-registry", "ubuntu"),
    ):
        spec = BY_NAME[name].object["spec"]
        container = spec["containers"][0]
        assert spec["hostPID"] is True
        assert container["image"] == image
        assert container["command"] == ["nsenter", "--mount=/proc/1/ns/mnt", "--", "/bin/bash"]
        assert container["stdin"] is container["tty"] is True
        assert container["securityContext"] == {"privileged": True}


def test_pod_controllers_are_all_wrapped() -> None:
    kinds = {
        BY_NAME[f"privileged-{k.lower()}"].object["kind"]
        for k in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob")
    }
    assert kinds == {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob"}


def test_readme_lists_exactly_the_corpus() -> None:
    table = (CATALOG.root / "scenarios" / "README.md").read_text(encoding="utf-8")
    table = table[table.index("| group | scenarios |") :]
    assert set(re.findall(r"`([a-z0-9-]+)`", table)) == set(BY_NAME)


def test_attacks_and_benign_workloads_are_both_present() -> None:
    categories = [s.scenario.category for s in CORPUS]
    assert categories.count("benign") >= 6
    assert categories.count("attack") >= 35

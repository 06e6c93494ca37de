"""polgen.cluster without a cluster: kind and Docker through recorded commands, the Kubernetes
API through an in-memory fake, engine answers and status objects from recorded files in
tests/data/cluster/."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from urllib3 import HTTPHeaderDict

from polgen.admission import AdmissionRequest, Violation, debug_request, request_for
from polgen.cluster import readiness
from polgen.cluster.apply import ClusterConflict, Ledger, ShareInstall, install_order, retire
from polgen.cluster.install import Timeouts, install_engine, split_manifest
from polgen.cluster.kind import Kind, KindError, docker_problem, kind_config, parse_version
from polgen.cluster.kube import ApiError, NotServedError
from polgen.cluster.layout import (
    MANAGED_BY,
    PREFIX,
    RUN_LABEL,
    TargetShare,
    copy_name,
    namespace_body,
    plan_layout,
    rebind,
    target_plan,
)
from polgen.cluster.pins import (
    MANIFEST_ENV,
    NODE_IMAGE_ENV,
    ManifestSource,
    load_pins,
    manifest_documents,
)
from polgen.cluster.pss_reasons import failed_checks
from polgen.cluster.responses import ApiReply, read_reply, warnings_from_headers
from polgen.cluster.runner import ClusterRunner
from polgen.cluster.submit import Submission, Unsupported, base_name, send, submission_for
from polgen.errors import PolgenError
from polgen.harness import Case
from polgen.pipeline import load_inputs
from polgen.plan import ClusterPlan

DATA = Path(__file__).resolve().parent / "data" / "cluster"
REPLIES = sorted((DATA / "replies").glob("*.yaml"))
STATUSES = sorted((DATA / "status").glob("*.yaml"))
RUN = "run0001"


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def dev_plan() -> ClusterPlan:
    """The example fleet's `dev` cluster (ClusterPolicy flavour)."""
    return next(p for p in load_inputs().plans if p.name == "dev")


@pytest.fixture(scope="module")
def dev_shares(dev_plan: ClusterPlan) -> dict[str, TargetShare]:
    """The dev plan's targets laid out for cases in `default`, `prd` and `sbx` (rendering the
    catalog is the slow part, so once per module)."""
    return {s.target: s for s in plan_layout(dev_plan, 1, ["default", "prd", "sbx"])}


@pytest.fixture(scope="module")
def small_plan(dev_plan: ClusterPlan) -> ClusterPlan:
    """The dev plan with two policies, for the runner tests (rendering is the slow part)."""
    keep = {"disallow-privileged", "allowed-repos"}
    return dataclasses.replace(
        dev_plan, bindings=tuple(b for b in dev_plan.bindings if b.policy.id in keep)
    )


@pytest.fixture(scope="module")
def prod_plan() -> ClusterPlan:
    """The example fleet's `prod` cluster (ValidatingPolicy flavour)."""
    return next(p for p in load_inputs().plans if p.name == "prod")


# --- versions.yaml and manifest sources -----------------------------------------------------


def test_shipped_pins_meet_the_minimum_versions() -> None:
    pins = load_pins()
    gatekeeper, kyverno = pins.engines["gatekeeper"], pins.engines["kyverno"]
    assert parse_version(gatekeeper.version) >= (3, 19, 0)  # type: ignore[operator]
    assert parse_version(kyverno.version) >= (1, 17, 0)  # type: ignore[operator]
    assert gatekeeper.version in gatekeeper.manifest and kyverno.version in kyverno.manifest
    minor = int(pins.kind.nodeImage.split(":v1.")[1].split(".")[0])
    assert minor >= 30, "ValidatingAdmissionPolicy v1 needs Kubernetes 1.30"
    assert "@sha256:" in pins.kind.nodeImage
    assert pins.kind.featureGates.get("ProcMountType") is True


def test_constructor_overrides_win_over_environment_over_file() -> None:
    pins = load_pins()
    env = {MANIFEST_ENV["kyverno"]: "/mirror/kyverno.yaml", NODE_IMAGE_ENV: "mirror/node:v1.34.0"}
    overridden = pins.with_overrides({"gatekeeper": "gk.yaml"}, None, env)
    assert overridden.engines["gatekeeper"].manifest == "gk.yaml"
    assert overridden.engines["kyverno"].manifest == "/mirror/kyverno.yaml"
    assert overridden.kind.nodeImage == "mirror/node:v1.34.0"
    assert pins.with_overrides(None, "own/node:1", env).kind.nodeImage == "own/node:1"
    assert pins.with_overrides(env={}) == pins


def test_unknown_engine_override_is_a_user_error() -> None:
    with pytest.raises(PolgenError, match="unknown engine 'opa'"):
        load_pins().with_overrides({"opa": "x.yaml"}, env={})


def test_invalid_versions_file_names_the_line(tmp_path: Path) -> None:
    text = (DATA.parents[2] / "generator/polgen/cluster/versions.yaml").read_text()
    broken = tmp_path / "versions.yaml"
    broken.write_text(text.replace("version: v3.21.0", "version: latest"), encoding="utf-8")
    with pytest.raises(PolgenError) as error:
        load_pins(broken)
    problem = error.value.problems[0]
    assert problem.where == "engines.gatekeeper.version" and problem.line is not None


@pytest.mark.parametrize(
    ("location", "is_url"),
    [
        ("https://github.com/kyverno/kyverno/releases/download/v1.17.1/install.yaml", True),
        ("HTTP://mirror.internal/gatekeeper.yaml", True),
        ("file:///srv/mirror/gatekeeper.yaml", False),
        ("mirror/gatekeeper.yaml", False),
    ],
)
def test_manifest_source_kind(location: str, is_url: bool) -> None:
    assert ManifestSource(location).is_url is is_url


def test_local_manifest_resolves_against_base_and_reads_documents() -> None:
    source = ManifestSource("manifests/kyverno.yaml")
    assert source.path(DATA) == DATA / "manifests" / "kyverno.yaml"
    docs = manifest_documents(source.read(DATA), source.location)
    assert [d["kind"] for d in docs] == [
        "Namespace",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
    ]
    assert ManifestSource(f"file://{DATA / 'manifests/kyverno.yaml'}").read() == source.read(DATA)


def test_missing_local_manifest_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(PolgenError, match="install manifest not found"):
        ManifestSource("absent.yaml").read(tmp_path)


def test_url_manifest_is_downloaded_with_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Reply:
        def __enter__(self) -> Reply:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self) -> bytes:
            return b"apiVersion: v1\nkind: Namespace\nmetadata: {name: kyverno}\n"

    def urlopen(url: str, timeout: float) -> Reply:
        seen.update(url=url, timeout=timeout)
        return Reply()

    monkeypatch.setattr("polgen.cluster.pins.urllib.request.urlopen", urlopen)
    url = "https://example.invalid/install.yaml"
    assert "kind: Namespace" in ManifestSource(url).read()
    assert seen["url"] == url and seen["timeout"] > 0


def test_manifest_documents_reject_what_is_no_object() -> None:
    with pytest.raises(PolgenError, match="document 1 is not a Kubernetes object"):
        manifest_documents("kind: Namespace\napiVersion: v1\n---\n- a list\n", "m.yaml")


# --- kind and Docker --------------------------------------------------------------------------


def test_kind_config_pins_image_and_feature_gates() -> None:
    assert kind_config(load_pins().kind) == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "polgen-e2e",
        "nodes": [{"role": "control-plane", "image": load_pins().kind.nodeImage}],
        "featureGates": {"ProcMountType": True, "UserNamespacesSupport": True},
    }


class RecordedKind:
    """`subprocess.run` for a fake kind binary: records every command (and the config file
    `create` was given, read while it exists)."""

    def __init__(self, clusters: list[str], version: str = "kind v0.31.0 go1.25.5 linux/amd64"):
        self.clusters = clusters
        self.version = version
        self.commands: list[list[str]] = []
        self.config: dict[str, Any] | None = None

    def __call__(self, args: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(args)
        verb = args[1:3]
        out = ""
        if verb == ["version"]:
            out = self.version
        elif verb == ["get", "clusters"]:
            out = "".join(f"{c}\n" for c in self.clusters)
        elif verb == ["get", "kubeconfig"]:
            out = "apiVersion: v1\nkind: Config\n"
        elif verb == ["create", "cluster"]:
            config = Path(args[args.index("--config") + 1])
            self.config = yaml.safe_load(config.read_text())
        return subprocess.CompletedProcess(args, 0, out, "")


def test_kind_create_passes_name_config_kubeconfig_and_wait(tmp_path: Path) -> None:
    recorded = RecordedKind([])
    kind = Kind("/opt/kind", recorded)
    config = kind_config(load_pins().kind)
    kind.create(config, tmp_path / "kubeconfig")
    args = recorded.commands[-1]
    assert args[:5] == ["/opt/kind", "create", "cluster", "--name", "polgen-e2e"]
    assert args[args.index("--kubeconfig") + 1] == str(tmp_path / "kubeconfig")
    assert args[args.index("--wait") + 1].endswith("s")
    assert recorded.config == config


def test_kind_lists_clusters_and_exports_kubeconfig(tmp_path: Path) -> None:
    recorded = RecordedKind(["other", "polgen-e2e"])
    kind = Kind("/opt/kind", recorded)
    assert kind.clusters() == ["other", "polgen-e2e"]
    kind.write_kubeconfig("polgen-e2e", tmp_path / "kc")
    assert (tmp_path / "kc").read_text().startswith("apiVersion: v1")
    assert recorded.commands[-1][1:] == ["get", "kubeconfig", "--name", "polgen-e2e"]
    kind.delete("polgen-e2e", tmp_path / "kc")
    assert recorded.commands[-1][1:5] == ["delete", "cluster", "--name", "polgen-e2e"]


def test_kind_older_than_the_node_image_is_refused() -> None:
    kind = Kind("/opt/kind", RecordedKind([], version="kind v0.22.0 go1.21 linux/amd64"))
    minimum = load_pins().kind.minimumVersion
    with pytest.raises(KindError, match=f"{minimum} or newer"):
        kind.check_version(minimum)
    assert Kind("/opt/kind", RecordedKind([])).check_version(minimum).startswith("kind v0.31")


def test_missing_kind_binary_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("polgen.cluster.kind.shutil.which", lambda name: None)
    with pytest.raises(KindError, match="POLGEN_E2E_KIND"):
        Kind("kind", RecordedKind([])).clusters()


def _docker_run(code: int, stderr: str = "") -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(args: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, code, "28.1.1\n" if code == 0 else "", stderr)

    return run


def test_docker_problem_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    socket = tmp_path / "docker.sock"
    monkeypatch.setattr("polgen.cluster.kind.shutil.which", lambda name: None)
    assert "docker CLI is not installed" in str(docker_problem(_docker_run(0), socket))
    monkeypatch.setattr("polgen.cluster.kind.shutil.which", lambda name: "/usr/bin/docker")
    daemon_down = "Cannot connect to the Docker daemon. Is the docker daemon running?"
    absent = docker_problem(_docker_run(1, daemon_down), socket)
    assert absent == f"no Docker daemon reachable ({socket} is absent and DOCKER_HOST is unset)"
    assert docker_problem(_docker_run(0), socket) is None, "a docker context's own socket"
    socket.touch()
    down = docker_problem(_docker_run(1, daemon_down), socket)
    assert down == f"no Docker daemon reachable (docker info: {daemon_down})"
    assert docker_problem(_docker_run(0), socket) is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    down = docker_problem(_docker_run(1, daemon_down), tmp_path / "absent.sock")
    assert down == f"no Docker daemon reachable (docker info: {daemon_down})"


# --- layout: one namespace copy per target ----------------------------------------------------


def test_copy_names_are_dns_labels() -> None:
    assert copy_name(1, "kyverno-vpol", "prd") == "polgen-e2e-1-kyverno-vpol-prd"
    long = copy_name(12, "kyverno-vpol", "a-very-long-namespace-name-that-goes-on-and-on-and-on")
    assert len(long) <= 63 and long.startswith("polgen-e2e-12-kyverno-vpol-a-very")
    assert long != copy_name(
        12, "kyverno-vpol", "a-very-long-namespace-name-that-goes-on-and-on-and-ox"
    )


def test_rebind_selects_only_copies(dev_plan: ClusterPlan) -> None:
    binding = next(b for b in dev_plan.bindings if b.group == "prd")
    copies = {"prd": "polgen-e2e-1-vap-prd", "default": "polgen-e2e-1-vap-default"}
    rebound = rebind(binding, copies)
    assert rebound is not None and rebound.namespaces == ("polgen-e2e-1-vap-prd",)
    assert rebound.name == binding.name
    assert rebind(binding, {"default": "polgen-e2e-1-vap-default"}) is None
    catch_all = dataclasses.replace(binding, namespaces=(), excluded_namespaces=("prd", "sbx"))
    rebound = rebind(catch_all, copies)
    assert rebound is not None and rebound.namespaces == ("polgen-e2e-1-vap-default",)
    assert rebound.excluded_namespaces == ()


def _namespace_refs(body: Any) -> set[str]:
    """Every string in a rendered resource that names a namespace copy."""
    if isinstance(body, dict):
        return set().union(*(_namespace_refs(v) for v in body.values()))
    if isinstance(body, list):
        return set().union(*(_namespace_refs(v) for v in body))
    return {body} if isinstance(body, str) and body.startswith(PREFIX) else set()


def test_each_target_is_bound_to_its_own_copies_only(dev_shares: dict[str, TargetShare]) -> None:
    assert {t: s.engine for t, s in dev_shares.items()} == {
        "gatekeeper": "gatekeeper",
        "kyverno": "kyverno",
        "psa": "psa",
        "vap": "vap",
    }
    for share in dev_shares.values():
        mentioned = set().union(*(_namespace_refs(d.body) for d in share.documents))
        assert mentioned, share.target
        assert mentioned <= set(share.namespaces.values()), share.target


def test_resource_names_are_the_plans_own(
    dev_plan: ClusterPlan, dev_shares: dict[str, TargetShare]
) -> None:
    """The harness names the policy behind a violation from the plan's own rendering."""
    from polgen.targets import TARGETS

    for share in dev_shares.values():
        original = {str(d.body["metadata"]["name"]) for d in TARGETS[share.target].render(dev_plan)}
        assert share.owned <= original
        if share.target != "psa":
            assert any(name.endswith("-prd") for name in share.owned)
            assert any(name.endswith("-sbx") for name in share.owned)


def test_kyverno_validating_policy_flavour_has_its_own_engine(prod_plan: ClusterPlan) -> None:
    share = next(s for s in plan_layout(prod_plan, 2, ["prd"]) if s.target == "kyverno")
    assert share.engine == "kyverno-vpol"
    assert share.namespaces == {"prd": "polgen-e2e-2-kyverno-vpol-prd"}
    assert {d.body["kind"] for d in share.documents} == {"ValidatingPolicy"}


def test_only_psa_copies_carry_pod_security_labels(dev_shares: dict[str, TargetShare]) -> None:
    psa = namespace_body(dev_shares["psa"], "prd", RUN)["metadata"]["labels"]
    assert psa["pod-security.kubernetes.io/enforce"] == "restricted"
    assert psa[MANAGED_BY] == PREFIX and psa[RUN_LABEL] == RUN
    before = namespace_body(dev_shares["psa"], "prd", RUN, pod_security=False)
    assert before["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    unlabelled = namespace_body(dev_shares["psa"], "default", RUN)["metadata"]["labels"]
    assert unlabelled["pod-security.kubernetes.io/enforce"] == "privileged"
    for target in ("gatekeeper", "kyverno", "vap"):
        labels = namespace_body(dev_shares[target], "prd", RUN)["metadata"]["labels"]
        modes = {labels[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "warn", "audit")}
        assert modes == {"privileged"}


def _in_copy(case: Case, namespace: str) -> AdmissionRequest:
    request = case.request
    placed = []
    for obj in (request.object, request.old_object):
        moved = copy.deepcopy(obj)
        if moved is not None:
            moved["metadata"]["namespace"] = namespace
        placed.append(moved)
    return dataclasses.replace(request, namespace=namespace, object=placed[0], old_object=placed[1])


def test_each_copy_judges_a_case_as_the_plan_judges_it_at_home(small_plan: ClusterPlan) -> None:
    """Re-pointing a target at its copies changes where, never what: polgen's offline engines
    give the same result for a case in each copy as for the case in its own namespace."""
    from polgen.harness import OfflineRunner, fixture_cases, result_of
    from polgen.manifests import Manifest
    from polgen.scan import fleet_sources, scan

    catalog = load_inputs().catalog
    cases = [
        c for c in fixture_cases(catalog) if c.fixture and c.fixture[0] == "disallow-privileged"
    ]
    home = {
        (o.case, o.target): result_of(o.verdict) for o in OfflineRunner().run([small_plan], cases)
    }
    assert "denied" in home.values() and "admitted" in home.values()
    for share in plan_layout(small_plan, 1, ["prd"]):
        plan = dataclasses.replace(
            target_plan(small_plan, share.namespaces), targets=(share.target,)
        )
        manifests = [Manifest(c.id, _in_copy(c, share.namespaces["prd"])) for c in cases]
        manifests += [
            Manifest("namespace", request_for(d.body))
            for d in share.documents
            if d.body["kind"] == "Namespace"
        ]
        for result in scan(manifests, fleet_sources([plan])):
            if result.manifest.file != "namespace":
                assert result_of(result.verdict) == home[(result.manifest.file, share.target)]


# --- submissions -------------------------------------------------------------------------------

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "resourceVersion": "7", "uid": "u"},
    "spec": {
        "containers": [{"name": "app", "image": "ubuntu:24.04"}],
        "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
    },
}


def test_create_is_a_dry_run_in_the_copy() -> None:
    pod = copy.deepcopy(POD)
    del pod["spec"]["ephemeralContainers"]
    submission = submission_for(request_for(pod, "CREATE", "prd"), "c1", "polgen-e2e-1-vap-prd")
    assert submission.method == "create" and submission.base is None
    assert submission.body["metadata"] == {"name": "web", "namespace": "polgen-e2e-1-vap-prd"}


def test_debug_case_creates_its_own_base_pod_and_patches_the_subresource() -> None:
    submission = submission_for(debug_request(POD, "prd"), "fixture/x", "polgen-e2e-1-psa-prd")
    assert submission.method == "ephemeral" and submission.needs_running_base
    assert submission.base is not None
    assert "ephemeralContainers" not in submission.base["spec"]
    assert submission.base["metadata"]["name"] == base_name("web", "fixture/x")
    assert submission.containers == ({"name": "debugger", "image": "busybox"},)


def test_base_names_are_unique_per_case_and_short() -> None:
    assert base_name("web", "a") != base_name("web", "b")
    assert len(base_name("x" * 80, "a")) <= 63


def test_update_replaces_the_base_and_delete_deletes_it() -> None:
    old = copy.deepcopy(POD)
    del old["spec"]["ephemeralContainers"]
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx"
    request = dataclasses.replace(request_for(new, "UPDATE", "prd"), old_object=old)
    submission = submission_for(request, "c", "ns")
    assert submission.method == "replace" and submission.base is not None
    assert submission.base["spec"]["containers"][0]["image"] == "ubuntu:24.04"
    assert submission.body["metadata"]["name"] == submission.base["metadata"]["name"]
    deleted = submission_for(dataclasses.replace(request, operation="DELETE"), "c", "ns")
    assert deleted.method == "delete" and deleted.base is not None


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (
            request_for({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
            "namespaced",
        ),
        (dataclasses.replace(request_for(POD), operation="CONNECT"), "never evaluated"),
        (dataclasses.replace(request_for(POD, "UPDATE"), sub_resource="resize"), "resize"),
    ],
)
def test_unsupported_requests_are_left_out(request_: AdmissionRequest, reason: str) -> None:
    with pytest.raises(Unsupported, match=reason):
        submission_for(request_, "c", "ns")


# --- the fake API server -------------------------------------------------------------------------

Ref = tuple[str, str, str, str | None]
READY_STATUS: dict[str, dict[str, Any]] = {
    "CustomResourceDefinition": {
        "conditions": [
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"},
        ]
    },
    "Deployment": {
        "observedGeneration": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    },
    "ClusterPolicy": {"conditions": [{"type": "Ready", "status": "True"}]},
    "ValidatingPolicy": {
        "conditionStatus": {
            "ready": True,
            "conditions": [{"type": "WebhookConfigured", "status": "True"}],
        }
    },
}
WEBHOOK_ENTRY = {"id": "gk-0", "operations": ["webhook"], "observedGeneration": 1, "enforced": True}


class FakeApi:
    """An API server in memory: server-side apply stores the object with a ready status,
    dry runs are answered by `responder`, every call is logged in order."""

    def __init__(self, responder: Callable[[dict[str, Any]], ApiReply] | None = None) -> None:
        self.objects: dict[Ref, dict[str, Any]] = {}
        self.log: list[tuple[str, str, str, str]] = []
        self.unserved: set[str] = set()
        self.responder = responder or (lambda body: ApiReply(201))
        self.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "gatekeeper-controller-manager-0",
                    "namespace": "gatekeeper-system",
                    "labels": {"gatekeeper.sh/operation": "webhook"},
                },
                "status": {"phase": "Running", "containerStatuses": [{"ready": True}]},
            }
        )

    @staticmethod
    def ref(body: dict[str, Any]) -> Ref:
        meta = body["metadata"]
        return body["apiVersion"], body["kind"], meta["name"], meta.get("namespace")

    def put(self, body: dict[str, Any]) -> None:
        self.objects[self.ref(body)] = copy.deepcopy(body)

    def with_ready_status(self, body: dict[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(body)
        stored["metadata"].setdefault("generation", 1)
        kind = stored["kind"]
        if kind in READY_STATUS:
            stored["status"] = copy.deepcopy(READY_STATUS[kind])
        elif kind == "ConstraintTemplate":
            stored["status"] = {"created": True, "byPod": [WEBHOOK_ENTRY]}
        elif kind == "ExpansionTemplate" or stored["apiVersion"].startswith("constraints."):
            stored["status"] = {"byPod": [WEBHOOK_ENTRY]}
        elif kind == "ValidatingWebhookConfiguration":
            for webhook in stored.get("webhooks", []):
                webhook.setdefault("clientConfig", {})["caBundle"] = "Q0E="
        elif kind == "Pod":
            stored["status"] = {"phase": "Running"}
        return stored

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        found = self.objects.get((api_version, kind, name, namespace))
        return copy.deepcopy(found) if found else None

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> Any:
        # Ignores the selector: the callers must check labels themselves.
        return [copy.deepcopy(o) for r, o in self.objects.items() if r[:2] == (api_version, kind)]

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["kind"] in self.unserved:
            raise NotServedError(body["kind"])
        self.log.append(
            (
                "apply",
                body["kind"],
                body["metadata"]["name"],
                json.dumps(body["metadata"].get("labels", {})),
            )
        )
        self.put(self.with_ready_status(body))
        return body

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.ref(body) in self.objects:
            raise ApiError("AlreadyExists", 409)
        self.log.append(("create", body["kind"], body["metadata"]["name"], ""))
        self.put(self.with_ready_status(body))
        return body

    def patch(
        self, api_version: str, kind: str, name: str, body: dict[str, Any], namespace: str | None
    ) -> Any:
        current = self.objects[(api_version, kind, name, namespace)]
        for change in body.get("webhooks", []):
            for webhook in current["webhooks"]:
                if webhook["name"] == change["name"]:
                    webhook.update(change)
        self.log.append(("patch", kind, name, json.dumps(body)))
        return current

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.log.append(("delete", kind, name, namespace or ""))
        self.objects.pop((api_version, kind, name, namespace), None)

    def dry_run_create(self, body: dict[str, Any]) -> ApiReply:
        self.log.append(
            (
                "dry-run",
                body["kind"],
                body["metadata"]["name"],
                body["metadata"].get("namespace", ""),
            )
        )
        return self.responder(body)

    def dry_run_replace(self, body: dict[str, Any]) -> ApiReply:
        self.log.append(
            (
                "dry-run-replace",
                body["kind"],
                body["metadata"]["name"],
                body["metadata"]["resourceVersion"],
            )
        )
        return self.responder(body)

    def dry_run_delete(self, api_version: str, kind: str, name: str, namespace: str) -> ApiReply:
        return ApiReply(200)

    def patch_ephemeral_containers(
        self, name: str, namespace: str, containers: list[dict[str, Any]], dry_run: bool
    ) -> ApiReply:
        self.log.append(("ephemeral", name, namespace, "dry-run" if dry_run else "real"))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ephemeralContainers": containers},
        }
        return self.responder(pod)


def test_update_changes_the_stored_object_only_where_the_case_does() -> None:
    api = FakeApi()
    old = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "b", "namespace": "ns", "labels": {"app": "x", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "ubuntu:24.04"}]},
    }
    live = copy.deepcopy(old)
    live["metadata"].update(resourceVersion="42", uid="u-1")
    live["spec"]["containers"][0]["volumeMounts"] = [{"name": "kube-api-access", "mountPath": "/v"}]
    live["spec"]["volumes"] = [{"name": "kube-api-access", "projected": {"sources": []}}]
    api.put(live)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx"
    del new["metadata"]["labels"]["tier"]
    sent: list[dict[str, Any]] = []
    api.dry_run_replace = lambda body: sent.append(body) or ApiReply(200)  # type: ignore[method-assign]
    send(api, Submission("c", "ns", "replace", new, old))
    assert sent[0]["metadata"] == {
        "name": "b",
        "namespace": "ns",
        "labels": {"app": "x"},
        "resourceVersion": "42",
        "uid": "u-1",
    }
    assert sent[0]["spec"]["containers"] == [
        {
            "name": "app",
            "image": "nginx",
            "volumeMounts": [{"name": "kube-api-access", "mountPath": "/v"}],
        }
    ]
    assert sent[0]["spec"]["volumes"] == live["spec"]["volumes"]


def test_debug_patch_falls_back_to_a_real_patch_when_dry_run_is_refused() -> None:
    replies = iter(
        [ApiReply(400, 'admission webhook "x.example" does not support dry run'), ApiReply(200)]
    )
    api = FakeApi(lambda body: next(replies))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "ns"}}
    reply = send(api, Submission("c", "ns", "ephemeral", pod, pod, ({"name": "d"},)))
    assert reply.status == 200
    assert [entry[3] for entry in api.log if entry[0] == "ephemeral"] == ["dry-run", "real"]


# --- answers: recorded API responses -----------------------------------------------------------


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: p.stem)
def test_recorded_reply_is_read_as_the_targets_verdict(path: Path) -> None:
    recorded = _load(path)
    headers = HTTPHeaderDict()
    for value in recorded.get("warnings", []):
        headers.add("Warning", value)
    body = json.dumps(recorded["body"]) if "body" in recorded else None
    from polgen.cluster.responses import status_message

    reply = ApiReply(recorded["status"], status_message(body), warnings_from_headers(headers))
    reading = read_reply(recorded["engine"], recorded["owned"], reply)
    expect = recorded["expect"]
    if "problem" in expect:
        assert reading.verdict is None
        assert expect["problem"] in reading.problem
        return
    assert reading.verdict is not None, reading.problem
    expected = tuple(
        Violation(v["policy"], v["message"], v["action"], v.get("rule"))
        for v in expect["violations"]
    )
    assert reading.verdict.violations == expected
    assert len(reading.notes) == expect.get("notes", 0)


def test_warning_headers_unquote_and_split() -> None:
    headers = HTTPHeaderDict()
    headers.add("Warning", '299 - "a \\"quoted\\" text"')
    headers.add("Warning", '299 - "second, with a comma"')
    assert warnings_from_headers(headers) == ('a "quoted" text', "second, with a comma")
    assert warnings_from_headers({"Warning": '299 - "one", 299 - "two"'}) == ("one", "two")
    assert warnings_from_headers(None) == ()


@pytest.mark.parametrize(
    ("detail", "checks"),
    [
        ("host namespaces (hostNetwork=true, hostPID=true)", ("hostNamespaces",)),
        (
            'hostPort (container "a" uses hostPort 80), procMount (container "a" must not set'
            ' securityContext.procMount to "Unmasked")',
            ("hostPorts", "procMount", "procMount_restricted"),
        ),
        ("forbidden sysctls (kernel.core_pattern)", ("sysctls",)),
        ("runAsUser=0 (pod must not set runAsUser=0)", ("runAsUser",)),
        ("something new (detail)", None),
    ],
)
def test_pod_security_reasons_name_their_checks(
    detail: str, checks: tuple[str, ...] | None
) -> None:
    assert failed_checks(detail) == checks


# --- readiness: recorded status objects --------------------------------------------------------


@pytest.mark.parametrize("path", STATUSES, ids=lambda p: p.stem)
def test_recorded_status_readiness(path: Path) -> None:
    recorded = _load(path)
    predicate = getattr(readiness, recorded["predicate"])
    extra = [recorded[k] for k in ("webhook_pods", "webhook") if k in recorded]
    problem = predicate(recorded["object"], *extra)
    if recorded["ready"]:
        assert problem is None
    else:
        assert problem is not None and recorded["reason"] in problem


def test_wait_until_reports_progress_and_times_out_naming_what_is_missing() -> None:
    now = [0.0]
    answers = iter([["a", "b"], ["b"], []])
    messages: list[str] = []
    readiness.wait_until(
        "things",
        lambda: next(answers),
        messages.append,
        60,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert messages == ["things: waiting for 2: a", "things: waiting for 1: b", "things: ready"]
    with pytest.raises(readiness.NotReadyError, match="things not ready after 5s: b"):
        readiness.wait_until(
            "things",
            lambda: ["b"],
            messages.append,
            5,
            clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, now[0] + s),
        )


# --- engine installs --------------------------------------------------------------------------


def test_engine_install_applies_crds_first_and_waits_for_deployments() -> None:
    api = FakeApi()
    docs = manifest_documents((DATA / "manifests/gatekeeper.yaml").read_text(), "gatekeeper")
    head, _ = split_manifest(docs)
    assert [d["kind"] for d in head] == [
        "Namespace",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
    ]
    messages: list[str] = []
    install_engine(api, "gatekeeper", docs, messages.append, Timeouts(engine=1))
    kinds = [kind for verb, kind, *_ in api.log if verb == "apply"]
    assert kinds.index("Deployment") > kinds.index("CustomResourceDefinition")
    assert "gatekeeper deployments: ready" in messages


# --- ownership and cleanup -----------------------------------------------------------------------


def _namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_objects_of_others_are_never_overwritten() -> None:
    api = FakeApi()
    api.put(_namespace("polgen-e2e-1-vap-prd", {}))
    api.put(_namespace("polgen-e2e-1-psa-prd", {RUN_LABEL: "old"}))
    ledger = Ledger(RUN)
    with pytest.raises(ClusterConflict, match="polgen-e2e did not create it"):
        ledger.apply(api, _namespace("polgen-e2e-1-vap-prd", {RUN_LABEL: RUN}))
    with pytest.raises(ClusterConflict):
        ledger.apply(api, _namespace("polgen-e2e-1-psa-prd", {RUN_LABEL: RUN}))
    Ledger(RUN, adopt_stale=True).apply(api, _namespace("polgen-e2e-1-psa-prd", {RUN_LABEL: RUN}))


def test_cleanup_deletes_only_this_runs_labelled_namespaces_and_objects() -> None:
    api = FakeApi()
    ours = {MANAGED_BY: PREFIX, RUN_LABEL: RUN}
    api.put(_namespace("team-a", {MANAGED_BY: "argocd"}))
    api.put(_namespace("polgen-e2e-1-vap-prd", {MANAGED_BY: PREFIX, RUN_LABEL: "another-run"}))
    api.put(_namespace("imposter", {RUN_LABEL: RUN}))
    ledger = Ledger(RUN)
    ledger.apply(api, _namespace("polgen-e2e-2-vap-prd", ours))
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "polgen-x-prd", "labels": {RUN_LABEL: RUN}},
    }
    ledger.apply(api, policy)
    retaken = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "polgen-y-prd", "labels": {RUN_LABEL: RUN}},
    }
    ledger.apply(api, retaken)
    api.put({**retaken, "metadata": {"name": "polgen-y-prd", "labels": {}}})  # someone took it over
    retire(api, ledger, lambda message: None)
    deleted = {(kind, name) for verb, kind, name, _ in api.log if verb == "delete"}
    assert deleted == {("Namespace", "polgen-e2e-2-vap-prd"), ("ClusterPolicy", "polgen-x-prd")}
    assert ledger.applied == []


def test_constraints_are_applied_once_their_kind_is_served() -> None:
    api = FakeApi()
    api.unserved.add("PolgenDisallowPrivileged")
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "polgendisallowprivileged"},
    }
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "PolgenDisallowPrivileged",
        "metadata": {"name": "disallow-privileged-prd"},
    }
    install = ShareInstall(api, Ledger(RUN), install_order([constraint, template]), 1)
    assert install.missing() == [
        "PolgenDisallowPrivileged disallow-privileged-prd: kind not served yet"
    ]
    api.unserved.clear()
    assert install.missing() == []
    assert [name for verb, _, name, _ in api.log if verb == "apply"] == [
        "polgendisallowprivileged",
        "disallow-privileged-prd",
    ]


# --- the runner end to end on the fake API -------------------------------------------------------


def _privileged(body: dict[str, Any]) -> bool:
    containers = (body.get("spec") or {}).get("containers") or []
    return any((c.get("securityContext") or {}).get("privileged") for c in containers)


def _cluster_answers(body: dict[str, Any]) -> ApiReply:
    """Gatekeeper denies privileged pods in its copies; the canaries are denied as the API
    server would; everything else is admitted."""
    namespace = body["metadata"].get("namespace", "")
    name = body["metadata"]["name"]
    if name == "polgen-e2e-canary" and body["kind"] == "ConfigMap":
        return ApiReply(
            422,
            "configmaps is forbidden: ValidatingAdmissionPolicy 'polgen-e2e-canary' "
            "with binding 'polgen-e2e-canary' denied request: polgen-e2e canary 1",
        )
    if name == "polgen-e2e-canary":
        return ApiReply(
            403,
            f'pods "{name}" is forbidden: violates PodSecurity "restricted:latest": '
            'privileged (container "canary" must not set securityContext.privileged=true)',
        )
    if "-gatekeeper-" in namespace and _privileged(body):
        return ApiReply(
            403,
            'admission webhook "validation.gatekeeper.sh" denied the request: '
            '[disallow-privileged-prd] container "app": securityContext.privileged '
            "must be unset or one of [false]",
        )
    return ApiReply(201)


def _cases() -> list[Case]:
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "prd"},
        "spec": {
            "containers": [
                {"name": "app", "image": "ubuntu", "securityContext": {"privileged": True}}
            ]
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    return [
        Case("case/privileged", "p.yaml", "", request_for(privileged, "CREATE", "prd")),
        Case("case/debug", "d.yaml", "", debug_request(copy.deepcopy(POD), "prd")),
        Case("case/namespace", "n.yaml", "", request_for(namespace)),
    ]


def _runner(api: FakeApi, messages: list[str]) -> ClusterRunner:
    return ClusterRunner(
        "kubeconfig",
        Path("kubeconfig"),
        "ctx",
        messages.append,
        timeouts=Timeouts(engine=1, policies=1, pods=1),
        api_factory=lambda kubeconfig, context: api,
    )


def _with_engine_crds(api: FakeApi, engines: tuple[str, ...] = ("gatekeeper", "kyverno")) -> None:
    for engine in engines:
        docs = manifest_documents((DATA / f"manifests/{engine}.yaml").read_text(), engine)
        for doc in docs:
            if doc["kind"] == "CustomResourceDefinition":
                api.put(api.with_ready_status(doc))


def test_runner_observes_every_case_in_every_target(small_plan: ClusterPlan) -> None:
    api = FakeApi(_cluster_answers)
    _with_engine_crds(api)
    messages: list[str] = []
    runner = _runner(api, messages)
    observations = runner.run([small_plan], _cases())
    seen = {(o.case, o.cluster, o.target) for o in observations}
    assert seen == {
        (c, "dev", t) for c in ("case/privileged", "case/debug") for t in small_plan.targets
    }
    gatekeeper = next(
        o for o in observations if o.case == "case/privileged" and o.target == "gatekeeper"
    )
    assert [v.policy for v in gatekeeper.verdict.violations] == ["disallow-privileged-prd"]
    assert not gatekeeper.verdict.allowed
    assert any("case/namespace" in p and "namespaced kind" in p for p in runner.problems)
    assert any(m.startswith("[1/8] dev/gatekeeper") for m in messages)


def test_runner_creates_debug_targets_before_any_policy(small_plan: ClusterPlan) -> None:
    api = FakeApi(_cluster_answers)
    _with_engine_crds(api)
    _runner(api, []).run([small_plan], _cases())
    verbs = [(verb, kind) for verb, kind, *_ in api.log]
    last_base = max(i for i, (verb, kind) in enumerate(verbs) if (verb, kind) == ("create", "Pod"))
    first_policy = min(
        i for i, (verb, kind) in enumerate(verbs) if verb == "apply" and kind not in ("Namespace",)
    )
    assert last_base < first_policy
    restricted = [
        i
        for i, entry in enumerate(api.log)
        if entry[0] == "apply"
        and entry[1] == "Namespace"
        and '"pod-security.kubernetes.io/enforce": "restricted"' in entry[3]
    ]
    assert restricted and min(restricted) > last_base
    assert (
        "ephemeral",
        base_name("web", "case/debug"),
        "polgen-e2e-1-psa-prd",
        "dry-run",
    ) in api.log


def test_runner_leaves_nothing_behind(small_plan: ClusterPlan) -> None:
    api = FakeApi(_cluster_answers)
    _with_engine_crds(api)
    api.put(_namespace("team-a", {}))
    runner = _runner(api, [])
    runner.run([small_plan], _cases())
    leftovers = [
        r
        for r, o in api.objects.items()
        if (o["metadata"].get("labels") or {}).get(RUN_LABEL) == runner.run_id
        and r[1] != "Namespace"
    ]
    assert leftovers == []
    namespaces = {r[2] for r in api.objects if r[1] == "Namespace"}
    assert "team-a" in namespaces and not any(n.startswith(PREFIX) for n in namespaces)


def test_runner_skips_targets_whose_engine_is_absent(small_plan: ClusterPlan) -> None:
    api = FakeApi(_cluster_answers)
    _with_engine_crds(api, ("kyverno",))
    runner = _runner(api, [])
    observations = runner.run([small_plan], _cases())
    assert {o.target for o in observations} == {"kyverno", "psa", "vap"}
    assert any("gatekeeper is not installed" in p for p in runner.problems)


def _kind_runner(api: FakeApi, recorded: RecordedKind, messages: list[str]) -> ClusterRunner:
    manifests = {e: str(DATA / f"manifests/{e}.yaml") for e in ("gatekeeper", "kyverno")}

    def factory(kubeconfig: Path | None, context: str | None) -> FakeApi:
        assert kubeconfig is not None and context == "kind-polgen-e2e"
        return api

    return ClusterRunner(
        "kind",
        progress=messages.append,
        manifests=manifests,
        timeouts=Timeouts(engine=1, policies=1, pods=1),
        api_factory=factory,
        kind=Kind("/opt/kind", recorded),
    )


def test_kind_run_creates_installs_closes_the_webhook_and_deletes(
    monkeypatch: pytest.MonkeyPatch, small_plan: ClusterPlan
) -> None:
    monkeypatch.setattr("polgen.cluster.session.docker_problem", lambda: None)
    recorded, api, messages = RecordedKind([]), FakeApi(_cluster_answers), []
    observations = _kind_runner(api, recorded, messages).run([small_plan], _cases()[:1])
    verbs = [args[1:3] for args in recorded.commands]
    assert verbs == [["version"], ["get", "clusters"], ["create", "cluster"], ["delete", "cluster"]]
    patches = [json.loads(body) for verb, _, _, body in api.log if verb == "patch"]
    assert patches == [
        {"webhooks": [{"name": "validation.gatekeeper.sh", "failurePolicy": "Fail"}]}
    ]
    assert {o.target for o in observations} == set(small_plan.targets)


def test_kind_run_reuses_an_existing_cluster_and_keeps_it(
    monkeypatch: pytest.MonkeyPatch, small_plan: ClusterPlan
) -> None:
    monkeypatch.setattr("polgen.cluster.session.docker_problem", lambda: None)
    recorded = RecordedKind(["polgen-e2e"])
    _kind_runner(FakeApi(_cluster_answers), recorded, []).run([small_plan], _cases()[:1])
    verbs = [args[1:3] for args in recorded.commands]
    assert verbs == [["version"], ["get", "clusters"], ["get", "kubeconfig"]]


def test_kind_run_without_docker_says_why(
    monkeypatch: pytest.MonkeyPatch, small_plan: ClusterPlan
) -> None:
    from polgen.cluster.session import ClusterUnavailable

    reason = "no Docker daemon reachable (/var/run/docker.sock is absent and DOCKER_HOST is unset)"
    monkeypatch.setattr("polgen.cluster.session.docker_problem", lambda: reason)
    with pytest.raises(ClusterUnavailable, match="no Docker daemon reachable"):
        _kind_runner(FakeApi(), RecordedKind([]), []).run([small_plan], _cases())


# --- the real kubernetes client against a recorded API server -----------------------------------

DISCOVERY: dict[str, Any] = {
    "/version": {"major": "1", "minor": "34", "gitVersion": "v1.34.0"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {
        "kind": "APIGroupList",
        "groups": [
            {
                "name": "kyverno.io",
                "versions": [{"groupVersion": "kyverno.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "kyverno.io/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
            },
            {
                "name": "pods/ephemeralcontainers",
                "singularName": "",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["get", "patch", "update"],
            },
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["create", "delete", "get", "list", "patch"],
            },
        ],
    },
    "/apis/kyverno.io/v1": {
        "kind": "APIResourceList",
        "groupVersion": "kyverno.io/v1",
        "resources": [
            {
                "name": "clusterpolicies",
                "singularName": "clusterpolicy",
                "namespaced": False,
                "kind": "ClusterPolicy",
                "verbs": ["create", "delete", "get", "list", "patch"],
            },
        ],
    },
}
PSA_TEXT = (
    'would violate PodSecurity "restricted:latest": privileged (container "app" must not set'
    " securityContext.privileged=true)"
)
PSA_WARNING = "299 - " + json.dumps(PSA_TEXT)  # the header quotes like a JSON string


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An HTTP server answering like the API server (discovery, then recorded replies per
    method and path), and a kubeconfig for it."""
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the dynamic client's discovery cache
    monkeypatch.setattr("tempfile.tempdir", None)
    requests: list[Recorded] = []
    replies: dict[tuple[str, str], tuple[int, dict[str, Any], list[str]]] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            requests.append(
                Recorded(
                    self.command,
                    url.path,
                    urllib.parse.parse_qs(url.query),
                    self.headers.get("Content-Type", ""),
                    json.loads(raw) if raw else None,
                )
            )
            if self.command == "GET" and url.path in DISCOVERY:
                status, body, warnings = 200, DISCOVERY[url.path], []
            else:
                status, body, warnings = replies.get(
                    (self.command, url.path),
                    (
                        404,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "reason": "NotFound",
                            "message": "not found",
                            "code": 404,
                        },
                        [],
                    ),
                )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for warning in warnings:
                self.send_header("Warning", warning)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            }
        )
    )
    yield kubeconfig, requests, replies
    server.shutdown()


def _status(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }


def test_kube_api_dry_runs_keep_status_message_and_warnings(api_server: Any) -> None:
    from polgen.cluster.kube import KubeApi

    kubeconfig, requests, replies = api_server
    denial = 'admission webhook "validation.gatekeeper.sh" denied the request: [x] no'
    replies[("POST", "/api/v1/namespaces/ns/pods")] = (403, _status(403, denial), [PSA_WARNING])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "ns"}}
    reply = KubeApi(kubeconfig, "fake").dry_run_create(pod)
    assert reply == ApiReply(
        403,
        denial,
        (PSA_TEXT,),
    )
    assert requests[-1].query == {"dryRun": ["All"]} and requests[-1].body == pod
    replies[("POST", "/api/v1/namespaces/ns/pods")] = (201, pod, [PSA_WARNING])
    assert KubeApi(kubeconfig, "fake").dry_run_create(pod).warnings[0].startswith("would violate")


def test_kube_api_patches_ephemeral_containers_like_kubectl_debug(api_server: Any) -> None:
    from polgen.cluster.kube import KubeApi

    kubeconfig, requests, replies = api_server
    path = "/api/v1/namespaces/ns/pods/web/ephemeralcontainers"
    replies[("PATCH", path)] = (200, {"kind": "Pod"}, [])
    debugger = {"name": "debugger", "image": "busybox"}
    reply = KubeApi(kubeconfig, "fake").patch_ephemeral_containers("web", "ns", [debugger], True)
    assert reply == ApiReply(200)
    sent = requests[-1]
    assert (sent.method, sent.path) == ("PATCH", path)
    assert sent.content_type == "application/strategic-merge-patch+json"
    assert sent.query == {"dryRun": ["All"], "fieldManager": ["polgen-e2e"]}
    assert sent.body == {"spec": {"ephemeralContainers": [debugger]}}
    denial = 'pods "web" is forbidden: violates PodSecurity "restricted:latest": privileged'
    replies[("PATCH", path)] = (403, _status(403, denial), [PSA_WARNING])
    reply = KubeApi(kubeconfig, "fake").patch_ephemeral_containers("web", "ns", [debugger], False)
    assert reply == ApiReply(403, denial, (PSA_TEXT,))
    assert requests[-1].query == {"fieldManager": ["polgen-e2e"]}


def test_kube_api_server_side_applies_and_maps_errors(api_server: Any) -> None:
    from polgen.cluster.kube import KubeApi

    kubeconfig, requests, replies = api_server
    api = KubeApi(kubeconfig, "fake")
    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "p"}}
    replies[("PATCH", "/apis/kyverno.io/v1/clusterpolicies/p")] = (200, policy, [])
    api.apply(policy)
    sent = requests[-1]
    assert sent.content_type == "application/apply-patch+yaml"
    assert sent.query == {"fieldManager": ["polgen-e2e"], "force": ["true"]}
    assert api.get("kyverno.io/v1", "ClusterPolicy", "absent") is None
    api.delete("kyverno.io/v1", "ClusterPolicy", "absent")
    replies[("POST", "/api/v1/namespaces")] = (
        409,
        _status(409, 'namespaces "x" already exists'),
        [],
    )
    with pytest.raises(ApiError, match="already exists") as error:
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    assert error.value.status == 409
    with pytest.raises(NotServedError):
        api.apply(
            {
                "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                "kind": "PolgenX",
                "metadata": {"name": "c"},
            }
        )
    replies[("GET", "/api/v1/namespaces")] = (
        200,
        {
            "kind": "NamespaceList",
            "apiVersion": "v1",
            "items": [{"metadata": {"name": "polgen-e2e-1-vap-prd"}}],
        },
        [],
    )
    assert [n["metadata"]["name"] for n in api.list_objects("v1", "Namespace", None, "a=b")] == [
        "polgen-e2e-1-vap-prd"
    ]
    assert requests[-1].query == {"labelSelector": ["a=b"]}

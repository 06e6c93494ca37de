"""Meta-tests of the catalog fixtures, judged by the reference semantics.

Conventions a fixture follows (catalog/policies/<id>/fixtures/{allowed,disallowed}/<name>.yaml):
- one Kubernetes object per file, first line `# <what it shows>`; no namespace (tests send it to
  the example fleet's namespace `prd`) unless the policy is about namespaces;
- `ephemeral-<...>.yaml` is a Pod carrying spec.ephemeralContainers: it is sent as the UPDATE of
  the `pods/ephemeralcontainers` subresource `kubectl debug` makes (the only way the API server
  accepts it);
- a disallowed fixture fails its own policy and no other, unless its name (after an optional
  `ephemeral-`) starts with `breakout-`: then a comment line `# also violates: <id>, <id>` names
  exactly the other policies it fails (privileged: true, for one, cannot be combined with
  allowPrivilegeEscalation: false in a valid pod);
- every allowed fixture passes every policy with the example fleet's parameters;
- "every policy" means every policy a fleet's '*' selects (not `optIn`), plus the fixture's own.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from polgen.admission import KNOWN_KINDS, AdmissionRequest, debug_request, request_for
from polgen.catalog import Catalog, Policy, load_catalog
from polgen.checks import CONTAINER_TYPES
from polgen.fleet import load_fleet
from polgen.semantics import CONTAINER_LABELS, evaluate_policy

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalog"
CATALOG: Catalog = load_catalog(CATALOG_DIR)
FLEET_PARAMETERS: dict[str, dict[str, Any]] = load_fleet(CATALOG_DIR / "fleet.yaml")[0].parameters
FIXTURE_NAMESPACE = "prd"
EPHEMERAL_PREFIX = "ephemeral-"
MULTI_POLICY_PREFIX = "breakout-"
ALSO_VIOLATES = "# also violates:"
MIN_FIXTURES = 3
VERDICTS: tuple[Literal["allowed", "disallowed"], ...] = ("allowed", "disallowed")
POD_WORKLOADS = {"Pod", "Deployment", "CronJob", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"}


@cache
def _parse(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


@dataclasses.dataclass(frozen=True)
class Fixture:
    policy_id: str
    verdict: Literal["allowed", "disallowed"]
    path: Path

    @property
    def id(self) -> str:
        return f"{self.policy_id}/{self.verdict}/{self.path.name}"

    @property
    def policy(self) -> Policy:
        return CATALOG.get(self.policy_id)

    @property
    def ephemeral(self) -> bool:
        return self.path.name.startswith(EPHEMERAL_PREFIX)

    @property
    def multi_policy(self) -> bool:
        return self.path.name.removeprefix(EPHEMERAL_PREFIX).startswith(MULTI_POLICY_PREFIX)

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def manifest(self) -> dict[str, Any]:
        """The parsed object (parsed once; tests must not change it)."""
        loaded = _parse(self.path)
        assert isinstance(loaded, dict), f"{self.id} is not a mapping"
        return loaded

    def also_violates(self) -> set[str]:
        """The other policies a multi-policy fixture declares it fails."""
        for line in self.text().splitlines():
            if line.startswith(ALSO_VIOLATES):
                return {item.strip() for item in line.removeprefix(ALSO_VIOLATES).split(",")}
        return set()

    def request(self) -> AdmissionRequest:
        """CREATE for a manifest; `kubectl debug` (subresource UPDATE) for an ephemeral fixture."""
        obj = self.manifest()
        if self.ephemeral:
            return debug_request(obj, FIXTURE_NAMESPACE)
        return request_for(obj, default_namespace=FIXTURE_NAMESPACE)


FIXTURES = [
    Fixture(policy_id, verdict, path)
    for policy_id, entry in CATALOG.entries.items()
    for verdict in VERDICTS
    for path in entry.fixtures(verdict)
]
ALLOWED = [f for f in FIXTURES if f.verdict == "allowed"]
DISALLOWED = [f for f in FIXTURES if f.verdict == "disallowed"]


def judged_policies(fixture: Fixture) -> list[Policy]:
    """The policies a fixture must agree with: a fleet's '*' and its own."""
    return [p for p in CATALOG.policies if not p.optIn or p.id == fixture.policy_id]


def messages_of(request: AdmissionRequest, policies: list[Policy]) -> dict[str, list[str]]:
    """Policy id -> oracle messages, for every policy the request fails."""
    results = {
        policy.id: evaluate_policy(policy, FLEET_PARAMETERS.get(policy.id, {}), request)
        for policy in policies
    }
    return {policy_id: messages for policy_id, messages in results.items() if messages}


@cache
def failing_policies(fixture: Fixture) -> dict[str, list[str]]:
    return messages_of(fixture.request(), judged_policies(fixture))


def own_messages(policy_id: str) -> list[str]:
    """Every message the policy's disallowed fixtures get from it."""
    return [
        message
        for f in DISALLOWED
        if f.policy_id == policy_id
        for message in failing_policies(f).get(policy_id, [])
    ]


@pytest.mark.parametrize("policy_id", sorted(CATALOG.entries))
def test_every_policy_has_enough_fixtures(policy_id: str) -> None:
    entry = CATALOG.entries[policy_id]
    assert len(entry.fixtures("allowed")) >= MIN_FIXTURES
    assert len(entry.fixtures("disallowed")) >= MIN_FIXTURES


@pytest.mark.parametrize("policy_id", sorted(CATALOG.entries))
def test_every_policy_covers_its_subject_kinds(policy_id: str) -> None:
    """Pod policies show a Deployment and a CronJob; Service policies only Services."""
    kinds = {f.manifest()["kind"] for f in FIXTURES if f.policy_id == policy_id}
    if CATALOG.get(policy_id).subject == "service":
        assert kinds == {"Service"}
    else:
        assert {"Deployment", "CronJob"} <= kinds


def test_the_fixtures_cover_every_workload_family() -> None:
    kinds = {f.manifest()["kind"] for f in FIXTURES}
    assert {*POD_WORKLOADS, "Service"} <= kinds


def _container_types(policy: Policy) -> set[str]:
    return {t for check in policy.checks for t in getattr(check, "containerTypes", [])}


@pytest.mark.parametrize("policy_id", sorted(CATALOG.entries))
def test_container_level_policies_cover_every_container_list(policy_id: str) -> None:
    """Disallowed fixtures catch a container and an init container; kubectl debug is shown."""
    types = _container_types(CATALOG.get(policy_id))
    messages = own_messages(policy_id)
    for container_type in sorted(types - {"ephemeralContainers"}):
        label = CONTAINER_LABELS[container_type]
        assert any(m.startswith(f'{label} "') for m in messages), f"no {label} caught"
    if "ephemeralContainers" in types:
        assert any(f.ephemeral for f in FIXTURES if f.policy_id == policy_id)


@pytest.mark.parametrize(
    "policy_id",
    sorted(
        p.id for p in CATALOG.policies
        if any(check.kind == "pod-and-container-field" for check in p.checks)
    ),
)
def test_pod_and_container_policies_catch_both_levels(policy_id: str) -> None:
    messages = own_messages(policy_id)
    assert any(m.startswith("spec.") for m in messages), "no pod-level setting caught"
    labels = tuple(f'{CONTAINER_LABELS[t]} "' for t in CONTAINER_TYPES)
    assert any(m.startswith(labels) for m in messages), "no container-level setting caught"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.id)
def test_fixture_is_one_named_manifest(fixture: Fixture) -> None:
    text = fixture.text()
    assert text.startswith("# "), "the first line must say what the fixture shows"
    documents = [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc is not None]
    assert len(documents) == 1
    obj = fixture.manifest()
    assert obj["kind"] in KNOWN_KINDS
    group, version, _, _ = KNOWN_KINDS[obj["kind"]]
    assert obj["apiVersion"] == (f"{group}/{version}" if group else version)
    metadata = obj["metadata"]
    assert isinstance(metadata.get("name"), str) and metadata["name"]
    about_namespaces = any(check.kind == "namespace" for check in fixture.policy.checks)
    assert ("namespace" in metadata) == about_namespaces, "tests decide the namespace"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.id)
def test_ephemeral_fixtures_are_named_so(fixture: Fixture) -> None:
    obj = fixture.manifest()
    has_ephemeral = bool((obj.get("spec") or {}).get("ephemeralContainers"))
    assert has_ephemeral == fixture.ephemeral
    if fixture.ephemeral:
        assert obj["kind"] == "Pod"
        assert "pods/ephemeralcontainers" in fixture.text().split("apiVersion:")[0]


@pytest.mark.parametrize("fixture", ALLOWED, ids=lambda f: f.id)
def test_allowed_fixture_passes_every_policy(fixture: Fixture) -> None:
    assert failing_policies(fixture) == {}


@pytest.mark.parametrize("fixture", DISALLOWED, ids=lambda f: f.id)
def test_disallowed_fixture_fails_its_own_policy(fixture: Fixture) -> None:
    assert fixture.policy_id in failing_policies(fixture)


@pytest.mark.parametrize("fixture", DISALLOWED, ids=lambda f: f.id)
def test_disallowed_fixture_fails_only_the_policies_it_declares(fixture: Fixture) -> None:
    declared = fixture.also_violates()
    assert bool(declared) == fixture.multi_policy, (
        f"name it {MULTI_POLICY_PREFIX}* exactly when it has an '{ALSO_VIOLATES}' line"
    )
    assert declared <= set(CATALOG.entries) - {fixture.policy_id}
    assert set(failing_policies(fixture)) == {fixture.policy_id} | declared


@pytest.mark.parametrize("fixture", ALLOWED, ids=lambda f: f.id)
def test_allowed_fixture_declares_no_violations(fixture: Fixture) -> None:
    assert not fixture.multi_policy
    assert not fixture.also_violates()


@pytest.mark.parametrize(
    "fixture",
    [f for f in DISALLOWED if f.manifest()["kind"] == "Pod" and not f.ephemeral],
    ids=lambda f: f.id,
)
def test_label_edit_of_a_disallowed_pod_meets_only_mutable_checks(fixture: Fixture) -> None:
    """A plain Pod UPDATE (label edit, finalizer removal) runs only image and label checks, so
    an existing pod that fails an immutable-field policy can still be managed."""
    obj = fixture.manifest()
    update = dataclasses.replace(
        request_for(obj, "UPDATE", FIXTURE_NAMESPACE), old_object=obj
    )
    expected = {
        policy_id
        for policy_id, messages in failing_policies(fixture).items()
        if any(check.mutable for check in CATALOG.get(policy_id).checks)
    }
    assert set(messages_of(update, judged_policies(fixture))) == expected

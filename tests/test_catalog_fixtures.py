"""Meta-tests of the catalog fixtures, judged by the reference semantics.

Conventions a fixture follows (catalog/policies/<id>/fixtures/{allowed,disallowed}/<name>.yaml):
- one Kubernetes object per file, first line `# <what it shows>`, no namespace;
- `ephemeral-<...>.yaml` is a Pod carrying spec.ephemeralContainers: it is sent as an UPDATE of
  the `pods/ephemeralcontainers` subresource (the only way the API server accepts it);
- a disallowed fixture fails its own policy and no other, unless its name (after an optional
  `ephemeral-`) starts with `breakout-`: then a comment line `# also violates: <id>, <id>` names
  exactly the other policies it fails (privileged: true, for one, cannot be combined with
  allowPrivilegeEscalation: false in a valid pod);
- every allowed fixture passes every policy with the example fleet's parameters.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from polgen.admission import KNOWN_KINDS, AdmissionRequest, request_for
from polgen.catalog import Catalog, load_catalog
from polgen.fleet import load_fleet
from polgen.semantics import evaluate_policy

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalog"
CATALOG: Catalog = load_catalog(CATALOG_DIR)
FLEET_PARAMETERS: dict[str, dict[str, Any]] = load_fleet(CATALOG_DIR / "fleet.yaml")[0].parameters
EPHEMERAL_PREFIX = "ephemeral-"
MULTI_POLICY_PREFIX = "breakout-"
ALSO_VIOLATES = "# also violates:"
MIN_FIXTURES = 3
VERDICTS: tuple[Literal["allowed", "disallowed"], ...] = ("allowed", "disallowed")


@dataclasses.dataclass(frozen=True)
class Fixture:
    policy_id: str
    verdict: Literal["allowed", "disallowed"]
    path: Path

    @property
    def id(self) -> str:
        return f"{self.policy_id}/{self.verdict}/{self.path.name}"

    @property
    def ephemeral(self) -> bool:
        return self.path.name.startswith(EPHEMERAL_PREFIX)

    @property
    def multi_policy(self) -> bool:
        return self.path.name.removeprefix(EPHEMERAL_PREFIX).startswith(MULTI_POLICY_PREFIX)

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def manifest(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.text())
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
        if not self.ephemeral:
            return request_for(obj)
        old = copy.deepcopy(obj)
        del old["spec"]["ephemeralContainers"]
        return dataclasses.replace(
            request_for(obj, "UPDATE"), old_object=old, sub_resource="ephemeralcontainers"
        )


FIXTURES = [
    Fixture(policy_id, verdict, path)
    for policy_id, entry in CATALOG.entries.items()
    for verdict in VERDICTS
    for path in entry.fixtures(verdict)
]
ALLOWED = [f for f in FIXTURES if f.verdict == "allowed"]
DISALLOWED = [f for f in FIXTURES if f.verdict == "disallowed"]


def failing_policies(fixture: Fixture) -> dict[str, list[str]]:
    """Policy id -> oracle messages, for every catalog policy the fixture fails."""
    request = fixture.request()
    results = {
        policy.id: evaluate_policy(policy, FLEET_PARAMETERS.get(policy.id, {}), request)
        for policy in CATALOG.policies
    }
    return {policy_id: messages for policy_id, messages in results.items() if messages}


@pytest.mark.parametrize("policy_id", sorted(CATALOG.entries))
def test_every_policy_has_enough_fixtures(policy_id: str) -> None:
    entry = CATALOG.entries[policy_id]
    assert len(entry.fixtures("allowed")) >= MIN_FIXTURES
    assert len(entry.fixtures("disallowed")) >= MIN_FIXTURES


@pytest.mark.parametrize("policy_id", sorted(CATALOG.entries))
def test_every_policy_has_a_deployment_and_a_cronjob(policy_id: str) -> None:
    kinds = {f.manifest()["kind"] for f in FIXTURES if f.policy_id == policy_id}
    assert {"Deployment", "CronJob"} <= kinds


def test_the_fixtures_cover_every_workload_family() -> None:
    kinds = {f.manifest()["kind"] for f in FIXTURES}
    assert {"Pod", "Deployment", "CronJob", "Job", "StatefulSet", "DaemonSet"} <= kinds


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.id)
def test_fixture_is_one_named_manifest(fixture: Fixture) -> None:
    text = fixture.text()
    assert text.startswith("# "), "the first line must say what the fixture shows"
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert len(documents) == 1
    obj = fixture.manifest()
    assert obj["kind"] in KNOWN_KINDS
    group, version, _, _ = KNOWN_KINDS[obj["kind"]]
    assert obj["apiVersion"] == (f"{group}/{version}" if group else version)
    metadata = obj["metadata"]
    assert isinstance(metadata.get("name"), str) and metadata["name"]
    assert "namespace" not in metadata, "tests decide the namespace"


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

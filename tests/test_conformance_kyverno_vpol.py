"""Upstream's own ValidatingPolicies (kyverno/policies `pod-security-vpol`) run by our engine on
their `.kyverno-test/resource.yaml` resources, compared with `kyverno-test.yaml`.

`kyverno test` defaults are mirrored: operation CREATE, namespace `default`, resources named
`name` or `namespace/name`, Deployments and CronJobs evaluated through autogen. Upstream `fail`
expectations went unchecked by `kyverno test` for years (reference kyverno.md §0.4), so every
disagreement must be listed below with the reason we believe our result (or upstream's) is right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polgen.admission import request_for
from polgen.engines.kyverno_validating import ENGINE
from tests.peer import peer_dir

# (test folder, policy) -> (expectations, why they cannot be evaluated). Not disagreements: the
# policy document is not available, so these entries are excluded from the agreement ratio.
NOT_EVALUABLE: dict[tuple[str, str], tuple[int, str]] = {
    ("restricted/disallow-capabilities-strict", "adding-capabilities-strict"): (
        60,
        "the test's second policy ./adding-capabilities-strict.yaml lives inside .kyverno-test/ "
        "and was not copied into the peer data (SOURCE.md: it is itself a ValidatingPolicy)",
    ),
}

# (test folder, policy, resource) -> why our result differs from the expectation. Currently none:
# all 805 evaluable expectations (403 fail, 402 pass) agree.
DISAGREEMENTS: dict[tuple[str, str, str], str] = {}

MINIMUM_AGREEMENT = 0.98


@dataclass
class Tally:
    """What the comparison found."""

    agreed: dict[str, int] = field(default_factory=dict)
    disagreed: dict[tuple[str, str, str], str] = field(default_factory=dict)
    not_evaluable: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        total = sum(self.agreed.values()) + len(self.disagreed)
        return sum(self.agreed.values()) / total if total else 0.0


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _resources(test_dir: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    """Resources by `name` and by `namespace/name` (namespace defaulting to `default`)."""
    found: dict[str, dict[str, Any]] = {}
    for file in files:
        for resource in _load_all(test_dir / file):
            metadata = resource.get("metadata") or {}
            found[metadata["name"]] = resource
            found[f"{metadata.get('namespace') or 'default'}/{metadata['name']}"] = resource
    return found


def _compare(folder: str, test_file: Path, tally: Tally) -> None:
    test = yaml.safe_load(test_file.read_text())
    test_dir = test_file.parent
    documents = [
        (str(path), document)
        for path in (test_dir / p for p in test["policies"])
        if path.exists()
        for document in _load_all(path)
    ]
    policies = ENGINE.load(documents)
    loaded = {d["metadata"]["name"] for _, d in documents if ENGINE.accepts(d)}
    resources = _resources(test_dir, test["resources"])
    for expected in test["results"]:
        policy, want = expected["policy"], str(expected["result"]).strip()
        if policy not in loaded:
            key = (folder, policy)
            tally.not_evaluable[key] = tally.not_evaluable.get(key, 0) + len(expected["resources"])
            continue
        for name in expected["resources"]:
            request = request_for(resources[name], "CREATE", default_namespace="default")
            got = [r for r in policies.results(request) if r.policy == policy]
            status = got[0].status if len(got) == 1 else f"{len(got)} results"
            if status == want:
                tally.agreed[want] = tally.agreed.get(want, 0) + 1
            else:
                detail = got[0].message if len(got) == 1 else ""
                tally.disagreed[(folder, policy, name)] = f"expected {want}, got {status} {detail}"


def test_upstream_validating_policies_agree_with_their_kyverno_tests() -> None:
    root = peer_dir("kyverno-policies", "pod-security-vpol")
    tally = Tally()
    test_files = sorted(root.glob("*/*/.kyverno-test/kyverno-test.yaml"))
    assert len(test_files) == 16
    for test_file in test_files:
        _compare(test_file.parent.parent.relative_to(root).as_posix(), test_file, tally)

    assert set(tally.disagreed) == set(DISAGREEMENTS), tally.disagreed
    assert tally.not_evaluable == {key: count for key, (count, _) in NOT_EVALUABLE.items()}
    assert tally.agreed.get("fail", 0) > 300 and tally.agreed.get("pass", 0) > 300, tally.agreed
    assert tally.ratio >= MINIMUM_AGREEMENT, (tally.ratio, tally.agreed, len(tally.disagreed))

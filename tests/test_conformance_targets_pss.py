"""The Pod Security bundles, rendered for every target and run by that target's offline engine,
give upstream's verdict on every upstream k8s.io/pod-security-admission fixture.

tests/test_conformance_catalog_pss.py proves the catalog's semantics (the oracle) per version;
this proves each target's rendered code keeps them: for each level and each version directory
from the bundles' minimum on, the bundle is planned at that version, rendered by gatekeeper,
kyverno (ClusterPolicy and ValidatingPolicy) and vap, loaded into the matching engine, and every
fixture is reviewed as a Pod and as a Deployment (with the API-server defaults applied there).
A rendered bundle only changes at a few versions and most fixtures repeat from one directory to
the next, so each (rendered output, fixture) pair is judged once.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines import ENGINES
from polgen.engines.base import PolicySet
from polgen.fleet import KyvernoFlavor
from polgen.plan import ClusterPlan
from polgen.targets import TARGETS
from tests.peer import peer_dir
from tests.test_conformance_catalog_pss import (
    DIRECTORIES,
    NAMESPACE,
    bundle_bindings,
    requests,
)

FLAVOURS: dict[str, tuple[str, KyvernoFlavor, str]] = {
    "gatekeeper": ("gatekeeper", "ClusterPolicy", "gatekeeper"),
    "kyverno-clusterpolicy": ("kyverno", "ClusterPolicy", "kyverno"),
    "kyverno-validatingpolicy": ("kyverno", "ValidatingPolicy", "kyverno-validating"),
    "vap": ("vap", "ClusterPolicy", "vap"),
}
NAMESPACE_OBJECT = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": NAMESPACE, "labels": {"kubernetes.io/metadata.name": NAMESPACE}},
}


@cache
def compiled(flavour: str, level: str, version: str) -> tuple[str, PolicySet]:
    """(digest of the rendered documents, the engine's compiled policies) for one bundle."""
    target, kyverno_flavor, engine = FLAVOURS[flavour]
    plan = ClusterPlan(
        "conformance", "", (target,), kyverno_flavor, bundle_bindings(level, version), ()
    )
    documents = [(doc.file, doc.body) for doc in TARGETS[target].render(plan)]
    digest = hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()
    return digest, _load(engine, digest, documents)


_LOADED: dict[tuple[str, str], PolicySet] = {}


def _load(engine: str, digest: str, documents: list[tuple[str, dict[str, Any]]]) -> PolicySet:
    if (engine, digest) not in _LOADED:
        _LOADED[(engine, digest)] = ENGINES[engine].load(documents)
    return _LOADED[(engine, digest)]


_VERDICTS: dict[tuple[str, str], tuple[bool, ...]] = {}


def denied(flavour: str, level: str, version: str, text: str) -> tuple[bool, ...]:
    """Per request (Pod, Deployment): was it denied? Memoized on rendered output and fixture."""
    digest, policy_set = compiled(flavour, level, version)
    key = (digest, text)
    if key not in _VERDICTS:
        pod = yaml.load(text, Loader=yaml.CSafeLoader)
        _VERDICTS[key] = tuple(
            any(v.action == "deny" for v in policy_set.review(request, NAMESPACE_OBJECT))
            for request in requests(pod)
        )
    return _VERDICTS[key]


@pytest.mark.parametrize("flavour", list(FLAVOURS))
@pytest.mark.parametrize(
    ("level", "version"), DIRECTORIES, ids=[f"{level}-{version}" for level, version in DIRECTORIES]
)
def test_rendered_bundle_agrees_with_upstream(flavour: str, level: str, version: str) -> None:
    directory: Path = peer_dir("pod-security-admission", "testdata", level, version)
    files = sorted(directory.glob("*/*.yaml"))
    report = []
    for file in files:
        expected = file.parent.name == "fail"
        for kind, verdict in zip(
            ("Pod", "Deployment"), denied(flavour, level, version, file.read_text()), strict=True
        ):
            if verdict != expected:
                report.append(f"{file.parent.name}/{file.name} as {kind}: denied={verdict}")
    assert files
    assert not report, f"{len(report)} disagreements in {len(files)} fixtures:\n" + "\n".join(
        report
    )

"""`polgen scan`: review manifests offline against what clusters enforce, or given policies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polgen import yamlio
from polgen.admission import Verdict, Violation
from polgen.engines.base import EngineError, PolicySet
from polgen.engines.psa import LevelPolicySet
from polgen.errors import PolgenError, Problem
from polgen.manifests import Manifest

if TYPE_CHECKING:
    from polgen.plan import ClusterPlan

_IGNORED_KINDS = frozenset({"Kustomization"})


@dataclass(frozen=True)
class PolicySource:
    """The compiled policies of one (cluster, target) pair, or of user-given policy files."""

    cluster: str | None
    target: str
    policy_sets: tuple[PolicySet, ...]


@dataclass(frozen=True)
class ScanResult:
    """One resource reviewed by one source: the unit of every report format."""

    manifest: Manifest
    cluster: str | None
    target: str
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        request = self.manifest.request
        return {
            "file": self.manifest.file,
            "kind": request.kind,
            "namespace": request.namespace,
            "name": request.name,
            "cluster": self.cluster,
            "target": self.target,
            "allowed": self.verdict.allowed,
            "violations": [_violation_json(v) for v in self.verdict.violations],
        }


def _violation_json(violation: Violation) -> dict[str, Any]:
    return {
        "policy": violation.policy,
        "rule": violation.rule,
        "action": violation.action,
        "message": violation.message,
    }


def _load_by_engine(
    documents: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, PolicySet]]:
    """Route each document to the engine that understands it and compile each engine's share."""
    from polgen.engines import ENGINES

    shares: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    problems: list[Problem] = []
    for source, document in documents:
        if document.get("kind") in _IGNORED_KINDS:
            continue
        names = [name for name, engine in ENGINES.items() if engine.accepts(document)]
        if not names:
            if document.get("kind") == "Namespace":
                continue
            problems.append(
                Problem(
                    source,
                    f"no engine evaluates {document.get('apiVersion')}/"
                    f"{document.get('kind')} (not a policy polgen can simulate)",
                )
            )
            continue
        shares.setdefault(names[0], []).append((source, document))
    if problems:
        raise PolgenError(problems)
    loaded = []
    for name in sorted(shares):
        try:
            loaded.append((name, ENGINES[name].load(shares[name])))
        except EngineError as exc:
            raise PolgenError.single(exc.source, exc.reason) from exc
    return loaded


def fleet_sources(plans: Iterable[ClusterPlan]) -> list[PolicySource]:
    """Render every target of every plan in memory and compile it for its engine."""
    from polgen.targets import TARGETS

    sources = []
    for plan in plans:
        for target_name in plan.targets:
            documents = [
                (f"{plan.name}/{target_name}/{doc.file}", doc.body)
                for doc in TARGETS[target_name].render(plan)
            ]
            policy_sets = tuple(policy_set for _, policy_set in _load_by_engine(documents))
            sources.append(PolicySource(plan.name, target_name, policy_sets))
    return sources


def policy_file_sources(files: list[Path]) -> list[PolicySource]:
    """Compile user-given policy files (any supported engine's documents), one source per engine."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolgenError.single(file, f"cannot read policy file: {exc.strerror}") from exc
        for document in yamlio.load_all(text, file):
            if isinstance(document, dict):
                documents.append((str(file), document))
    return [
        PolicySource(None, name, (policy_set,)) for name, policy_set in _load_by_engine(documents)
    ]


def pss_source(level: str, version: str) -> PolicySource:
    """Review directly against a Pod Security Standards level, as `--pss level:version` asks."""
    return PolicySource(None, "pss", (LevelPolicySet(level, version),))


def _namespace_objects(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        obj = manifest.request.object
        if manifest.request.kind == "Namespace" and obj:
            found[manifest.request.name] = obj
    return found


def namespace_object(name: str, known: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The Namespace as the API server has it: labels plus `kubernetes.io/metadata.name`."""
    if not name:
        return None
    base = known.get(name, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    metadata = dict(base.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), "kubernetes.io/metadata.name": name}
    return {**base, "metadata": metadata}


def scan(manifests: list[Manifest], sources: list[PolicySource]) -> list[ScanResult]:
    """Review every manifest against every source."""
    known = _namespace_objects(manifests)
    results = []
    for source in sources:
        for manifest in manifests:
            namespace = namespace_object(manifest.request.namespace, known)
            violations: list[Violation] = []
            for policy_set in source.policy_sets:
                try:
                    violations.extend(policy_set.review(manifest.request, namespace))
                except EngineError as exc:
                    raise PolgenError.single(
                        manifest.file, f"{source.target}: cannot evaluate: {exc.reason}"
                    ) from exc
            results.append(
                ScanResult(manifest, source.cluster, source.target, Verdict(tuple(violations)))
            )
    return results

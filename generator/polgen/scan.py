"""`polgen scan`: review manifests offline against what clusters enforce, or given policies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polgen import scan_cache, yamlio
from polgen.admission import Verdict, Violation
from polgen.engines import engine
from polgen.engines.base import EngineError, PolicySet
from polgen.engines.psa import LevelPolicySet
from polgen.errors import PolgenError, Problem
from polgen.manifests import Manifest
from polgen.scan_cache import Rendered, Routed

if TYPE_CHECKING:
    from polgen.fleet import KyvernoFlavor
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


def _route(documents: list[tuple[str, dict[str, Any]]]) -> Routed:
    """Each document's engine: the first of the registry that understands it."""
    from polgen.engines import ENGINES

    shares: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    problems: list[Problem] = []
    for source, document in documents:
        if document.get("kind") in _IGNORED_KINDS:
            continue
        names = [name for name, candidate in ENGINES.items() if candidate.accepts(document)]
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
    return sorted(shares.items())


def _compile(routed: Routed) -> list[tuple[str, PolicySet]]:
    """Each engine's share compiled by that engine (only those engines are imported)."""
    loaded = []
    for name, documents in routed:
        try:
            loaded.append((name, engine(name).load(documents)))
        except EngineError as exc:
            raise PolgenError.single(exc.source, exc.reason) from exc
    return loaded


def render_sources(plans: Iterable[ClusterPlan]) -> Rendered:
    """Every target of every plan rendered in memory, its documents routed to their engines."""
    from polgen.targets import TARGETS

    rendered: Rendered = []
    for plan in plans:
        for target_name in plan.targets:
            documents = [
                (f"{plan.name}/{target_name}/{doc.file}", doc.body)
                for doc in TARGETS[target_name].render(plan)
            ]
            rendered.append((plan.name, target_name, _route(documents)))
    return rendered


def compiled_sources(rendered: Rendered) -> list[PolicySource]:
    """Rendered sources compiled by their engines."""
    return [
        PolicySource(cluster, target, tuple(policy_set for _, policy_set in _compile(routed)))
        for cluster, target, routed in rendered
    ]


def fleet_sources(plans: Iterable[ClusterPlan]) -> list[PolicySource]:
    """Render every target of every plan in memory and compile it for its engine."""
    return compiled_sources(render_sources(plans))


def cached_fleet_sources(
    catalog_dir: Path | None,
    fleet_file: Path | None,
    clusters: tuple[str, ...],
    targets: tuple[str, ...],
    kyverno_flavor: KyvernoFlavor | None,
) -> list[PolicySource]:
    """What the selected clusters and targets enforce, compiled; the rendering comes from the
    scan cache when the inputs are unchanged (`scan_cache`), else from the catalog and fleet."""
    selection = json.dumps([sorted(set(clusters)), sorted(set(targets)), kyverno_flavor])
    key = scan_cache.fleet_key(catalog_dir, fleet_file, [selection])
    rendered = scan_cache.load(key) if key else None
    if rendered is None:
        from polgen.pipeline import load_inputs, selected_plans

        inputs = load_inputs(catalog_dir, fleet_file)
        rendered = render_sources(selected_plans(inputs.plans, clusters, targets, kyverno_flavor))
        if key:
            scan_cache.store(key, rendered)
    return compiled_sources(rendered)


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
        PolicySource(None, name, (policy_set,))
        for name, policy_set in _compile(_route(documents))
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

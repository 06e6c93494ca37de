"""Where each target of a plan lives in the real cluster, so every answer has one author.

A case written for namespace `prd` is sent, for each target, to that target's own copy of it
(`polgen-e2e-<n>-gatekeeper-prd`, `-kyverno-prd` or `-kyverno-vpol-prd`, `-vap-prd`,
`-psa-prd`). Each target is rendered from the plan with its bindings re-pointed at its own
copies only (`dataclasses.replace(plan, bindings=...)`), and only the psa copies carry Pod
Security labels; the other copies are labelled `privileged` explicitly, so a cluster-wide Pod
Security default cannot answer for another target. Resource names stay those of the plan, which
is how the harness names the catalog policy behind a violation.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from polgen.cluster.responses import Engine
from polgen.plan import Binding, ClusterPlan, NamespaceSecurity
from polgen.targets import TARGETS
from polgen.targets.base import Document

PREFIX = "polgen-e2e"
MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "polgen.dev/e2e-run"
TARGET_LABEL = "polgen.dev/e2e-target"
SOURCE_LABEL = "polgen.dev/e2e-source-namespace"
PSA_LABEL_PREFIX = "pod-security.kubernetes.io/"
PRIVILEGED_LABELS = {
    f"{PSA_LABEL_PREFIX}{mode}": "privileged" for mode in ("enforce", "audit", "warn")
}
MAX_NAME = 63
_SINGLE_FLAVOUR: dict[str, Engine] = {"gatekeeper": "gatekeeper", "vap": "vap", "psa": "psa"}


@dataclass(frozen=True)
class TargetShare:
    """One target of one plan in the cluster: its namespaces, resources and engine."""

    plan: str
    target: str
    engine: Engine
    namespaces: dict[str, str]
    """Namespace the cases were written for -> this target's copy of it."""
    documents: tuple[Document, ...]
    """The target's rendered resources (psa: the labelled Namespaces)."""

    @property
    def owned(self) -> frozenset[str]:
        """Names of the resources whose denials and warnings are this target's."""
        return frozenset(
            str(doc.body["metadata"]["name"])
            for doc in self.documents
            if doc.body.get("kind") != "Namespace"
        )


def engine_of(plan: ClusterPlan, target: str) -> Engine | None:
    """The admission engine that answers for a target (Kyverno has two policy flavours);
    None for a target the cluster runner does not know."""
    if target == "kyverno":
        return "kyverno-vpol" if plan.kyverno_flavor == "ValidatingPolicy" else "kyverno"
    return _SINGLE_FLAVOUR.get(target)


def copy_name(index: int, engine: str, source: str) -> str:
    """`polgen-e2e-<index>-<engine>-<source>`, shortened with a digest past 63 characters."""
    name = f"{PREFIX}-{index}-{engine}-{source}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(f"{PREFIX}-{index}-{engine}--{digest}")
    return f"{PREFIX}-{index}-{engine}-{source[:keep].rstrip('-')}-{digest}"


def rebind(binding: Binding, copies: dict[str, str]) -> Binding | None:
    """The binding re-pointed at the copies of the namespaces it selects (None: none of them).

    A catch-all binding (no namespaces) selects every copy whose source it does not exclude."""
    if binding.namespaces:
        selected = [copies[s] for s in binding.namespaces if s in copies]
    else:
        selected = [c for s, c in copies.items() if s not in binding.excluded_namespaces]
    if not selected:
        return None
    return dataclasses.replace(binding, namespaces=tuple(sorted(selected)), excluded_namespaces=())


def target_plan(plan: ClusterPlan, copies: dict[str, str]) -> ClusterPlan:
    """The plan as one target sees it: only the bindings and Pod Security labels of its copies."""
    bindings = tuple(b for b in (rebind(b, copies) for b in plan.bindings) if b is not None)
    namespaces = tuple(
        NamespaceSecurity(copies[n.namespace], n.group, n.labels)
        for n in plan.namespaces
        if n.namespace in copies
    )
    return dataclasses.replace(plan, bindings=bindings, namespaces=namespaces)


def plan_layout(plan: ClusterPlan, index: int, sources: Sequence[str]) -> list[TargetShare]:
    """Every target of the plan the runner knows, with its namespace copies and re-pointed
    resources (the caller reports the others)."""
    shares = []
    for target in plan.targets:
        engine = engine_of(plan, target)
        if engine is None:
            continue
        copies = {source: copy_name(index, engine, source) for source in sorted(set(sources))}
        documents = TARGETS[target].render(target_plan(plan, copies))
        shares.append(TargetShare(plan.name, target, engine, copies, tuple(documents)))
    return shares


def namespace_body(
    share: TargetShare, source: str, run_id: str, pod_security: bool = True
) -> dict[str, Any]:
    """The Namespace of one copy: e2e ownership labels, and the Pod Security labels the psa
    target renders for it (with `pod_security`; before that, while the base objects of UPDATE
    cases are created, it is privileged). Every other copy is explicitly `privileged`, as an
    unlabelled namespace is offline, whatever the cluster's defaults."""
    name = share.namespaces[source]
    rendered = [
        doc.body["metadata"].get("labels") or {}
        for doc in share.documents
        if doc.body.get("kind") == "Namespace" and doc.body["metadata"]["name"] == name
    ]
    labels: dict[str, str] = dict(PRIVILEGED_LABELS)
    if pod_security and rendered:
        labels = dict(rendered[0])
    labels.update(
        {MANAGED_BY: PREFIX, RUN_LABEL: run_id, TARGET_LABEL: share.engine, SOURCE_LABEL: source}
    )
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(sorted(labels.items()))},
    }


def policy_documents(share: TargetShare, run_id: str) -> list[dict[str, Any]]:
    """The target's resources to apply, each labelled with the run (psa has none besides its
    Namespaces, which `namespace_body` builds)."""
    bodies = []
    for doc in share.documents:
        if doc.body.get("kind") == "Namespace":
            continue
        body = dict(doc.body)
        metadata = dict(body["metadata"])
        metadata["labels"] = {**(metadata.get("labels") or {}), RUN_LABEL: run_id}
        body["metadata"] = metadata
        bodies.append(body)
    return bodies

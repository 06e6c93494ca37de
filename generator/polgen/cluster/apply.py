"""Put a plan's targets into the cluster and wait until each one enforces; clean up after.

Everything is server-side applied and labelled with the run (`polgen.dev/e2e-run`). An object
that exists without this run's label is never overwritten (a stale run's objects only where
the caller allows it: the kind cluster is polgen's own), and cleanup deletes only objects that
still carry this run's label.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polgen.cluster.kube import Api, NotServedError
from polgen.cluster.layout import MANAGED_BY, PREFIX, RUN_LABEL
from polgen.cluster.readiness import (
    cluster_policy_ready,
    constraint_ready,
    constraint_template_ready,
    expansion_template_ready,
    validating_policy_ready,
    wait_until,
)
from polgen.cluster.responses import Reading, read_reply

CANARIES_FILE = Path(__file__).with_name("canaries.yaml")
CANARY_MESSAGE = "polgen-e2e canary"
CONSTRAINT_GROUP = "constraints.gatekeeper.sh/"
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


class ClusterConflict(RuntimeError):
    """An object polgen-e2e would overwrite or delete belongs to someone else."""


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = body.setdefault("metadata", {})
    return metadata


def _ref(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    meta = body["metadata"]
    return body["apiVersion"], body["kind"], meta["name"], meta.get("namespace")


@dataclass
class Ledger:
    """What this run applied, so cleanup deletes exactly that (newest first)."""

    run_id: str
    adopt_stale: bool = False
    """May objects of an earlier polgen-e2e run be taken over (the kind cluster is ours)?"""
    applied: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def check_owner(self, api: Api, body: dict[str, Any]) -> None:
        """Refuse to overwrite an object this run (or, when allowed, polgen-e2e) did not make."""
        current = api.get(*_ref(body))
        if current is None:
            return
        labels = _meta(current).get("labels") or {}
        if labels.get(RUN_LABEL) == self.run_id:
            return
        if self.adopt_stale and labels.get(RUN_LABEL):
            return
        _, kind, name, namespace = _ref(body)
        where = f"{namespace}/" if namespace else ""
        raise ClusterConflict(
            f"{kind} {where}{name} exists and polgen-e2e did not create it in this run; "
            "run the e2e in a cluster of its own (or delete it)"
        )

    def apply(self, api: Api, body: dict[str, Any]) -> None:
        self.check_owner(api, body)
        api.apply(body)
        if _ref(body) not in self.applied:
            self.applied.append(_ref(body))


def _readiness(doc: dict[str, Any], webhook_pods: int) -> Callable[[dict[str, Any]], str | None]:
    """The predicate that says a policy resource of this kind is enforced."""
    kind, api_version = doc["kind"], doc["apiVersion"]
    if kind == "ConstraintTemplate":
        return lambda obj: constraint_template_ready(obj, webhook_pods)
    if kind == "ExpansionTemplate":
        return lambda obj: expansion_template_ready(obj, webhook_pods)
    if api_version.startswith(CONSTRAINT_GROUP):
        return lambda obj: constraint_ready(obj, webhook_pods)
    if kind == "ClusterPolicy":
        return cluster_policy_ready
    if kind == "ValidatingPolicy":
        return validating_policy_ready
    return lambda obj: None


class ShareInstall:
    """Applies one target's resources and reports what is not enforced yet. Constraints wait
    until Gatekeeper serves their kind (created from the template), so applying is retried
    inside the readiness loop until everything is applied and ready."""

    def __init__(self, api: Api, ledger: Ledger, docs: list[dict[str, Any]], pods: int) -> None:
        self.api = api
        self.ledger = ledger
        self.pending = list(docs)
        self.applied: list[dict[str, Any]] = []
        self.webhook_pods = pods

    def missing(self) -> list[str]:
        waiting = []
        for doc in list(self.pending):
            try:
                self.ledger.apply(self.api, doc)
            except NotServedError:
                waiting.append(f"{doc['kind']} {doc['metadata']['name']}: kind not served yet")
                continue
            self.pending.remove(doc)
            self.applied.append(doc)
        for doc in self.applied:
            current = self.api.get(*_ref(doc))
            if current is None:
                waiting.append(f"{doc['kind']} {doc['metadata']['name']}: not found")
                continue
            problem = _readiness(doc, self.webhook_pods)(current)
            if problem:
                waiting.append(problem)
        return waiting


def load_canaries(file: Path = CANARIES_FILE) -> dict[str, dict[str, Any]]:
    """The canary documents by kind."""
    docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]
    return {str(d["kind"]): d for d in docs}


class Canaries:
    """The in-process admission probes of one plan (see canaries.yaml)."""

    def __init__(self, api: Api, ledger: Ledger, index: int) -> None:
        self.api = api
        self.ledger = ledger
        self.message = f"{CANARY_MESSAGE} {index}"
        self.docs = load_canaries()

    def _labelled(self, kind: str, namespace: str | None = None) -> dict[str, Any]:
        body = copy.deepcopy(self.docs[kind])
        meta = _meta(body)
        run = {MANAGED_BY: PREFIX, RUN_LABEL: self.ledger.run_id}
        meta["labels"] = {**(meta.get("labels") or {}), **run}
        if namespace is not None:
            meta["namespace"] = namespace
        return body

    def install(self) -> None:
        """Apply after every ValidatingAdmissionPolicy of the plan (the order is the point)."""
        policy = self._labelled("ValidatingAdmissionPolicy")
        policy["spec"]["validations"][0]["message"] = self.message
        self.ledger.apply(self.api, policy)
        self.ledger.apply(self.api, self._labelled("ValidatingAdmissionPolicyBinding"))

    def vap_missing(self, namespace: str) -> list[str]:
        reply = self.api.dry_run_create(self._labelled("ConfigMap", namespace))
        if reply.status >= 400 and self.message in reply.message:
            return []
        return [f"ValidatingAdmissionPolicy canary not in force yet (HTTP {reply.status})"]

    def psa_missing(self, namespace: str, labels: dict[str, str]) -> list[str]:
        if labels.get(ENFORCE_LABEL, "privileged") == "privileged":
            return []
        reading: Reading = read_reply(
            "psa", (), self.api.dry_run_create(self._labelled("Pod", namespace))
        )
        denied = reading.verdict is not None and not reading.verdict.allowed
        return [] if denied else [f"Pod Security labels of {namespace} not in force yet"]


def install_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gatekeeper templates before their constraints; other resources as rendered."""
    first = [d for d in docs if d["kind"] in ("ConstraintTemplate", "ExpansionTemplate")]
    return [*first, *[d for d in docs if d not in first]]


def _ours(obj: dict[str, Any] | None, run_id: str) -> bool:
    """Labelled with this run and not already being deleted (deleting again is a conflict)."""
    if obj is None or _meta(obj).get("deletionTimestamp"):
        return False
    return (_meta(obj).get("labels") or {}).get(RUN_LABEL) == run_id


def retire(
    api: Api,
    ledger: Ledger,
    progress: Callable[[str], None],
    timeout: float | None = None,
) -> None:
    """Delete what this run applied (newest first) and the namespaces labelled with the run,
    each only while it still carries this run's label; with `timeout`, wait until the
    cluster-scoped objects are gone, so the next plan starts from a clean slate."""
    objects = [ref for ref in reversed(ledger.applied) if ref[1] != "Namespace"]
    deleted = [ref for ref in objects if _ours(api.get(*ref), ledger.run_id)]
    for ref in deleted:
        api.delete(*ref)
    selector = f"{MANAGED_BY}={PREFIX},{RUN_LABEL}={ledger.run_id}"
    namespaces = [
        _meta(ns)["name"]
        for ns in api.list_objects("v1", "Namespace", None, selector)
        if _ours(ns, ledger.run_id) and (_meta(ns).get("labels") or {}).get(MANAGED_BY) == PREFIX
    ]
    for name in namespaces:
        api.delete("v1", "Namespace", name)
    ledger.applied.clear()
    progress(f"cleanup: deleting {len(deleted)} objects and {len(namespaces)} namespaces")
    if timeout is not None:

        def remaining() -> list[str]:
            return [f"{ref[1]} {ref[2]}: still there" for ref in deleted if api.get(*ref)]

        wait_until("cleanup", remaining, progress, timeout)

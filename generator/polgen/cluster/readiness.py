"""When is an engine really enforcing? Predicates over the objects' recorded status, and the
one polling loop that waits on them with a timeout and progress messages.

Every predicate returns None when ready, or what is still missing (shown as progress), so a
wait that times out says exactly what never became ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WEBHOOK_OPERATION = "webhook"
"""Gatekeeper's `status.byPod[].operations` entry of the validating-webhook pods."""


class NotReadyError(RuntimeError):
    """A wait timed out; the message names what never became ready."""


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def _condition_true(status: dict[str, Any], kind: str) -> bool:
    return str(_conditions(status).get(kind, {}).get("status")) == "True"


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{obj.get('kind', '?')} {namespace + '/' if namespace else ''}{meta.get('name', '?')}"


def crd_established(crd: dict[str, Any]) -> str | None:
    """A CRD serves its kind once `Established` (and its names `NamesAccepted`)."""
    status = crd.get("status") or {}
    missing = [c for c in ("NamesAccepted", "Established") if not _condition_true(status, c)]
    return f"{_name(crd)}: not {' and '.join(missing)}" if missing else None


def deployment_available(deployment: dict[str, Any]) -> str | None:
    """Rolled out like `kubectl rollout status`: the newest generation observed, every replica
    updated, ready and available, and the `Available` condition true."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    generation = int((deployment.get("metadata") or {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < generation:
        return f"{_name(deployment)}: generation {generation} not observed yet"
    counts = {key: int(status.get(key, 0)) for key in ("updatedReplicas", "readyReplicas")}
    counts["availableReplicas"] = int(status.get("availableReplicas", 0))
    short = [f"{key} {value}/{wanted}" for key, value in counts.items() if value < wanted]
    if short or not _condition_true(status, "Available"):
        return f"{_name(deployment)}: {', '.join(short) or 'condition Available not True'}"
    return None


def pod_running(pod: dict[str, Any]) -> str | None:
    """A pod whose containers run (kubectl debug needs a running target)."""
    phase = (pod.get("status") or {}).get("phase")
    return None if phase == "Running" else f"{_name(pod)}: phase {phase or 'unknown'}"


def _webhook_entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    by_pod = (obj.get("status") or {}).get("byPod") or []
    return [e for e in by_pod if WEBHOOK_OPERATION in (e.get("operations") or [])]


def _by_pod_problem(obj: dict[str, Any], webhook_pods: int, enforced: bool) -> str | None:
    """Every webhook pod reports the object's current generation, without errors (and, for a
    constraint, `enforced`): gatekeeper's own e2e waits on exactly this."""
    generation = int((obj.get("metadata") or {}).get("generation", 0))
    entries = _webhook_entries(obj)
    for entry in entries:
        if entry.get("errors"):
            return f"{_name(obj)}: pod {entry.get('id')} reports errors {entry['errors']}"
    current = [e for e in entries if int(e.get("observedGeneration", 0)) == generation]
    if enforced:
        current = [e for e in current if e.get("enforced") is True]
    if len(current) < webhook_pods:
        state = "enforced at" if enforced else "at"
        count = f"{len(current)}/{webhook_pods}"
        return f"{_name(obj)}: {count} webhook pods {state} generation {generation}"
    return None


def constraint_template_ready(template: dict[str, Any], webhook_pods: int) -> str | None:
    """The template's constraint CRD exists (`status.created`) and every webhook pod compiled
    the current generation of its Rego."""
    if (template.get("status") or {}).get("created") is not True:
        return f"{_name(template)}: constraint CRD not created"
    return _by_pod_problem(template, webhook_pods, enforced=False)


def constraint_ready(constraint: dict[str, Any], webhook_pods: int) -> str | None:
    """Every webhook pod enforces the constraint's current generation."""
    return _by_pod_problem(constraint, webhook_pods, enforced=True)


def expansion_template_ready(template: dict[str, Any], webhook_pods: int) -> str | None:
    """Every webhook pod expands workloads with the template's current generation."""
    return _by_pod_problem(template, webhook_pods, enforced=False)


def cluster_policy_ready(policy: dict[str, Any]) -> str | None:
    """Kyverno ClusterPolicy: condition `Ready` True (what Kyverno's chainsaw tests assert)."""
    status = policy.get("status") or {}
    if _condition_true(status, "Ready"):
        return None
    reason = _conditions(status).get("Ready", {}).get("message")
    return f"{_name(policy)}: not Ready{f' ({reason})' if reason else ''}"


def validating_policy_ready(policy: dict[str, Any]) -> str | None:
    """Kyverno ValidatingPolicy: `status.conditionStatus.ready` with its webhook configured."""
    status = (policy.get("status") or {}).get("conditionStatus") or {}
    if status.get("ready") is True and _condition_true(status, "WebhookConfigured"):
        return None
    messages = [str(c.get("message")) for c in _conditions(status).values() if c.get("message")]
    detail = "; ".join(messages) or status.get("message") or "no status yet"
    return f"{_name(policy)}: not ready ({detail})"


def webhook_fails_closed(configuration: dict[str, Any], webhook: str) -> str | None:
    """The named webhook of a ValidatingWebhookConfiguration has `failurePolicy: Fail`, so an
    unreachable engine rejects instead of silently admitting."""
    for entry in configuration.get("webhooks") or []:
        if entry.get("name") == webhook:
            policy = entry.get("failurePolicy")
            return None if policy == "Fail" else f"webhook {webhook}: failurePolicy {policy}"
    return f"{_name(configuration)}: no webhook {webhook}"


Clock = Callable[[], float]
Sleep = Callable[[float], None]


def wait_until(
    what: str,
    check: Callable[[], list[str]],
    progress: Callable[[str], None],
    timeout: float,
    interval: float = 2.0,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Poll `check` (what is still missing) until it returns nothing, reporting changes."""
    deadline = clock() + timeout
    last: list[str] | None = None
    while True:
        missing = check()
        if not missing:
            progress(f"{what}: ready")
            return
        if missing != last:
            progress(f"{what}: waiting for {len(missing)}: {missing[0]}")
            last = missing
        if clock() >= deadline:
            raise NotReadyError(f"{what} not ready after {timeout:.0f}s: " + "; ".join(missing))
        sleep(interval)

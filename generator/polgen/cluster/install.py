"""Install the pinned admission engines from their release manifests and wait until they
serve: CRDs established, every Deployment of the manifest available, and Gatekeeper's
validating webhook switched to `failurePolicy: Fail` (its release default, Ignore, would let a
request through silently while the webhook is not ready)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polgen.cluster.kube import Api
from polgen.cluster.pins import ENGINES, EngineName, ManifestSource, Pins, manifest_documents
from polgen.cluster.readiness import (
    crd_established,
    deployment_available,
    wait_until,
    webhook_fails_closed,
)

CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
DEPLOYMENT = ("apps/v1", "Deployment")
WEBHOOK_CONFIGURATION = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
GATEKEEPER_WEBHOOKS = "gatekeeper-validating-webhook-configuration"
GATEKEEPER_WEBHOOK = "validation.gatekeeper.sh"
GATEKEEPER_WEBHOOK_PODS = "gatekeeper.sh/operation=webhook"
ENGINE_CRDS: dict[EngineName, tuple[str, ...]] = {
    "gatekeeper": (
        "constrainttemplates.templates.gatekeeper.sh",
        "expansiontemplate.expansion.gatekeeper.sh",
    ),
    "kyverno": ("clusterpolicies.kyverno.io", "validatingpolicies.policies.kyverno.io"),
}
"""What a target needs served, checked before an already installed engine is used."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Timeouts:
    """Seconds each wait may take before the run fails with what is still missing."""

    engine: float = 600.0
    policies: float = 300.0
    pods: float = 180.0


def _ref(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind')} {where}{meta.get('name')}"


def _of_kinds(docs: list[dict[str, Any]], kinds: set[str]) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") in kinds]


def split_manifest(
    docs: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Namespaces and CRDs first; everything else once the CRDs are established (custom
    resources of a CRD in the same manifest need it served)."""
    head = [*_of_kinds(docs, {"Namespace"}), *_of_kinds(docs, {"CustomResourceDefinition"})]
    return head, [d for d in docs if d not in head]


def _missing(
    api: Api, docs: list[dict[str, Any]], check: Callable[[dict[str, Any]], str | None]
) -> list[str]:
    problems = []
    for doc in docs:
        meta = doc["metadata"]
        current = api.get(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
        problem = f"{_ref(doc)}: not found" if current is None else check(current)
        if problem:
            problems.append(problem)
    return problems


def install_engine(
    api: Api, name: EngineName, docs: list[dict[str, Any]], progress: Progress, timeouts: Timeouts
) -> None:
    """Server-side apply the release manifest and wait until everything it deploys serves."""
    head, rest = split_manifest(docs)
    crds = _of_kinds(head, {"CustomResourceDefinition"})
    progress(f"{name}: applying {len(docs)} objects ({len(crds)} CRDs)")
    for doc in head:
        api.apply(doc)
    wait_until(
        f"{name} CRDs", lambda: _missing(api, crds, crd_established), progress, timeouts.engine
    )
    for doc in rest:
        api.apply(doc)
    deployments = _of_kinds(rest, {"Deployment"})
    wait_until(
        f"{name} deployments",
        lambda: _missing(api, deployments, deployment_available),
        progress,
        timeouts.engine,
    )


def _webhook_ca_ready(configuration: dict[str, Any] | None) -> str | None:
    """Gatekeeper injects its serving CA; until then a fail-closed webhook rejects everything."""
    if configuration is None:
        return f"ValidatingWebhookConfiguration {GATEKEEPER_WEBHOOKS}: not found"
    for entry in configuration.get("webhooks") or []:
        if entry.get("name") == GATEKEEPER_WEBHOOK:
            ca = (entry.get("clientConfig") or {}).get("caBundle")
            return None if ca else f"webhook {GATEKEEPER_WEBHOOK}: no caBundle yet"
    return f"ValidatingWebhookConfiguration {GATEKEEPER_WEBHOOKS}: no webhook {GATEKEEPER_WEBHOOK}"


def gatekeeper_webhook(api: Api) -> dict[str, Any] | None:
    return api.get(*WEBHOOK_CONFIGURATION, GATEKEEPER_WEBHOOKS)


def gatekeeper_fails_closed(api: Api) -> str | None:
    """None when Gatekeeper's validating webhook rejects requests it cannot answer."""
    configuration = gatekeeper_webhook(api)
    if configuration is None:
        return f"ValidatingWebhookConfiguration {GATEKEEPER_WEBHOOKS}: not found"
    return webhook_fails_closed(configuration, GATEKEEPER_WEBHOOK)


def close_gatekeeper_webhook(api: Api) -> None:
    """`failurePolicy: Fail` on `validation.gatekeeper.sh` (a strategic merge by webhook name)."""
    patch = {"webhooks": [{"name": GATEKEEPER_WEBHOOK, "failurePolicy": "Fail"}]}
    api.patch(*WEBHOOK_CONFIGURATION, GATEKEEPER_WEBHOOKS, patch, None)


def fail_closed(api: Api, progress: Progress, timeouts: Timeouts) -> None:
    """Patch `validation.gatekeeper.sh` to `failurePolicy: Fail` once its CA is in place, and
    check that the change holds."""

    def ca_missing() -> list[str]:
        problem = _webhook_ca_ready(gatekeeper_webhook(api))
        return [problem] if problem else []

    wait_until("gatekeeper webhook certificate", ca_missing, progress, timeouts.engine)
    close_gatekeeper_webhook(api)

    def still_open() -> list[str]:
        problem = gatekeeper_fails_closed(api)
        return [problem] if problem else []

    wait_until("gatekeeper webhook failurePolicy Fail", still_open, progress, timeouts.engine)


def gatekeeper_webhook_pods(api: Api) -> int:
    """How many validating-webhook pods serve now: each must report a policy enforced."""
    key, value = GATEKEEPER_WEBHOOK_PODS.split("=")
    pods = api.list_objects("v1", "Pod", None, GATEKEEPER_WEBHOOK_PODS)
    return sum(
        1
        for pod in pods
        if ((pod.get("metadata") or {}).get("labels") or {}).get(key) == value
        and (pod.get("status") or {}).get("phase") == "Running"
        and all(c.get("ready") for c in (pod.get("status") or {}).get("containerStatuses") or [])
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def missing_crds(api: Api, engine: EngineName) -> list[str]:
    """The engine's CRDs that are absent or not established (an engine not installed)."""
    problems = []
    for name in ENGINE_CRDS[engine]:
        crd = api.get(*CRD, name)
        problem = f"CustomResourceDefinition {name}: not found" if crd is None else None
        problem = problem or (crd_established(crd) if crd else None)
        if problem:
            problems.append(problem)
    return problems


def install_engines(api: Api, pins: Pins, progress: Progress, timeouts: Timeouts) -> None:
    """Install every pinned engine (idempotent: server-side apply), then close Gatekeeper's
    webhook; the manifests are read from their URL or local file."""
    for name in ENGINES:
        pin = pins.engines[name]
        source = ManifestSource(pin.manifest)
        progress(f"{name} {pin.version}: reading {source.location}")
        docs = manifest_documents(source.read(), source.location)
        install_engine(api, name, docs, progress, timeouts)
    fail_closed(api, progress, timeouts)

"""How one case reaches the API server in one namespace copy.

A CREATE is a server-side dry run (`dryRun=All`: the whole admission chain runs, nothing is
stored). An UPDATE needs an existing object: its old object (the "base") is created for real
before any policy is installed, then the stored object, changed as the case changes it, is sent
as a dry-run replace; a `pods/ephemeralcontainers` UPDATE is the strategic-merge PATCH that
`kubectl debug` sends, on a base pod that runs. A DELETE deletes a base with `dryRun=All`.
CONNECT is never evaluated.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from polgen.admission import KNOWN_KINDS, AdmissionRequest
from polgen.cluster.kube import Api
from polgen.cluster.responses import ApiReply

EPHEMERAL = "ephemeralcontainers"
Method = Literal["create", "replace", "ephemeral", "delete"]
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")
_MAX_NAME = 63


@dataclass(frozen=True)
class Submission:
    """One case sent to one namespace copy."""

    case: str
    namespace: str
    method: Method
    body: dict[str, Any]
    """The object as sent (for `ephemeral`, the pod it targets)."""
    base: dict[str, Any] | None = None
    """Created for real before the policies, for UPDATE and DELETE."""
    containers: tuple[dict[str, Any], ...] = ()
    """`ephemeral`: the debug containers the PATCH adds."""

    @property
    def needs_running_base(self) -> bool:
        return self.method == "ephemeral"


class Unsupported(ValueError):
    """A case that cannot be sent to one namespace: it is left out, with this reason."""


def base_name(name: str, case: str) -> str:
    """A per-case name for a real object, so cases that share a manifest name never collide
    (and a dry-run CREATE of the same name never meets it)."""
    digest = hashlib.sha256(case.encode()).hexdigest()[:8]
    stem = name[: _MAX_NAME - len(digest) - 1].rstrip("-.") or "case"
    return f"{stem}-{digest}"


def _placed(obj: dict[str, Any], namespace: str, name: str | None = None) -> dict[str, Any]:
    """A copy of `obj` in `namespace` (renamed when asked), without server-set metadata."""
    placed = copy.deepcopy(obj)
    metadata = placed.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        metadata.pop(key, None)
    placed.pop("status", None)
    metadata["namespace"] = namespace
    if name is not None:
        metadata["name"] = name
    return placed


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("ephemeralContainers") or [])


def submission_for(request: AdmissionRequest, case: str, namespace: str) -> Submission:
    """The submission of a case's request in `namespace`; raises Unsupported otherwise."""
    kind = KNOWN_KINDS.get(request.kind)
    if kind is None or not kind[3]:
        raise Unsupported(f"{request.kind} is not a namespaced kind polgen knows; not sent")
    if not namespace:
        raise Unsupported("the request has no namespace")
    new = request.object or request.old_object
    if new is None:
        raise Unsupported("the request carries no object")
    name = str((new.get("metadata") or {}).get("name") or "")
    if request.operation == "CREATE":
        return Submission(case, namespace, "create", _placed(new, namespace))
    old = request.old_object or new
    real = base_name(name, case)
    if request.operation == "DELETE":
        base = _placed(old, namespace, real)
        return Submission(case, namespace, "delete", base, base)
    if request.operation != "UPDATE":
        raise Unsupported(f"{request.operation} requests are never evaluated; not sent")
    if request.sub_resource == EPHEMERAL:
        if request.kind != "Pod":
            raise Unsupported("pods/ephemeralcontainers needs a Pod")
        if _containers(old):
            raise Unsupported("a base pod cannot be created with ephemeral containers")
        base = _placed(old, namespace, real)
        known = {c.get("name") for c in _containers(old)}
        added = tuple(c for c in _containers(new) if c.get("name") not in known)
        if not added:
            raise Unsupported("the UPDATE adds no ephemeral container")
        return Submission(case, namespace, "ephemeral", base, base, added)
    if request.sub_resource:
        raise Unsupported(f"UPDATE of subresource {request.sub_resource!r} is not supported")
    return Submission(
        case, namespace, "replace", _placed(new, namespace, real), _placed(old, namespace, real)
    )


def _dry_run_refused(reply: ApiReply) -> bool:
    """A server (or a webhook with side effects) that cannot dry-run this request says so
    with 400 BadRequest."""
    text = reply.message.lower()
    return (
        reply.status == 400
        and "dry run" in text.replace("dryrun", "dry run")
        and ("not support" in text)
    )


def send(api: Api, submission: Submission) -> ApiReply:
    """Submit the case; the API server's answer, admission errors included."""
    body = submission.body
    metadata = body["metadata"]
    if submission.method == "create":
        return api.dry_run_create(body)
    if submission.method == "ephemeral":
        containers = list(submission.containers)
        reply = api.patch_ephemeral_containers(
            metadata["name"], submission.namespace, containers, dry_run=True
        )
        if _dry_run_refused(reply):
            # The base pod belongs to this case alone, so a real PATCH harms nothing.
            reply = api.patch_ephemeral_containers(
                metadata["name"], submission.namespace, containers, dry_run=False
            )
        return reply
    if submission.method == "delete":
        return api.dry_run_delete(
            body["apiVersion"], body["kind"], metadata["name"], submission.namespace
        )
    current = api.get(body["apiVersion"], body["kind"], metadata["name"], submission.namespace)
    if current is None or submission.base is None:
        return ApiReply(404, f"base object {metadata['name']} is missing")
    updated = overlay(current, submission.base, body)
    updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return api.dry_run_replace(updated)


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and "name" in i for i in items)


def overlay(live: Any, old: Any, new: Any) -> Any:
    """`live` changed as `old` became `new`: what the API server stored on create (defaults,
    the service-account token volume) stays, so the UPDATE differs from the base only where the
    case says, as with `kubectl edit`. Lists of named items (containers, volumes) merge by name."""
    if isinstance(new, dict) and isinstance(live, dict):
        before = old if isinstance(old, dict) else {}
        merged = {k: copy.deepcopy(v) for k, v in live.items() if k in new or k not in before}
        for key, value in new.items():
            merged[key] = overlay(live.get(key), before.get(key), value)
        return merged
    if _named(new) and _named(live):
        live_items = {item["name"]: item for item in live}
        old_items = {item["name"]: item for item in old} if _named(old) else {}
        return [overlay(live_items.get(i["name"]), old_items.get(i["name"]), i) for i in new]
    return copy.deepcopy(new)

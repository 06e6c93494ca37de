"""Admission requests and verdicts: the one shape every offline engine takes and returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
Action = Literal["deny", "warn", "audit"]

# Kind -> (group, version, plural resource, namespaced) for the kinds polgen's policies see.
KNOWN_KINDS: dict[str, tuple[str, str, str, bool]] = {
    "Pod": ("", "v1", "pods", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "DaemonSet": ("apps", "v1", "daemonsets", True),
    "StatefulSet": ("apps", "v1", "statefulsets", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "Job": ("batch", "v1", "jobs", True),
    "CronJob": ("batch", "v1", "cronjobs", True),
    "ReplicationController": ("", "v1", "replicationcontrollers", True),
    "Service": ("", "v1", "services", True),
    "Namespace": ("", "v1", "namespaces", False),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
}


@dataclass(frozen=True)
class AdmissionRequest:
    """What the API server sends to admission: the object, the operation, who asks."""

    group: str
    version: str
    kind: str
    resource: str
    name: str
    namespace: str
    operation: Operation
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None = None
    sub_resource: str = ""
    user_info: dict[str, Any] = field(
        default_factory=lambda: {"username": "polgen", "groups": ["system:authenticated"]}
    )
    dry_run: bool = False
    uid: str = "00000000-0000-0000-0000-000000000000"

    def to_review(self) -> dict[str, Any]:
        """The `request` of an admission.k8s.io/v1 AdmissionReview, as webhooks receive it."""
        gvk = {"group": self.group, "version": self.version, "kind": self.kind}
        gvr = {"group": self.group, "version": self.version, "resource": self.resource}
        review: dict[str, Any] = {
            "uid": self.uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": self.user_info,
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
        }
        if self.sub_resource:
            review["subResource"] = self.sub_resource
            review["requestSubResource"] = self.sub_resource
        return review


def request_for(
    obj: dict[str, Any], operation: Operation = "CREATE", default_namespace: str = "default"
) -> AdmissionRequest:
    """A CREATE (or given operation) request for a plain manifest."""
    api_version = str(obj.get("apiVersion", "v1"))
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind", ""))
    known = KNOWN_KINDS.get(kind)
    namespaced = known[3] if known else True
    resource = known[2] if known else kind.lower() + "s"
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or default_namespace) if namespaced else ""
    return AdmissionRequest(
        group=group,
        version=version,
        kind=kind,
        resource=resource,
        name=str(metadata.get("name") or ""),
        namespace=namespace,
        operation=operation,
        object=obj,
    )


@dataclass(frozen=True)
class Violation:
    """One policy's complaint about one request."""

    policy: str
    message: str
    action: Action
    rule: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Every violation an engine found; denied when any violation's action is deny."""

    violations: tuple[Violation, ...] = ()

    @property
    def allowed(self) -> bool:
        return not any(v.action == "deny" for v in self.violations)


def debug_request(pod: dict[str, Any], namespace: str = "default") -> AdmissionRequest:
    """The UPDATE of `pods/ephemeralcontainers` that `kubectl debug` sends for a pod whose
    `spec.ephemeralContainers` holds the new debug container(s)."""
    old_spec = {k: v for k, v in (pod.get("spec") or {}).items() if k != "ephemeralContainers"}
    old = {**pod, "spec": old_spec}
    base = request_for(pod, "UPDATE", namespace)
    return dataclasses.replace(base, old_object=old, sub_resource="ephemeralcontainers")

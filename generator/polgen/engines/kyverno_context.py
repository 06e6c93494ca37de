"""The request as Kyverno's engine sees it, and the JSON context its variables query.

Two ways in: an admission request (the webhook path, with the requester's userInfo and the
Namespace's labels) or a plain manifest the way `kyverno test` feeds it (operation CREATE,
namespace `default`, no admission userInfo, so match ignores subjects and roles).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from polgen.admission import KNOWN_KINDS, AdmissionRequest

_CLUSTER_SCOPED = {kind for kind, (_, _, _, namespaced) in KNOWN_KINDS.items() if not namespaced}


@dataclass(frozen=True)
class KyvernoRequest:
    """Everything match/exclude and the rule bodies read about one request."""

    operation: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    subresource: str = ""
    user_info: dict[str, Any] | None = None
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    namespace_labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_admission(
        cls, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> KyvernoRequest:
        """The webhook path: userInfo present; roles unknown offline (so never matched)."""
        labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
        return cls(
            operation=request.operation,
            object=request.object,
            old_object=request.old_object,
            group=request.group,
            version=request.version,
            kind=request.kind,
            namespace=request.namespace,
            name=request.name,
            subresource=request.sub_resource,
            user_info=dict(request.user_info),
            namespace_labels={str(k): str(v) for k, v in labels.items()},
        )

    @classmethod
    def from_manifest(
        cls, manifest: dict[str, Any], operation: str = "CREATE", default_namespace: str = "default"
    ) -> KyvernoRequest:
        """The `kyverno test` path: namespaced objects without a namespace land in `default`,
        YAML's empty `labels:` / `annotations:` (null) become empty maps."""
        group, _, version = str(manifest.get("apiVersion", "v1")).rpartition("/")
        kind = str(manifest.get("kind", ""))
        resource = copy.deepcopy(manifest)
        if not isinstance(resource.get("metadata"), dict):
            resource["metadata"] = {}
        metadata = resource["metadata"]
        for key in ("labels", "annotations"):
            if key in metadata and metadata[key] is None:
                metadata[key] = {}
        if kind not in _CLUSTER_SCOPED and not metadata.get("namespace"):
            metadata["namespace"] = default_namespace
        return cls(
            operation=operation,
            object=resource,
            old_object=None,
            group=group,
            version=version,
            kind=kind,
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
        )

    @property
    def deleting(self) -> bool:
        return self.operation == "DELETE"

    @property
    def resource(self) -> dict[str, Any]:
        """The object rules look at: the old one on DELETE, as Kyverno does."""
        chosen = self.old_object if self.deleting else self.object
        return chosen or {}

    def as_old_create(self) -> KyvernoRequest:
        """The old object replayed as a CREATE (Kyverno's allowExistingViolations check)."""
        return replace(self, operation="CREATE", object=self.old_object, old_object=None)

    def context(self) -> dict[str, Any]:
        """The JSON document `{{ }}` variables and JMESPath queries run against."""
        gvk = {"group": self.group, "version": self.version, "kind": self.kind}
        request: dict[str, Any] = {
            "operation": self.operation,
            "object": self.object,
            "oldObject": self.old_object,
            "kind": gvk,
            "namespace": self.namespace,
            "name": self.name,
            "roles": list(self.roles),
            "clusterRoles": list(self.cluster_roles),
        }
        if self.subresource:
            request["subResource"] = self.subresource
        context: dict[str, Any] = {"request": request}
        if self.user_info is not None:
            request["userInfo"] = self.user_info
            username = str(self.user_info.get("username", ""))
            parts = username.split(":")
            if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
                context["serviceAccountNamespace"] = parts[2]
                context["serviceAccountName"] = parts[3]
        return context

"""The few Kubernetes API calls the e2e run makes, behind one small interface (`Api`) so that
everything above it is tested with a fake; `KubeApi` is the real one (kubernetes client >= 30).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from polgen.cluster.responses import ApiReply, status_message, warnings_from_headers

FIELD_MANAGER = "polgen-e2e"
DRY_RUN = "All"
REQUEST_TIMEOUT_SECONDS = 30
NOT_FOUND = 404


class ApiError(RuntimeError):
    """The API server refused a setup call (apply, create, patch, delete)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotServedError(LookupError):
    """The API server does not serve this apiVersion/kind (yet: a new CRD is not discovered)."""


class Api(Protocol):
    """Object CRUD by apiVersion and kind, and the admission requests of the cases.

    Setup calls (apply, create, patch, delete) raise ApiError when refused and NotServedError
    when the kind is not served; the dry runs return the answer, refusals included."""

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist (or its kind is not served)."""
        ...

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of a kind, filtered by a label selector."""
        ...

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (field manager polgen-e2e, conflicts forced); NotServedError
        when the kind is not served."""
        ...

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """A real create (the base objects that UPDATE cases modify)."""
        ...

    def patch(
        self, api_version: str, kind: str, name: str, body: dict[str, Any], namespace: str | None
    ) -> dict[str, Any]:
        """A strategic-merge patch."""
        ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete in the background; a missing object is no error."""
        ...

    def dry_run_create(self, body: dict[str, Any]) -> ApiReply:
        """Create with `dryRun=All`: the full admission chain runs, nothing is stored."""
        ...

    def dry_run_replace(self, body: dict[str, Any]) -> ApiReply:
        """Replace (an UPDATE) with `dryRun=All`; `body` carries the current resourceVersion."""
        ...

    def dry_run_delete(self, api_version: str, kind: str, name: str, namespace: str) -> ApiReply:
        """Delete with `dryRun=All`."""
        ...

    def patch_ephemeral_containers(
        self, name: str, namespace: str, containers: list[dict[str, Any]], dry_run: bool
    ) -> ApiReply:
        """What `kubectl debug` sends: a strategic-merge PATCH of `pods/ephemeralcontainers`."""
        ...


def _namespace(body: dict[str, Any]) -> str | None:
    return (body.get("metadata") or {}).get("namespace")


def _name(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name", ""))


class KubeApi:
    """`Api` on the kubernetes Python client: DynamicClient for objects, CoreV1Api for the
    ephemeral-containers subresource. Responses keep their `Warning` headers."""

    def __init__(self, kubeconfig: Path | None, context: str | None) -> None:
        import kubernetes

        # The client is only partly typed (its dynamic client not at all): used as Any.
        kube: Any = kubernetes
        client, dynamic = kube.client, kube.dynamic
        # persist_config=False: never write refreshed credentials back to the user's file.
        api_client = kube.config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            persist_config=False,
        )
        self._errors: tuple[type[BaseException], ...] = (client.exceptions.ApiException,)
        self._dynamic: Any = dynamic.DynamicClient(api_client)
        self._core: Any = client.CoreV1Api(api_client)
        self._unknown_kind: tuple[type[BaseException], ...] = (
            dynamic.exceptions.ResourceNotFoundError,
        )
        self._not_found: tuple[type[BaseException], ...] = (
            dynamic.exceptions.NotFoundError,
            NotServedError,
        )

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)
        except self._unknown_kind as exc:
            raise NotServedError(f"{api_version} {kind} is not served") from exc

    def _reply(self, call: Any) -> ApiReply:
        """Run a request whose raw response is returned; an API error is an answer too."""
        try:
            response = call()
        except self._errors as exc:
            error: Any = exc
            return ApiReply(
                int(error.status or 0),
                status_message(error.body),
                warnings_from_headers(error.headers),
            )
        # A raw urllib3 response: read it so its connection goes back to the pool.
        _ = response.data
        if hasattr(response, "release_conn"):
            response.release_conn()
        return ApiReply(int(response.status), "", warnings_from_headers(response.headers))

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            found = self._dynamic.get(
                self._resource(api_version, kind), name=name, namespace=namespace
            )
        except self._not_found:
            return None
        result: dict[str, Any] = found.to_dict()
        return result

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        try:
            found = self._dynamic.get(
                self._resource(api_version, kind),
                namespace=namespace,
                label_selector=selector or None,
            )
        except self._not_found:
            return []
        items: list[dict[str, Any]] = found.to_dict().get("items") or []
        return items

    def _setup(self, what: str, call: Any) -> dict[str, Any]:
        """Run a setup call; an API error becomes ApiError with the server's message."""
        try:
            result = call()
        except self._errors as exc:
            error: Any = exc
            message = f"{what}: HTTP {error.status}: {status_message(error.body)}"
            raise ApiError(message, int(error.status or 0)) from exc
        body: dict[str, Any] = result.to_dict() if hasattr(result, "to_dict") else {}
        return body

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(body["apiVersion"], body["kind"])
        return self._setup(
            f"apply {body['kind']} {_name(body)}",
            lambda: self._dynamic.server_side_apply(
                resource,
                body=body,
                namespace=_namespace(body),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            ),
        )

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(body["apiVersion"], body["kind"])
        return self._setup(
            f"create {body['kind']} {_name(body)}",
            lambda: self._dynamic.create(
                resource, body=body, namespace=_namespace(body), field_manager=FIELD_MANAGER
            ),
        )

    def patch(
        self, api_version: str, kind: str, name: str, body: dict[str, Any], namespace: str | None
    ) -> dict[str, Any]:
        resource = self._resource(api_version, kind)
        return self._setup(
            f"patch {kind} {name}",
            lambda: self._dynamic.patch(
                resource,
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/strategic-merge-patch+json",
                field_manager=FIELD_MANAGER,
            ),
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            resource = self._resource(api_version, kind)
            self._setup(
                f"delete {kind} {name}",
                lambda: self._dynamic.delete(
                    resource, name=name, namespace=namespace, propagation_policy="Background"
                ),
            )
        except NotServedError:
            return
        except ApiError as exc:
            if exc.status != NOT_FOUND:
                raise

    def dry_run_create(self, body: dict[str, Any]) -> ApiReply:
        return self._dry_run("create", body["apiVersion"], body["kind"], body=body,
                             namespace=_namespace(body))

    def dry_run_replace(self, body: dict[str, Any]) -> ApiReply:
        return self._dry_run("replace", body["apiVersion"], body["kind"], body=body,
                             namespace=_namespace(body))

    def dry_run_delete(self, api_version: str, kind: str, name: str, namespace: str) -> ApiReply:
        return self._dry_run("delete", api_version, kind, name=name, namespace=namespace)

    def _dry_run(self, verb: str, api_version: str, kind: str, **arguments: Any) -> ApiReply:
        """One server-side dry-run request of the dynamic client, answered as an ApiReply."""
        resource = self._resource(api_version, kind)
        request = getattr(self._dynamic, verb)
        return self._reply(
            lambda: request(
                resource,
                dry_run=DRY_RUN,
                serialize=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
                **arguments,
            )
        )

    def patch_ephemeral_containers(
        self, name: str, namespace: str, containers: list[dict[str, Any]], dry_run: bool
    ) -> ApiReply:
        # A dict body is sent as application/strategic-merge-patch+json, which merges
        # `ephemeralContainers` by name, as `kubectl debug` does.
        return self._reply(
            lambda: self._core.patch_namespaced_pod_ephemeralcontainers(
                name,
                namespace,
                {"spec": {"ephemeralContainers": containers}},
                dry_run=DRY_RUN if dry_run else None,
                field_manager=FIELD_MANAGER,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        )

"""How requests reach the engine (kyverno_context): CLI defaults and the webhook path."""

from __future__ import annotations

from dataclasses import replace

from polgen.admission import request_for
from polgen.engines.kyverno_context import KyvernoRequest


def test_manifest_gets_cli_defaults() -> None:
    request = KyvernoRequest.from_manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "annotations": None},
        }
    )
    assert (request.operation, request.namespace, request.group, request.version) == (
        "CREATE",
        "default",
        "apps",
        "v1",
    )
    assert request.resource["metadata"] == {"name": "d", "annotations": {}, "namespace": "default"}
    assert request.user_info is None
    assert "userInfo" not in request.context()["request"]


def test_cluster_scoped_manifest_has_no_namespace() -> None:
    request = KyvernoRequest.from_manifest(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    assert request.namespace == ""


def test_admission_request_carries_user_and_namespace_labels() -> None:
    admission = request_for(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, default_namespace="apps"
    )
    request = KyvernoRequest.from_admission(admission, {"metadata": {"labels": {"tier": "prod"}}})
    assert request.namespace_labels == {"tier": "prod"}
    assert request.context()["request"]["userInfo"]["username"] == "polgen"


def test_service_account_variables() -> None:
    admission = request_for({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    request = KyvernoRequest.from_admission(admission)
    request = replace(request, user_info={"username": "system:serviceaccount:ci:bot"})
    context = request.context()
    assert (context["serviceAccountNamespace"], context["serviceAccountName"]) == ("ci", "bot")


def test_delete_looks_at_the_old_object() -> None:
    admission = request_for(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, operation="DELETE"
    )
    old = {"kind": "Pod", "metadata": {"name": "p"}}
    request = KyvernoRequest.from_admission(admission)
    request = replace(request, object=None, old_object=old)
    assert request.deleting and request.resource == old

"""Reading manifests to scan: multi-document YAML, JSON Lists, AdmissionReviews, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from polgen.errors import PolgenError
from polgen.manifests import load_manifests

DATA = Path(__file__).parent / "data" / "scan"


def test_folder_is_read_in_order_with_every_document() -> None:
    manifests = load_manifests([DATA])
    kinds = [(m.file.rsplit("/", 1)[-1], m.request.kind, m.request.name) for m in manifests]
    assert kinds == [
        ("breakout.yaml", "Pod", "r00t"),
        ("debug-review.yaml", "Pod", "web"),
        ("list.json", "ConfigMap", "cfg"),
        ("two-docs.yaml", "Namespace", "prd"),
        ("two-docs.yaml", "Deployment", "web"),
    ]


def test_admission_review_keeps_operation_and_subresource() -> None:
    [manifest] = load_manifests([DATA / "debug-review.yaml"])
    request = manifest.request
    assert (request.operation, request.sub_resource, request.namespace) == (
        "UPDATE",
        "ephemeralcontainers",
        "prd",
    )
    assert request.old_object is not None
    assert "ephemeralContainers" not in request.old_object["spec"]


def test_update_operation_for_plain_manifests() -> None:
    [manifest] = load_manifests([DATA / "breakout.yaml"], "UPDATE")
    assert manifest.request.operation == "UPDATE"
    assert manifest.request.old_object == manifest.request.object


def test_namespace_defaults_and_cluster_scope() -> None:
    manifests = {m.request.kind: m.request for m in load_manifests([DATA / "two-docs.yaml"])}
    assert manifests["Namespace"].namespace == ""
    assert manifests["Deployment"].resource == "deployments"
    assert manifests["Deployment"].group == "apps"


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    with pytest.raises(PolgenError) as info:
        load_manifests([bad])
    [problem] = info.value.problems
    assert problem.file == str(bad) and problem.line is not None


def test_not_a_manifest_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "scalar.yaml").write_text("just text\n")
    (tmp_path / "null.yaml").write_text("---\n")
    with pytest.raises(PolgenError) as info:
        load_manifests([tmp_path / "scalar.yaml", tmp_path / "null.yaml"])
    assert "mapping with 'kind'" in str(info.value)
    with pytest.raises(PolgenError, match="no such file"):
        load_manifests([tmp_path / "missing.yaml"])


def test_admission_review_without_request(tmp_path: Path) -> None:
    file = tmp_path / "review.yaml"
    file.write_text("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n")
    with pytest.raises(PolgenError, match="no 'request' mapping"):
        load_manifests([file])

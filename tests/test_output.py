"""The out/ tree: kustomizations, index, atomic swap, partial renders, staleness."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polgen.catalog import Policy
from polgen.errors import PolgenError
from polgen.output import (
    Selection,
    compare_tree,
    merge_tree,
    render_target,
    render_tree,
    write_tree,
)
from polgen.plan import ClusterPlan
from polgen.targets.base import Document, Support

EVERYTHING = Selection(None, None)


class FakeTarget:
    """A target that renders one ConfigMap per binding, or whatever a test hands it."""

    summary = "test"
    minimum_versions = "none"

    def __init__(self, name: str, documents: list[Document] | None = None) -> None:
        self.name = name
        self.documents = documents

    def support(self, policy: Policy) -> Support:
        return Support(True)

    def render(self, plan: ClusterPlan) -> list[Document]:
        if self.documents is not None:
            return self.documents
        return [
            Document(
                f"configmap-{plan.name}.yaml",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": plan.name}},
            )
        ]


def _plan(name: str, targets: tuple[str, ...] = ("a", "b")) -> ClusterPlan:
    return ClusterPlan(name, f"cluster {name}", targets, "ClusterPolicy", (), ())


TARGETS = {"a": FakeTarget("a"), "b": FakeTarget("b")}


def test_tree_has_kustomization_everywhere_and_an_index() -> None:
    plans = [_plan("dev"), _plan("prod")]
    tree = merge_tree({}, render_tree(plans, TARGETS, EVERYTHING), EVERYTHING, plans)
    assert set(tree) == {
        "index.yaml",
        "dev/kustomization.yaml",
        "dev/a/kustomization.yaml",
        "dev/a/configmap-dev.yaml",
        "dev/b/kustomization.yaml",
        "dev/b/configmap-dev.yaml",
        "prod/kustomization.yaml",
        "prod/a/kustomization.yaml",
        "prod/a/configmap-prod.yaml",
        "prod/b/kustomization.yaml",
        "prod/b/configmap-prod.yaml",
    }
    assert yaml.safe_load(tree["dev/kustomization.yaml"])["resources"] == ["a", "b"]
    assert yaml.safe_load(tree["dev/a/kustomization.yaml"])["resources"] == ["configmap-dev.yaml"]
    index = yaml.safe_load(tree["index.yaml"])
    assert [c["name"] for c in index["clusters"]] == ["dev", "prod"]
    assert index["clusters"][0]["targets"][0]["files"][0]["file"] == "configmap-dev.yaml"


def test_partial_render_keeps_other_folders() -> None:
    plans = [_plan("dev"), _plan("prod")]
    full = merge_tree({}, render_tree(plans, TARGETS, EVERYTHING), EVERYTHING, plans)
    existing = dict(full)
    existing["dev/b/configmap-dev.yaml"] = "stale"
    only_a = Selection(frozenset({"dev"}), frozenset({"a"}))
    partial = merge_tree(existing, render_tree(plans, TARGETS, only_a), only_a, plans)
    assert partial["dev/b/configmap-dev.yaml"] == "stale"
    assert partial["dev/a/configmap-dev.yaml"] == full["dev/a/configmap-dev.yaml"]


def test_duplicate_file_names_are_rejected() -> None:
    doc = Document("x.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(PolgenError, match="share this file name"):
        render_target(_plan("dev"), FakeTarget("a", [doc, doc]))


def test_documents_without_required_fields_are_rejected() -> None:
    doc = Document("x.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    with pytest.raises(PolgenError, match=r"lacks metadata\.name"):
        render_target(_plan("dev"), FakeTarget("a", [doc]))


def test_write_tree_replaces_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, {"a/old.yaml": "old\n"})
    write_tree(out, {"a/new.yaml": "new\n"})
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a/new.yaml"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_write_leaves_out_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_tree(out, {"a/keep.yaml": "keep\n"})

    def broken_rename(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("polgen.output.os.rename", broken_rename)
    with pytest.raises(OSError):
        write_tree(out, {"a/new.yaml": "new\n"})
    assert (out / "a" / "keep.yaml").read_text() == "keep\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_compare_tree_reports_missing_changed_extra(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, {"same": "1", "changed": "old", "extra": "x"})
    staleness = compare_tree(out, {"same": "1", "changed": "new", "missing": "y"})
    assert (staleness.missing, staleness.changed, staleness.extra) == (
        ["missing"],
        ["changed"],
        ["extra"],
    )
    assert not compare_tree(out, {"same": "1", "changed": "old", "extra": "x"}).stale


def test_failed_swap_restores_the_old_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_tree(out, {"a/keep.yaml": "keep\n"})
    import os

    real_rename = os.rename
    calls: list[object] = []

    def rename_failing_second_time(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr("polgen.output.os.rename", rename_failing_second_time)
    with pytest.raises(OSError):
        write_tree(out, {"a/new.yaml": "new\n"})
    assert (out / "a" / "keep.yaml").read_text() == "keep\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

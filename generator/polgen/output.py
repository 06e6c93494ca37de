"""Turn rendered documents into the `out/` tree: canonical files, kustomizations, an index.

Writing is atomic: the new tree is built in a temporary directory beside `out/` and swapped in,
so an error leaves `out/` untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polgen import yamlio
from polgen.errors import PolgenError
from polgen.plan import ClusterPlan
from polgen.targets.base import Document, Target

INDEX_FILE = "index.yaml"
KUSTOMIZATION = "kustomization.yaml"
_REQUIRED = ("apiVersion", "kind")


@dataclass(frozen=True)
class Selection:
    """Which (cluster, target) folders a render owns; others in `out/` are kept as they are."""

    clusters: frozenset[str] | None
    targets: frozenset[str] | None

    def owns(self, cluster: str, target: str) -> bool:
        return (self.clusters is None or cluster in self.clusters) and (
            self.targets is None or target in self.targets
        )

    @property
    def everything(self) -> bool:
        return self.clusters is None and self.targets is None


def _check_document(where: str, body: dict[str, Any], text: str) -> None:
    """Parse the serialised text back and check the fields every resource needs."""
    parsed = yamlio.load_one(text)
    if parsed != body:
        raise PolgenError.single(where, "document does not survive a YAML round trip")
    missing = [key for key in _REQUIRED if not parsed.get(key)]
    if not (parsed.get("metadata") or {}).get("name") and parsed.get("kind") != "Kustomization":
        missing.append("metadata.name")
    if missing:
        raise PolgenError.single(where, f"rendered document lacks {', '.join(missing)}")


def _kustomization(resources: Iterable[str]) -> str:
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(resources),
    }
    return yamlio.dump(body)


def render_target(plan: ClusterPlan, target: Target) -> dict[str, str]:
    """Files of one `<cluster>/<target>/` folder, relative to it."""
    documents: list[Document] = target.render(plan)
    files: dict[str, str] = {}
    for document in documents:
        where = f"out/{plan.name}/{target.name}/{document.file}"
        if document.file in files or document.file == KUSTOMIZATION:
            raise PolgenError.single(where, "two rendered documents share this file name")
        text = yamlio.dump(document.body)
        _check_document(where, document.body, text)
        files[document.file] = text
    files[KUSTOMIZATION] = _kustomization(name for name in files)
    return dict(sorted(files.items()))


def render_tree(
    plans: list[ClusterPlan], targets: dict[str, Target], selection: Selection
) -> dict[str, str]:
    """Files for the selected clusters and targets, keyed by path relative to `out/`."""
    tree: dict[str, str] = {}
    for plan in plans:
        for target_name in plan.targets:
            if not selection.owns(plan.name, target_name):
                continue
            for name, text in render_target(plan, targets[target_name]).items():
                tree[f"{plan.name}/{target_name}/{name}"] = text
    return tree


def _read_tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def merge_tree(
    existing: dict[str, str],
    rendered: dict[str, str],
    selection: Selection,
    plans: list[ClusterPlan],
) -> dict[str, str]:
    """The complete `out/` a render leaves: kept and new folders, kustomizations, index."""
    kept: dict[str, str] = {}
    if not selection.everything:
        for path, text in existing.items():
            parts = path.split("/")
            if len(parts) >= 3 and not selection.owns(parts[0], parts[1]):
                kept[path] = text
    tree = {**kept, **rendered}
    target_dirs: dict[str, set[str]] = {}
    for path in tree:
        cluster, target = path.split("/")[:2]
        target_dirs.setdefault(cluster, set()).add(target)
    for cluster, targets in target_dirs.items():
        tree[f"{cluster}/{KUSTOMIZATION}"] = _kustomization(targets)
    tree[INDEX_FILE] = _index(tree, plans)
    return dict(sorted(tree.items()))


def _index(tree: dict[str, str], plans: list[ClusterPlan]) -> str:
    descriptions = {plan.name: plan.description for plan in plans}
    clusters: dict[str, dict[str, list[dict[str, str]]]] = {}
    for path, text in sorted(tree.items()):
        parts = path.split("/")
        if len(parts) != 3:
            continue
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        clusters.setdefault(parts[0], {}).setdefault(parts[1], []).append(
            {"file": parts[2], "sha256": digest}
        )
    body = {
        "apiVersion": "polgen.dev/v1alpha1",
        "kind": "RenderIndex",
        "clusters": [
            {
                "name": cluster,
                "description": descriptions.get(cluster, ""),
                "targets": [
                    {"name": target, "path": f"{cluster}/{target}", "files": files}
                    for target, files in sorted(targets.items())
                ],
            }
            for cluster, targets in sorted(clusters.items())
        ],
    }
    return yamlio.dump(body)


def desired_tree(
    out_dir: Path, rendered: dict[str, str], selection: Selection, plans: list[ClusterPlan]
) -> dict[str, str]:
    return merge_tree(_read_tree(out_dir), rendered, selection, plans)


def write_tree(out_dir: Path, tree: dict[str, str]) -> None:
    """Replace `out_dir` with exactly `tree`, atomically from the reader's point of view."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    try:
        for path, text in tree.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if out_dir.exists():
            os.rename(out_dir, retired / "out")
            try:
                os.rename(staging, out_dir)
            except BaseException:
                os.rename(retired / "out", out_dir)
                raise
        else:
            os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


@dataclass(frozen=True)
class Staleness:
    missing: list[str]
    changed: list[str]
    extra: list[str]

    @property
    def stale(self) -> bool:
        return bool(self.missing or self.changed or self.extra)


def compare_tree(out_dir: Path, tree: dict[str, str]) -> Staleness:
    """How `out_dir` on disk differs from what a render would write."""
    actual = _read_tree(out_dir)
    return Staleness(
        missing=sorted(set(tree) - set(actual)),
        changed=sorted(p for p in tree if p in actual and actual[p] != tree[p]),
        extra=sorted(set(actual) - set(tree)),
    )

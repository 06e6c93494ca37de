"""Read manifests to scan: files or folders of YAML/JSON, multi-document, `List` kinds and
AdmissionReview documents (to simulate UPDATEs and the `pods/ephemeralcontainers` subresource)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polgen import yamlio
from polgen.admission import AdmissionRequest, Operation, request_for
from polgen.errors import PolgenError, Problem

_SUFFIXES = (".yaml", ".yml", ".json")
_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


@dataclass(frozen=True)
class Manifest:
    """One request to review, and the file it came from."""

    file: str
    request: AdmissionRequest


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        else:
            yield path


def _documents(file: Path) -> Iterator[Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolgenError.single(file, f"cannot read manifest: {exc}") from exc
    if file.suffix == ".json":
        try:
            yield json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolgenError.single(file, f"invalid JSON: {exc.msg}", exc.lineno) from exc
        return
    yield from yamlio.load_all(text, file)


def _from_review(file: Path, review: dict[str, Any]) -> AdmissionRequest:
    request = review.get("request")
    if not isinstance(request, dict):
        raise PolgenError.single(file, "AdmissionReview has no 'request' mapping")
    operation = str(request.get("operation") or "CREATE")
    if operation not in _OPERATIONS:
        raise PolgenError.single(
            file, f"AdmissionReview operation {operation!r} (expected one of {_OPERATIONS})"
        )
    obj = request.get("object")
    old = request.get("oldObject")
    subject = obj if isinstance(obj, dict) else old
    if not isinstance(subject, dict):
        raise PolgenError.single(file, "AdmissionReview request has neither object nor oldObject")
    base = request_for(subject, "CREATE")
    kind = request.get("kind") or {}
    resource = request.get("resource") or {}
    return AdmissionRequest(
        group=str(kind.get("group", base.group)),
        version=str(kind.get("version", base.version)),
        kind=str(kind.get("kind", base.kind)),
        resource=str(resource.get("resource", base.resource)),
        name=str(request.get("name") or base.name),
        namespace=str(request.get("namespace") or base.namespace),
        operation=operation,  # type: ignore[arg-type]
        object=obj if isinstance(obj, dict) else None,
        old_object=old if isinstance(old, dict) else None,
        sub_resource=str(request.get("subResource") or ""),
        user_info=request.get("userInfo") or base.user_info,
        dry_run=bool(request.get("dryRun", False)),
    )


def _expand(file: Path, document: Any, operation: Operation) -> Iterator[AdmissionRequest]:
    if document is None:
        return
    if not isinstance(document, dict) or not document.get("kind"):
        raise PolgenError.single(file, "a manifest must be a mapping with 'kind'")
    kind = document["kind"]
    if kind == "AdmissionReview":
        yield _from_review(file, document)
    elif kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _expand(file, item, operation)
    else:
        old = document if operation == "UPDATE" else None
        request = request_for(document, operation)
        yield dataclasses.replace(request, old_object=old)


def load_manifests(paths: list[Path], operation: Operation = "CREATE") -> list[Manifest]:
    """Every request in the given files and folders, in a stable order; all problems at once."""
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    missing = [Problem(str(p), "no such file or directory") for p in paths if not p.exists()]
    if missing:
        raise PolgenError(missing)
    for file in _files(paths):
        try:
            for document in _documents(file):
                for request in _expand(file, document, operation):
                    manifests.append(Manifest(str(file), request))
        except PolgenError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolgenError(problems)
    return manifests

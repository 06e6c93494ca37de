"""Policy bundles: named, version-aware sets of catalog policies (the Pod Security Standards
levels), so a fleet can say `bundle:restricted` instead of listing every control."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polgen.errors import PolgenError, Problem
from polgen.schema_errors import problems_from_validation
from polgen.versions import PssVersion, at_least
from polgen.yamlio import LineMap, load_with_lines

BUNDLE_PREFIX = "bundle:"


class BundleEntry(BaseModel):
    """One policy of a bundle; `until` drops it from that version on (a stricter control of
    the same level supersedes it, as upstream's restricted checks override baseline ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    until: PssVersion | None = None

    def applies_at(self, version: str) -> bool:
        return self.until is None or not at_least(version, self.until)


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    title: str
    description: str
    podSecurityLevel: Literal["baseline", "restricted"] | None = None
    minimumVersion: PssVersion = "v1.0"
    """The oldest Pod Security Standards version this bundle reproduces exactly."""
    policies: list[BundleEntry] = Field(min_length=1)
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)


def load_bundle(file: Path) -> tuple[Bundle, LineMap]:
    data, lines = load_with_lines(file)
    if isinstance(data, dict) and isinstance(data.get("policies"), list):
        data["policies"] = [
            {"id": entry} if isinstance(entry, str) else entry for entry in data["policies"]
        ]
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise PolgenError(problems_from_validation(file, exc, lines)) from exc
    if bundle.id != file.stem:
        raise PolgenError.single(
            file,
            f"bundle id {bundle.id!r} must equal its file name {file.stem!r}",
            lines.get(("id",)),
        )
    return bundle, lines


def load_bundles(folder: Path) -> tuple[dict[str, Bundle], dict[str, LineMap]]:
    """Every `bundles/<id>.yaml` (the folder is optional)."""
    bundles: dict[str, Bundle] = {}
    lines: dict[str, LineMap] = {}
    problems: list[Problem] = []
    for file in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            bundle, bundle_lines = load_bundle(file)
        except PolgenError as exc:
            problems.extend(exc.problems)
            continue
        bundles[bundle.id] = bundle
        lines[bundle.id] = bundle_lines
    if problems:
        raise PolgenError(problems)
    return bundles, lines

"""Pod Security Standards versions: `latest` or `v1.N`, ordered by minor."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

PssVersion = Annotated[str, Field(pattern=r"^(latest|v1\.(0|[1-9][0-9]?))$")]


def minor(version: str) -> int | None:
    """The minor number of `v1.N`; None for `latest` (newer than every numbered version)."""
    if version == "latest":
        return None
    return int(version.removeprefix("v1."))


def at_least(version: str, since: str | None) -> bool:
    """Is `version` at or after `since` (`None` = always)?"""
    if since is None:
        return True
    current, start = minor(version), minor(since)
    if current is None:
        return True
    return start is not None and current >= start

"""Turn pydantic validation errors into located, readable problems."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from polgen.checks import CHECK_KINDS
from polgen.errors import Problem
from polgen.yamlio import LineMap, line_for


def _clean_location(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop pydantic's internal union/discriminator steps so the path matches the YAML."""
    return tuple(
        part for part in loc if not (isinstance(part, str) and (part in CHECK_KINDS or "[" in part))
    )


def _describe(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _message(error: dict[str, object]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (not allowed here)"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def problems_from_validation(file: Path, exc: ValidationError, lines: LineMap) -> list[Problem]:
    """One problem per pydantic error, with the YAML line of the offending key."""
    problems = []
    for error in exc.errors():
        loc = _clean_location(tuple(error["loc"]))
        problems.append(
            Problem(str(file), _message(dict(error)), line_for(lines, loc), _describe(loc))
        )
    return problems

"""Reading a raw pod (metadata and spec as parsed YAML) the way upstream's Go structs see it.

Manifests are untyped dicts, so a present-but-null field must read like a nil pointer and a
wrong-typed field must not crash a check. Also holds upstream's message helpers, because every
check phrases its detail with them and Go's ordering and quoting must be reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

Json = dict[str, Any]

# Visit order of upstream's visitContainers; names in messages follow it (unsorted).
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class Forbidden(NamedTuple):
    """A failed check: upstream's ForbiddenReason and ForbiddenDetail."""

    reason: str
    detail: str


def mapping(value: object) -> Json:
    """The value as a dict; anything else (absent, null, wrong type) reads as empty."""
    return value if isinstance(value, dict) else {}


def maybe_mapping(value: object) -> Json | None:
    """The value as a dict, or None for a nil pointer (absent, null or not an object)."""
    return value if isinstance(value, dict) else None


def dict_items(value: object) -> list[Json]:
    """The dict entries of a list field; a missing or malformed list is empty."""
    if not isinstance(value, list):
        return []
    return [mapping(item) for item in value]


def text(value: object) -> str:
    """A Go string field: absent or null is the empty string."""
    return "" if value is None else str(value)


def containers(spec: Json) -> Iterator[Json]:
    """Every container of the pod spec in upstream's visit order."""
    for field in CONTAINER_LISTS:
        yield from dict_items(spec.get(field))


def name_of(container: Json) -> str:
    return text(container.get("name"))


def container_context(container: Json) -> Json | None:
    """The container's securityContext, or None when it is nil."""
    return maybe_mapping(container.get("securityContext"))


def container_field(container: Json, field: str) -> Any:
    """A container securityContext field, None when the context or the field is nil."""
    return mapping(container.get("securityContext")).get(field)


def pod_context(spec: Json) -> Json:
    """The pod securityContext (an empty dict when nil: no pod field is then set)."""
    return mapping(spec.get("securityContext"))


def is_windows(spec: Json) -> bool:
    """Only an explicit `os.name: windows` counts, as upstream compares the exact value."""
    return mapping(spec.get("os")).get("name") == "windows"


def uses_user_namespace(spec: Json) -> bool:
    """KEP-127: only an explicit `hostUsers: false` relaxes the checks (null means host users)."""
    return spec.get("hostUsers") is False


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(values: Sequence[str]) -> str:
    """`"a", "b"`: upstream wraps each item in quotes without escaping."""
    return ", ".join(f'"{value}"' for value in values)


def containers_phrase(names: Sequence[str]) -> str:
    """`container "a"` or `containers "a", "b"`."""
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
               "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(value: str) -> str:
    """Go's %q (strconv.Quote): annotation values in messages are quoted this way."""
    out = []
    for char in value:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'

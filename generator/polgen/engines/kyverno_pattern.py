"""Kyverno's overlay pattern matching with anchors (validate.pattern / anyPattern).

Every pattern key must match the resource; anchors change that: `(k)` is a condition (a
mismatch skips), `<(k)` a global condition, `=(k)` "if present then", `^(k)` "some element",
`X(k)` "must be absent". A skip inside one array element drops that element only; when every
element is dropped the array reports skip. Outcomes carry Kyverno's path ("/spec/containers/0/").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from polgen.engines.kyverno_scalars import has_wildcard, wildcard_match
from polgen.engines.kyverno_value_pattern import matches

Status = Literal["pass", "fail", "skip", "error"]
_ANCHOR = re.compile(r"\A([+<=X^])?\((.+)\)\Z")

# Mismatch kinds: "conditional"/"global" (a condition did not hold), "skip" (every array
# element skipped), "negation" (an X() key is present), "fail" (anything else).
_SKIPS = ("conditional", "global", "skip")


@dataclass(frozen=True)
class Anchor:
    """A parsed anchored key: modifier is '' (condition), '<', '=', 'X', '^' or '+'."""

    modifier: str
    key: str

    def text(self) -> str:
        return f"{self.modifier}({self.key})"


def parse_anchor(key: str) -> Anchor | None:
    found = _ANCHOR.match(key)
    if found is None:
        return None
    return Anchor(found.group(1) or "", found.group(2))


@dataclass(frozen=True)
class Mismatch:
    kind: str
    path: str
    message: str

    @property
    def skips(self) -> bool:
        return self.kind in _SKIPS


@dataclass(frozen=True)
class PatternOutcome:
    """Result of one pattern on one resource: status plus Kyverno's failing path."""

    status: Status
    path: str = ""
    message: str = ""


@dataclass
class _Walk:
    """Which condition/existence/negation anchor keys were ever found in the resource."""

    seen: dict[str, bool] = field(default_factory=dict)

    def note(self, pattern: dict[str, Any], resource: dict[str, Any]) -> None:
        for key in pattern:
            anchor = parse_anchor(key)
            if anchor is None or anchor.modifier not in ("", "^", "X"):
                continue
            if not self.seen.get(key, False):
                self.seen[key] = anchor.key in resource

    def keys_missing(self) -> bool:
        return not all(self.seen.values())


def match_pattern(resource: Any, pattern: Any) -> PatternOutcome:
    """Kyverno's MatchPattern: pass, skip (a condition did not hold), fail or error."""
    walk = _Walk()
    mismatch = _element(resource, copy.deepcopy(pattern), "/", walk)
    if mismatch is None:
        return PatternOutcome("pass")
    if mismatch.skips:
        return PatternOutcome("skip", "", mismatch.message)
    if mismatch.kind == "negation":
        return PatternOutcome("fail", mismatch.path, mismatch.message)
    if walk.keys_missing() or not mismatch.path:
        return PatternOutcome("error", "", mismatch.message)
    return PatternOutcome("fail", mismatch.path, mismatch.message)


def _element(resource: Any, pattern: Any, path: str, walk: _Walk) -> Mismatch | None:
    if isinstance(pattern, dict):
        if not isinstance(resource, dict):
            return Mismatch(
                "fail", path, f"pattern and resource have different structures at {path}"
            )
        walk.note(pattern, resource)
        return _map(resource, pattern, path, walk)
    if isinstance(pattern, list):
        if not isinstance(resource, list):
            return Mismatch(
                "fail", path, f"resource does not satisfy the overlay pattern at {path}"
            )
        return _array(resource, pattern, path, walk)
    values = resource if isinstance(resource, list) else [resource]
    for value in values:
        if not matches(value, pattern):
            return Mismatch("fail", path, f"value {value!r} does not match {pattern!r} at {path}")
    return None


def _map(
    resource: dict[str, Any], pattern: dict[str, Any], path: str, walk: _Walk
) -> Mismatch | None:
    pattern = _expand_metadata(pattern, resource)
    anchored = sorted(k for k in pattern if _is_phase_one(k))
    skipped: Mismatch | None = None
    applied = 0
    for key in anchored:
        mismatch = _handle(key, pattern[key], resource, path, walk)
        if mismatch is None:
            applied += 1
            continue
        anchor = parse_anchor(key)
        if mismatch.skips and anchor is not None and anchor.modifier in ("=", "^"):
            skipped = skipped or mismatch
            continue
        return mismatch
    if skipped is not None and applied == 0:
        return skipped
    for key in _plain_order([k for k in pattern if not _is_phase_one(k)], pattern):
        mismatch = _handle(key, pattern[key], resource, path, walk)
        if mismatch is not None:
            return mismatch
    return None


def _is_phase_one(key: str) -> bool:
    anchor = parse_anchor(key)
    return anchor is not None and anchor.modifier in ("", "=", "X", "^")


def _plain_order(keys: list[str], pattern: dict[str, Any]) -> list[str]:
    """Global anchors first, then keys whose subtree holds anchors, then the rest."""

    def rank(key: str) -> int:
        anchor = parse_anchor(key)
        if anchor is not None and anchor.modifier == "<":
            return 0
        return 1 if _has_anchors(pattern[key]) else 2

    return sorted(keys, key=rank)


def _has_anchors(value: Any) -> bool:
    if isinstance(value, dict):
        return any(parse_anchor(k) is not None or _has_anchors(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_anchors(item) for item in value)
    return False


def _handle(
    key: str, pattern: Any, resource: dict[str, Any], path: str, walk: _Walk
) -> Mismatch | None:
    anchor = parse_anchor(key)
    if anchor is None or anchor.modifier == "+":
        return _plain(key, pattern, resource, path, walk)
    here = path + anchor.key + "/"
    present = anchor.key in resource
    if anchor.modifier == "X":
        if present:
            return Mismatch("negation", here, f"{here} is not allowed")
        return None
    if not present:
        if anchor.modifier == "":
            return Mismatch(
                "conditional", here, "conditional anchor key doesn't exist in the resource"
            )
        return None
    value = resource[anchor.key]
    if anchor.modifier == "^":
        return _existence(value, pattern, here, walk)
    mismatch = _element(value, pattern, here, walk)
    if mismatch is None or anchor.modifier == "=":
        return mismatch
    kind = "conditional" if anchor.modifier == "" else "global"
    return Mismatch(kind, mismatch.path, f"{kind} anchor mismatch: {mismatch.message}")


def _plain(
    key: str, pattern: Any, resource: dict[str, Any], path: str, walk: _Walk
) -> Mismatch | None:
    if pattern == "*":
        if resource.get(key) is not None:
            return None
        return Mismatch("fail", path, f"{path}/{key} not found")
    return _element(resource.get(key), pattern, path + key + "/", walk)


def _existence(value: Any, pattern: Any, path: str, walk: _Walk) -> Mismatch | None:
    if not isinstance(value, list):
        return Mismatch(
            "fail", path, "existence anchor ^() can be used only on list/array type resource"
        )
    if not isinstance(pattern, list):
        return Mismatch("fail", path, "existence anchor pattern has to be a list")
    for item in pattern:
        if not isinstance(item, dict):
            return Mismatch("fail", path, "existence anchor pattern items have to be maps")
        if not any(
            _element(element, item, f"{path}{i}/", walk) is None for i, element in enumerate(value)
        ):
            return Mismatch("fail", path, f"existence anchor validation failed at path {path}")
    return None


def _array(resource: list[Any], pattern: list[Any], path: str, walk: _Walk) -> Mismatch | None:
    if not pattern:
        return Mismatch("fail", path, "pattern array empty")
    first = pattern[0]
    if isinstance(first, dict):
        return _each(resource, [first] * len(resource), path, walk)
    if not isinstance(first, list):
        return _element(resource, first, path, walk)
    if len(resource) < len(pattern):
        return Mismatch("fail", "", "array length mismatch")
    return _each(resource[: len(pattern)], pattern, path, walk)


def _each(resource: list[Any], patterns: list[Any], path: str, walk: _Walk) -> Mismatch | None:
    """Element-wise; skipped elements are dropped, all dropped is a skip of the array."""
    applied = 0
    first_skip: Mismatch | None = None
    for index, (element, item) in enumerate(zip(resource, patterns, strict=True)):
        mismatch = _element(element, item, f"{path}{index}/", walk)
        if mismatch is None:
            applied += 1
        elif mismatch.skips:
            first_skip = first_skip or mismatch
        else:
            return mismatch
    if applied == 0 and first_skip is not None:
        return Mismatch("skip", path, first_skip.message)
    return None


def _expand_metadata(pattern: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """Wildcard label/annotation keys become ONE matching resource key (Kyverno picks one).

    Go iterates a map in random order; polgen picks the first match in document order.
    """
    meta_key = _find_key(pattern, "metadata")
    resource_meta = resource.get("metadata")
    if (
        meta_key is None
        or not isinstance(pattern[meta_key], dict)
        or not isinstance(resource_meta, dict)
    ):
        return pattern
    meta = dict(pattern[meta_key])
    for tag in ("labels", "annotations"):
        tag_key = _find_key(meta, tag)
        actual = resource_meta.get(tag)
        if tag_key is None or not isinstance(meta[tag_key], dict) or not isinstance(actual, dict):
            continue
        meta[tag_key] = {_expand_key(k, actual): v for k, v in meta[tag_key].items()}
    expanded = dict(pattern)
    expanded[meta_key] = meta
    return expanded


def _find_key(pattern: dict[str, Any], name: str) -> str | None:
    for key in pattern:
        anchor = parse_anchor(key)
        if key == name or (anchor is not None and anchor.key == name):
            return key
    return None


def _expand_key(key: str, actual: dict[str, Any]) -> str:
    if not has_wildcard(key):
        return key
    anchor = parse_anchor(key)
    bare = anchor.key if anchor is not None else key
    for candidate in actual:
        if wildcard_match(bare, candidate):
            return Anchor(anchor.modifier, candidate).text() if anchor is not None else candidate
    return key

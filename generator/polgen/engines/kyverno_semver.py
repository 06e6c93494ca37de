"""Semantic versions and ranges as blang/semver reads them (Kyverno's semver_compare).

A range is `||`-separated alternatives of space-separated comparators (`>=1.2.0 <2.0.0`);
`x` in the minor or patch position of a bare/`=` comparator is a wildcard (`1.2.x`).
"""

from __future__ import annotations

import re

_VERSION = re.compile(
    r"\A(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z"
)
_COMPARATOR = re.compile(r"\A(>=|<=|!=|==|>|<|=|!)?(.+)\Z")

Key = tuple[int, int, int, tuple[tuple[int, int | str], ...]]


def parse_version(text: str) -> Key:
    """A strict semantic version as a sortable key (pre-releases sort before the release)."""
    found = _VERSION.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a semantic version")
    major, minor, patch, pre = found.groups()
    return int(major), int(minor), int(patch), _prerelease(pre)


def _prerelease(pre: str | None) -> tuple[tuple[int, int | str], ...]:
    if pre is None:
        return ((2, 0),)
    parts: list[tuple[int, int | str]] = []
    for part in pre.split("."):
        parts.append((0, int(part)) if part.isdigit() else (1, part))
    return tuple(parts)


def satisfies(version: str, constraint: str) -> bool:
    """Does the version fall in the blang/semver range expression?"""
    key = parse_version(version)
    alternatives = [alt.split() for alt in constraint.split("||")]
    if any(not alt for alt in alternatives):
        raise ValueError(f"empty range in {constraint!r}")
    return any(all(_check(key, comparator) for comparator in alt) for alt in alternatives)


def _check(key: Key, comparator: str) -> bool:
    found = _COMPARATOR.match(comparator)
    if found is None:
        raise ValueError(f"invalid comparator {comparator!r}")
    operator, text = found.group(1) or "=", found.group(2)
    if "x" in text.split(".") or "X" in text.split(".") or "*" in text.split("."):
        return _wildcard(key, operator, text)
    target = parse_version(text)
    return {
        "=": key == target,
        "==": key == target,
        "!=": key != target,
        "!": key != target,
        ">": key > target,
        ">=": key >= target,
        "<": key < target,
        "<=": key <= target,
    }[operator]


def _wildcard(key: Key, operator: str, text: str) -> bool:
    if operator not in ("=", "=="):
        raise ValueError(f"wildcard versions only with '=': {operator}{text}")
    parts = text.split(".")
    if len(parts) > 3:
        raise ValueError(f"invalid version {text!r}")
    fixed: list[int] = []
    for part in parts:
        if part in ("x", "X", "*"):
            break
        if not part.isdigit():
            raise ValueError(f"invalid version {text!r}")
        fixed.append(int(part))
    return list(key[: len(fixed)]) == fixed

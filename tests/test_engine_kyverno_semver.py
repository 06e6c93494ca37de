"""blang/semver ranges (kyverno_semver) as semver_compare reads them."""

from __future__ import annotations

import pytest

from polgen.engines.kyverno_semver import parse_version, satisfies


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "=1.2.3", True),
        ("1.2.3", "!=1.2.3", False),
        ("1.2.3", ">1.2.2", True),
        ("1.2.3", "<1.2.3", False),
        ("1.2.3", "<=1.2.3", True),
        ("1.2.3", ">=1.0.0 <2.0.0", True),
        ("2.0.0", ">=1.0.0 <2.0.0", False),
        ("3.1.0", "<2.0.0 || >=3.0.0", True),
        ("1.2.9", "1.2.x", True),
        ("1.3.0", "1.2.x", False),
        ("1.0.0-alpha", "<1.0.0", True),
        ("1.0.0-alpha", "<1.0.0-beta", True),
        ("1.0.0-alpha.1", ">1.0.0-alpha", True),
        ("1.0.0+build", "1.0.0", True),
    ],
)
def test_satisfies(version: str, constraint: str, expected: bool) -> None:
    assert satisfies(version, constraint) is expected


@pytest.mark.parametrize(
    ("version", "constraint"),
    [("v1.0.0", "1.0.0"), ("1.0", "1.0.0"), ("1.0.0", ">1.x"), ("1.0.0", "")],
)
def test_invalid(version: str, constraint: str) -> None:
    with pytest.raises(ValueError):
        satisfies(version, constraint)


def test_prerelease_orders_before_release() -> None:
    assert parse_version("1.0.0-rc.1") < parse_version("1.0.0")

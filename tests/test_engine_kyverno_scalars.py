"""Wildcards, Go durations, Kubernetes quantities and Go printing (kyverno_scalars)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from polgen.engines.kyverno_scalars import (
    go_float,
    go_sprint,
    parse_duration,
    parse_quantity,
    wildcard_match,
)

# (pattern, text, matched): cases from kyverno/kyverno ext/wildcard/match_test.go.
WILDCARDS = [
    ("*", "s3:GetObject", True),
    ("", "s3:GetObject", False),
    ("", "", True),
    ("s3:*", "s3:ListMultipartUploadParts", True),
    ("s3:ListBucketMultipartUploads", "s3:ListBucket", False),
    ("my-bucket/oo*", "my-bucket/oo", True),
    ("my-bucket/In*", "my-bucket/India/Karnataka/", True),
    ("my-bucket/In*", "my-bucket/Karnataka/India/", False),
    ("my-bucket/In*/Ka*/Ban", "my-bucket/India/Karnataka/Area1/Area2/Area3/Ban", True),
    ("my-bucket/In*/Ka*/Ban", "my-bucket/India/Karnataka/Bangalore", False),
    ("my-bucket?/abc*", "mybucket/abc", False),
    ("my-bucket?/abc*", "my-bucket1/abc", True),
    ("my-?-bucket/abc*", "my--bucket/abc", False),
    ("my??bucket/abc*", "my4abucket/abc", True),
    ("my-bucket/abc?efg", "my-bucket/abc/efg", True),
    ("my-bucket/abc?", "my-bucket/abc", False),
    ("my-bucket/abc?", "my-bucket/abcde", False),
    ("my-bucket/mnop*?", "my-bucket/mnop", False),
    ("my-bucket/mnop*?and", "my-bucket/mnopqand", True),
    ("my-bucket/mnop*?and", "my-bucket/mnopand", False),
    # Image allow-lists: `*` crosses `/`, `.` and `:` (kyverno#10906).
    ("eu.foo.io/*", "eu.foo.io/team/app:1", True),
    ("eu.foo.io*", "eu.foo.io.evil.example/x", True),
    ("*:latest", "nginx:latest", True),
    ("a.b", "axb", False),
]


@pytest.mark.parametrize(("pattern", "text", "matched"), WILDCARDS)
def test_wildcard(pattern: str, text: str, matched: bool) -> None:
    assert wildcard_match(pattern, text) is matched


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("1s", 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5s", 1_500_000_000),
        ("-2m", -120 * 10**9),
        ("300ms", 300_000_000),
        ("1us", 1000),
        ("1\u00b5s", 1000),
    ],
)
def test_duration(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "5", "1d", "s", "1h 30m", "false"])
def test_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", Fraction(2**30)),
        ("500m", Fraction(1, 2)),
        ("1e3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("-1k", Fraction(-1000)),
        (".5", Fraction(1, 2)),
        ("8080", Fraction(8080)),
    ],
)
def test_quantity(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1Gb", "false", "1 Gi", "RuntimeDefault"])
def test_not_a_quantity(text: str) -> None:
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (8080.0, "8080"),
        (1000000.0, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1.5, "1.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-3.25, "-3.25"),
    ],
)
def test_go_float(value: float, printed: str) -> None:
    assert go_float(value) == printed


def test_go_sprint_matches_fmt_sprint() -> None:
    assert go_sprint([1, "a", True, None]) == "[1 a true <nil>]"
    assert go_sprint({"b": 1, "a": "x"}) == "map[a:x b:1]"

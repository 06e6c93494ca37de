"""Wildcards, Go durations, Kubernetes quantities and Go printing (kyverno_scalars)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest

from polgen.engines.k8s_quantity import parse_quantity
from polgen.engines.kyverno_scalars import (
    go_equal,
    go_float,
    go_float32_text,
    go_json,
    go_parse_float,
    go_sprint,
    parse_duration,
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
    # Patterns without `*` or `?` compare whole strings, regex characters included.
    ("nginx", "nginx", True),
    ("nginx", "nginx:1", False),
    ("a[b]+$", "a[b]+$", True),
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


# (left, right, equal): reflect.DeepEqual on decoded JSON, where every number is a float64.
EQUALITY: list[tuple[Any, Any, bool]] = [
    (0, False, False),
    (1, True, False),
    ([0], [False], False),
    ({"a": 0}, {"a": False}, False),
    ([[1, {"b": True}]], [[1.0, {"b": True}]], True),
    (1, 1.0, True),
    ("1", 1, False),
    (None, None, True),
    (None, False, False),
    ([], {}, False),
    ({"a": 1}, {"a": 1, "b": None}, False),
    ([1, 2], [2, 1], False),
]


@pytest.mark.parametrize(("left", "right", "equal"), EQUALITY)
def test_go_equal(left: Any, right: Any, equal: bool) -> None:
    assert go_equal(left, right) is equal
    assert go_equal(right, left) is equal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5e3", -1500.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("1_000", 1000.0),
        ("0x1p-2", 0.25),
        ("Inf", math.inf),
        ("-infinity", -math.inf),
        ("1e400", None),  # ErrRange
        (" 1", None),
        ("1 ", None),
        ("1__0", None),
        ("_1", None),
        ("+nan", None),
        ("0x1", None),  # a hex mantissa needs a p exponent
        ("1e", None),
        ("", None),
    ],
)
def test_go_parse_float(text: str, value: float | None) -> None:
    assert go_parse_float(text) == value


def test_go_parse_float_reads_nan() -> None:
    parsed = go_parse_float("NaN")
    assert parsed is not None and math.isnan(parsed)


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (8080, "8080"),
        (1000000.0, "1000000"),
        (0.1, "0.1"),
        (1.5, "1.5"),
        (16777217, "16777216"),  # float32 precision
        (123456789.0, "123456790"),
        (1e-7, "0.0000001"),
        (-0.0, "-0"),
        (1e39, "+Inf"),  # beyond float32
        (math.nan, "NaN"),
    ],
)
def test_go_float32_text(value: float, printed: str) -> None:
    assert go_float32_text(value) == printed


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (123456789012345680000.0, "123456789012345680000"),
        ("a<b>&c\u2028", '"a\\u003cb\\u003e\\u0026c\\u2028"'),
        ("tab\t\x01", '"tab\\t\\u0001"'),
        ({"b": [True, None], "a": 1}, '{"a":1,"b":[true,null]}'),
    ],
)
def test_go_json(value: Any, encoded: str) -> None:
    assert go_json(value) == encoded


def test_go_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        go_json(math.nan)

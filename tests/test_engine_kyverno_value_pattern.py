"""One value against one pattern leaf (kyverno_value_pattern): operators, ranges, `|`, `&`."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_value_pattern import matches, operator_of

# (value, pattern, expected). The pattern.Validate cases of kyverno/kyverno
# pkg/engine/pattern/pattern_test.go, plus the PSS policies' leaves.
CASES: list[tuple[Any, Any, bool]] = [
    (False, "false", True),  # a string pattern matches the printed bool
    (True, "false", False),
    ("false", False, False),  # a bool pattern needs a bool value
    (0, ">0", False),
    (1000, ">0", True),
    (None, ">0", False),  # missing counts as "0" for quantity comparisons...
    (None, "<10", True),
    (None, "?*", False),  # ...but equality with a missing value fails
    ("", "?*", False),
    ("x", "?*", True),
    ("RuntimeDefault", "RuntimeDefault | Localhost", True),
    ("Unconfined", "RuntimeDefault | Localhost", False),
    ("localhost/profile", "runtime/default | localhost/*", True),
    ("1Gi", ">1000Mi", True),
    ("0.5", ">=500m", True),
    ("1024Mi", "1Gi", True),  # quantities compare by value
    ("2h", ">90m", True),  # durations too
    ("90s", "<1m", False),
    (5500, "5000-6000", True),
    (7000, "5000-6000", False),
    (7000, "5000!-6000", True),
    ("256Mi", "128Mi-512Mi", True),
    (8, ">1 & <10", True),
    (12, ">1 & <10", False),
    ("nginx:latest", "!*:latest", False),
    ("nginx", "*:*", False),
    ("nginx:1.2", "*:*", True),
    ("default", "!default", False),
    ("abc", ">a", False),  # > and < do not apply to strings
    (1.0, "1E+00", True),  # floats print as Go's %E
    (8080, 0, False),
    (0, 0, True),
    ("0", 0, True),
    (0, 0.0, True),
    (None, None, True),
    ("", None, True),
    (0, None, True),
    (False, None, True),
    ({}, None, False),
    ({"a": 1}, {}, True),
    ([1], {}, False),
]


@pytest.mark.parametrize(
    ("value", "pattern", "expected"), CASES, ids=[f"{v!r}~{p!r}" for v, p, _ in CASES]
)
def test_value_against_pattern(value: Any, pattern: Any, expected: bool) -> None:
    assert matches(value, pattern) is expected


@pytest.mark.parametrize(
    ("pattern", "operator"),
    [
        (">=1", ">="),
        ("<=1", "<="),
        (">1", ">"),
        ("<1", "<"),
        ("!x", "!"),
        ("x", ""),
        ("5-10", "range"),
        ("5!-10", "not-range"),
        ("1Gi-2Gi", "range"),
        ("!", ""),
        (">", ""),
    ],
)
def test_operator_of(pattern: str, operator: str) -> None:
    assert operator_of(pattern) == operator

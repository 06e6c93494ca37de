"""Kyverno's JMESPath semantics (kyverno_jmespath): `Unknown key` and where it is swallowed, and
Go's comparators (reflect.DeepEqual equality, ordering of numbers only)."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_jmespath import JMESPathError, UnknownKeyError, query

DATA: dict[str, Any] = {
    "request": {
        "operation": "CREATE",
        "object": {
            "metadata": {"name": "p", "labels": None},
            "spec": {
                "containers": [
                    {"name": "a", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
                    {"name": "b"},
                ],
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}],
            },
        },
    }
}

# (expression, expected value) where the fork does not raise.
VALUES: list[tuple[str, Any]] = [
    (
        "request.object.spec.[ephemeralContainers, initContainers, containers][].securityContext"
        ".capabilities.add[]",
        ["NET_ADMIN"],
    ),
    ("request.object.spec.volumes[].keys(@)[] || ''", ["name", "hostPath"]),
    ("request.object.spec.initContainers[].name || `[]`", []),
    ("request.object.spec.containers[*].securityContext.privileged", []),
    ("request.object.spec.containers[?securityContext.capabilities].name", ["a"]),
    ("request.object.spec.missing == null", True),
    ("request.object.spec.missing || 'fallback'", "fallback"),
    ("request.object.spec.missing[]", None),
    ("request.object.metadata.labels.team", None),  # field of an explicit null
    ("request.object.metadata.name.first", None),  # field of a string
    ("request.object.spec.missing | @", None),
    ("{a: request.object.spec.missing, b: request.operation}", {"a": None, "b": "CREATE"}),
    ("length(request.object.spec.containers)", 2),
    ("request.operation || 'BACKGROUND'", "CREATE"),
    # Go equality: a bool is never a number, at any depth (Python: 0 == False).
    ("contains(`[false]`, `0`)", False),
    ("contains(`[0]`, `false`)", False),
    ('contains(`[1, "a"]`, `1.0`)', True),
    ('contains(`[{"a": 1}]`, `{"a": 1}`)', True),
    ("contains('abc', `1`)", False),  # a non-string search in a string: false, no error
    ("`[0]` == `[false]`", False),
    ('`{"a": 1}` == `{"a": true}`', False),
    ('`{"a": 1}` != `{"a": true}`', True),
    ("`1` == `1.0`", True),
    ("`null` == request.object.spec.missing", True),
    # Go orders numbers only: any other operand gives null (strings included).
    ("request.operation < `1`", None),
    ("`1` >= 'a'", None),
    ("'a' < 'b'", None),
    ("`true` > `false`", None),
    ("`2` >= `1`", True),
    ("length(request.object.spec.containers) > `1`", True),
]

# Expressions that raise `Unknown key`: a missing key on a plain path, also under a projection's
# left side and on the right of `||`.
UNKNOWN: list[tuple[str, str]] = [
    ("request.object.spec.securityContext.runAsUser", "securityContext"),
    ("request.object.spec.missing[*].name", "missing"),
    ("request.object.spec.missing[?x].name", "missing"),
    ("request.nothing || request.object.spec.missing", "missing"),
    ("images.containers", "images"),
]


@pytest.mark.parametrize(("expression", "expected"), VALUES)
def test_fork_value(expression: str, expected: Any) -> None:
    assert query(expression, DATA) == expected


@pytest.mark.parametrize(("expression", "key"), UNKNOWN)
def test_fork_unknown_key(expression: str, key: str) -> None:
    with pytest.raises(UnknownKeyError) as raised:
        query(expression, DATA)
    assert str(raised.value) == f'Unknown key "{key}" in path'


@pytest.mark.parametrize(
    "expression",
    [
        "time_now_utc()",
        "x509_decode('x')",
        "length(`1`)",
        "request.[",
        "to_upper(`1`)",
        "divide(`1`, `0`)",
    ],
)
def test_other_failures_are_errors(expression: str) -> None:
    with pytest.raises(JMESPathError):
        query(expression, DATA)

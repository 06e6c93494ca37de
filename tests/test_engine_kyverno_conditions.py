"""Condition blocks (kyverno_conditions): any/all, legacy lists, lazy substitution."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_conditions import evaluate_conditions
from polgen.engines.kyverno_variables import SubstitutionError

CONTEXT = {"request": {"operation": "CREATE", "object": {"spec": {}}}}
TRUE = {"key": "{{ request.operation }}", "operator": "Equals", "value": "CREATE", "message": "t"}
FALSE = {"key": "{{ request.operation }}", "operator": "Equals", "value": "DELETE", "message": "f"}
BROKEN = {"key": "{{ request.object.spec.missing }}", "operator": "Equals", "value": 1}


@pytest.mark.parametrize(
    ("block", "holds"),
    [
        ({"any": [FALSE, TRUE]}, True),
        ({"any": [FALSE]}, False),
        ({"all": [TRUE, FALSE]}, False),
        ({"all": [TRUE]}, True),
        ({"any": [TRUE], "all": [FALSE]}, False),
        ([TRUE, TRUE], True),  # legacy list means all
        ({}, True),  # no condition holds trivially (deny: {} fails)
        ({"any": [TRUE, BROKEN]}, True),  # any stops at the first true condition
        ({"all": [FALSE, BROKEN]}, False),  # all stops at the first false one
    ],
)
def test_blocks(block: Any, holds: bool) -> None:
    assert evaluate_conditions(block, CONTEXT).holds is holds


def test_a_condition_that_does_not_resolve_is_an_error() -> None:
    with pytest.raises(SubstitutionError):
        evaluate_conditions({"all": [TRUE, BROKEN]}, CONTEXT)


def test_messages_of_deciding_conditions() -> None:
    assert evaluate_conditions({"all": [TRUE]}, CONTEXT).messages == ("t",)
    assert evaluate_conditions({"all": [FALSE]}, CONTEXT).messages == ("f",)

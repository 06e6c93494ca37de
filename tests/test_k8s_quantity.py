"""The quantity parser the Kyverno operators and CEL's quantity() share."""

from __future__ import annotations

from fractions import Fraction

import pytest

from polgen.engines.cel_runtime import compile_expression
from polgen.engines.k8s_quantity import is_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5Gi", Fraction(3 * 2**29)), ("250m", Fraction(1, 4)), ("1e3", Fraction(1000)),
     ("-.5k", Fraction(-500)), ("5.", Fraction(5)), ("1n", Fraction(1, 10**9))],
)
def test_quantities_parse_exactly(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value
    assert is_quantity(text)


@pytest.mark.parametrize("text", ["", "1 Gi", "1Gi\n", "\u0663", "1gi", "Gi", "1.2.3", "+"])
def test_what_kubernetes_refuses_is_not_a_quantity(text: str) -> None:
    """Go's parser takes ASCII digits only and no trailing newline (Python's \\d and $ would)."""
    assert parse_quantity(text) is None
    assert not is_quantity(text)


def test_cel_rounds_below_a_nano_away_from_zero_and_kyverno_does_not() -> None:
    program = compile_expression(
        "[quantity('1.0000000001').compareTo(quantity('1.000000001')),"
        " quantity('-1.0000000001').compareTo(quantity('-1.000000001')),"
        " quantity('1.0000000001').compareTo(quantity('1'))]",
        [],
    )
    assert program.evaluate({}) == [0, 0, 1]
    assert parse_quantity("1.0000000001") == Fraction(10000000001, 10**10)

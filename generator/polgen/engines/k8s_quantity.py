"""Kubernetes resource quantities (`1.5Gi`, `250m`, `1e3`) as exact numbers: the one parser the
Kyverno operators and the CEL `quantity()` library share (k8s.io/apimachinery
resource.ParseQuantity accepts exactly this grammar, ASCII digits only)."""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def is_quantity(text: str) -> bool:
    """Whether the text parses as a quantity."""
    return _QUANTITY.fullmatch(text) is not None


def parse_quantity(text: str) -> Fraction | None:
    """The exact value of a quantity; None when it would not parse."""
    found = _QUANTITY.fullmatch(text)
    if found is None:
        return None
    sign, number, suffix = found.groups()
    value = Fraction(number)
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    elif suffix:
        value *= Fraction(10) ** int(suffix[1:])
    return -value if sign == "-" else value

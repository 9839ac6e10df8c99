"""Rates are rounded once, half away from zero, to six decimal places."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from execmetrics.metrics.service import as_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2_000_000), Decimal("0.000001")),
        (Fraction(-1, 2_000_000), Decimal("-0.000001")),
        (Fraction(1, 3), Decimal("0.333333")),
        (Fraction(2, 3), Decimal("0.666667")),
        (Fraction(1, 10), Decimal("0.1")),
        (Fraction(7, 1), Decimal("7")),
        # A hair below half a millionth rounds down.
        (Fraction(10**30 - 1, 2 * 10**36), Decimal("0")),
    ],
)
def test_rates_round_half_away_from_zero_once(value: Fraction, expected: Decimal) -> None:
    assert as_decimal(value) == expected


def test_no_rate_stays_none() -> None:
    assert as_decimal(None) is None

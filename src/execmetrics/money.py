"""Money: an integer amount in the minor units of an ISO 4217 currency.

This module is the only place where amounts are parsed, converted between currencies
and rounded. Arithmetic is exact (integers and fractions); no float touches money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache

import iso4217


class MoneyError(ValueError):
    """An amount, currency or rate that cannot be used as money."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise MoneyError(f"amount must be an integer in minor units, got {self.amount!r}")
        currency_exponent(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency}")

    def format(self, whole: bool = False) -> str:
        """Human form, e.g. `GBP 1,234.56`; `whole` rounds half up to a major unit for display
        (`GBP 1,235`). Negative amounts keep their sign."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        if whole:
            major = divide_half_up(abs(self.amount), 10**exponent)
            return f"{self.currency} {sign}{major:,}"
        major, minor = divmod(abs(self.amount), 10**exponent)
        fraction = f".{minor:0{exponent}d}" if exponent else ""
        return f"{self.currency} {sign}{major:,}{fraction}"


@cache
def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (GBP 2, JPY 0, BHD 3)."""
    try:
        currency = iso4217.Currency(code)
    except ValueError:
        raise MoneyError(f"unknown currency {code!r} (expected an ISO 4217 code)") from None
    if currency.exponent is None:
        raise MoneyError(f"{code} is not a currency with minor units (ISO 4217 lists none)")
    return int(currency.exponent)


def is_currency(code: str) -> bool:
    try:
        currency_exponent(code)
    except MoneyError:
        return False
    return True


_MINOR_UNITS = re.compile(r"[0-9]+")
MAX_DIGITS = 18  # any amount that fits a 64-bit integer column


def parse_minor_units(text: object) -> int:
    """A non-negative integer amount in minor units; floats and decimals are refused."""
    if isinstance(text, bool):
        raise MoneyError(f"expected an integer in minor units, got {text!r}")
    if isinstance(text, int):
        value = text
    elif not isinstance(text, str):
        raise MoneyError(f"expected an integer in minor units, got {text!r}")
    else:
        stripped = text.strip()
        if not _MINOR_UNITS.fullmatch(stripped):
            if re.fullmatch(r"-[0-9]+", stripped):
                raise MoneyError(f"negative amount {stripped!r}")
            raise MoneyError(
                f"expected an integer in minor units (e.g. 4900 for 49.00), got {text!r}"
            )
        if len(stripped.lstrip("0")) > MAX_DIGITS:
            raise MoneyError(f"amount has more than {MAX_DIGITS} digits")
        value = int(stripped)
    if value < 0:
        raise MoneyError(f"negative amount {value}")
    return value


def parse_rate(text: str) -> Fraction:
    """An exchange rate given as a positive decimal string, kept exact."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise MoneyError(f"expected a decimal rate such as 0.8523, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise MoneyError(f"rate must be a positive decimal, got {text!r}")
    return Fraction(value)


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero."""
    return divide_half_up(value.numerator, value.denominator)


def divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    rounded = (2 * abs(numerator) + denominator) // (2 * denominator)
    return rounded if numerator >= 0 else -rounded


def conversion_factor(from_currency: str, to_currency: str, rate: Fraction) -> Fraction:
    """Factor turning minor units of from_currency into minor units of to_currency.

    `rate` is per major unit (one EUR is worth `rate` GBP), so the minor-unit exponents
    of the two currencies scale it: 1 JPY minor unit = 1 yen, 1 GBP minor unit = 1/100 pound.
    """
    shift = currency_exponent(to_currency) - currency_exponent(from_currency)
    return rate * Fraction(10) ** shift


def ratio_of_money(numerator: int, denominator: int) -> int | None:
    """An integer money amount divided by a count, rounded half up; None when dividing by 0."""
    if denominator == 0:
        return None
    return round_half_up(Fraction(numerator, denominator))

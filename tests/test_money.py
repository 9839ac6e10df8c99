"""Money: currencies and their minor units, parsing, exact conversion and rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest

from execmetrics.money import (
    Money,
    MoneyError,
    conversion_factor,
    currency_exponent,
    parse_minor_units,
    parse_rate,
    ratio_of_money,
    round_half_up,
)

# --- currencies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("GBP", 2), ("EUR", 2), ("USD", 2), ("JPY", 0), ("BHD", 3)],
)
def test_currency_exponent_is_the_iso_4217_minor_unit(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["ZZZ", "GB", "GBPX", "", "gbp", "XAU", "XXX", "XDR"])
def test_unknown_codes_and_currencies_without_minor_units_are_refused(code: str) -> None:
    with pytest.raises(MoneyError):
        currency_exponent(code)


def test_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        Money(100, "ZZZ")
    with pytest.raises(MoneyError):
        Money(100, "XAU")


@pytest.mark.parametrize("amount", [49.0, Fraction(49), True, "4900"])
def test_money_amount_must_be_an_integer(amount: object) -> None:
    with pytest.raises(MoneyError):
        Money(amount, "GBP")  # type: ignore[arg-type]


# --- parsing amounts --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("4900", 4900), (" 4900 ", 4900)])
def test_parse_minor_units_accepts_non_negative_integers(text: str, value: int) -> None:
    assert parse_minor_units(text) == value


def test_parse_minor_units_accepts_python_ints() -> None:
    assert parse_minor_units(4900) == 4900
    assert parse_minor_units(0) == 0


@pytest.mark.parametrize(
    "text",
    [
        "49.0",
        "49.00",
        "4.9e3",
        "4900.0",  # str() of a JSON 4900.0
        "1e+20",  # str() of a JSON 1e20
        "-5",
        "-0.5",
        "",
        "   ",
        "abc",
        "+49",
        "0x10",
        "49_00",
        "\uff11\uff12",  # full-width digits
        "true",  # how the JSON reader renders a boolean
    ],
)
def test_parse_minor_units_refuses_anything_but_an_integer(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_minor_units(text)


@pytest.mark.parametrize("value", [True, False, -5])
def test_parse_minor_units_refuses_bools_and_negative_ints(value: int) -> None:
    with pytest.raises(MoneyError):
        parse_minor_units(value)


@pytest.mark.parametrize("value", [49.0, 4900.0, 0.5])
def test_parse_minor_units_refuses_float_values_with_money_error(value: float) -> None:
    # A float must be refused as money (MoneyError, a ValueError the ingest reports per row),
    # not crash with an AttributeError.
    with pytest.raises(MoneyError):
        parse_minor_units(value)  # type: ignore[arg-type]


# --- parsing rates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.85", Fraction(17, 20)),
        (" 0.85 ", Fraction(17, 20)),
        ("1", Fraction(1)),
        ("0.0052", Fraction(52, 10000)),
        ("190.123456789", Fraction(190123456789, 10**9)),
    ],
)
def test_parse_rate_is_exact(text: str, value: Fraction) -> None:
    rate = parse_rate(text)
    assert isinstance(rate, Fraction)
    assert rate == value


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0.000",
        "-0",
        "-0.85",
        "-1",
        "abc",
        "",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
    ],
)
def test_parse_rate_refuses_zero_negative_and_non_finite(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_rate(text)


# --- rounding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),  # not banker's rounding (would be 2)
        (Fraction(83405, 2), 41703),
        (Fraction(-1, 2), -1),
        (Fraction(-5, 2), -3),  # halves away from zero
        (Fraction(-83405, 2), -41703),
        (Fraction(49999, 100000), 0),
        (Fraction(-49999, 100000), 0),
        (Fraction(50001, 100000), 1),
        (Fraction(16666, 1) + Fraction(2, 3), 16667),
        (Fraction(7, 3), 2),
        (Fraction(-7, 3), -2),
        (Fraction(0), 0),
        (Fraction(12), 12),
    ],
)
def test_round_half_up(value: Fraction, rounded: int) -> None:
    result = round_half_up(value)
    assert result == rounded
    assert type(result) is int


def test_ratio_of_money_rounds_half_up_and_is_none_for_zero_count() -> None:
    assert ratio_of_money(5, 2) == 3
    assert ratio_of_money(10000, 3) == 3333
    assert ratio_of_money(20000, 3) == 6667
    assert ratio_of_money(100, 0) is None
    assert ratio_of_money(0, 0) is None


# --- conversion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "rate", "factor"),
    [
        # 1 EUR = 0.85 GBP; both have 2 decimals, so 1 cent = 0.85 pence.
        ("EUR", "GBP", "0.85", Fraction(85, 100)),
        # 1 JPY = 0.0052 GBP; 1 yen (minor unit, exponent 0) = 0.52 pence.
        ("JPY", "GBP", "0.0052", Fraction(52, 100)),
        # 1 GBP = 190 JPY; 1 penny = 1.9 yen.
        ("GBP", "JPY", "190", Fraction(19, 10)),
        # 1 BHD = 2.1 GBP; 1 fils (exponent 3) = 0.21 pence.
        ("BHD", "GBP", "2.1", Fraction(21, 100)),
        # 1 GBP = 0.48 BHD; 1 penny = 4.8 fils.
        ("GBP", "BHD", "0.48", Fraction(48, 10)),
        ("GBP", "GBP", "1", Fraction(1)),
    ],
)
def test_conversion_factor_scales_by_minor_unit_exponents(
    source: str, target: str, rate: str, factor: Fraction
) -> None:
    result = conversion_factor(source, target, parse_rate(rate))
    assert isinstance(result, Fraction)
    assert result == factor


def test_conversion_of_amounts_in_minor_units() -> None:
    # 10,000 yen at 0.0052 GBP per yen = 52.00 GBP.
    assert 10000 * conversion_factor("JPY", "GBP", parse_rate("0.0052")) == 5200
    # 49.500 BHD at 2.1 GBP per dinar = 103.95 GBP.
    assert 49500 * conversion_factor("BHD", "GBP", parse_rate("2.1")) == 10395
    # 49.00 GBP at 190 yen per pound = 9,310 yen.
    assert 4900 * conversion_factor("GBP", "JPY", parse_rate("190")) == 9310


def test_conversion_factor_refuses_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        conversion_factor("ZZZ", "GBP", Fraction(1))
    with pytest.raises(MoneyError):
        conversion_factor("GBP", "XAU", Fraction(1))


# --- arithmetic and formatting ---------------------------------------------------------


def test_money_adds_and_subtracts_in_one_currency() -> None:
    assert Money(4900, "GBP") + Money(100, "GBP") == Money(5000, "GBP")
    assert Money(4900, "GBP") - Money(5000, "GBP") == Money(-100, "GBP")


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(MoneyError):
        Money(4900, "GBP") + Money(4900, "EUR")
    with pytest.raises(MoneyError):
        Money(4900, "GBP") - Money(4900, "JPY")


def test_money_is_immutable_and_compares_by_value() -> None:
    money = Money(4900, "GBP")
    assert money == Money(4900, "GBP")
    assert money != Money(4900, "EUR")
    with pytest.raises(AttributeError):
        money.amount = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123456, "GBP"), "GBP 1,234.56"),
        (Money(5, "GBP"), "GBP 0.05"),
        (Money(0, "GBP"), "GBP 0.00"),
        (Money(-123456, "GBP"), "GBP -1,234.56"),
        (Money(-5, "GBP"), "GBP -0.05"),
        (Money(1234567, "JPY"), "JPY 1,234,567"),
        (Money(-1500, "JPY"), "JPY -1,500"),
        (Money(1234567, "BHD"), "BHD 1,234.567"),
        (Money(7, "BHD"), "BHD 0.007"),
        (Money(-49500, "BHD"), "BHD -49.500"),
    ],
)
def test_money_format(money: Money, text: str) -> None:
    assert money.format() == text

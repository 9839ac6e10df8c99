"""Per-database settings: the reporting currency (fixed at creation) and the gross margin."""

from __future__ import annotations

from fractions import Fraction

from sqlalchemy import Connection, select

from execmetrics.money import MoneyError, currency_exponent, parse_rate
from execmetrics.store.tables import settings

DEFAULTS = {"reporting_currency": "GBP", "gross_margin": "1.0"}


class SettingError(ValueError):
    """A setting name or value that is refused."""


def get_setting(connection: Connection, key: str) -> str:
    value = connection.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return DEFAULTS[key] if value is None else str(value)


def all_settings(connection: Connection) -> dict[str, str]:
    stored = dict(connection.execute(select(settings.c.key, settings.c.value)).all())
    return {**DEFAULTS, **stored}


def reporting_currency(connection: Connection) -> str:
    return get_setting(connection, "reporting_currency")


def gross_margin(connection: Connection) -> Fraction:
    return parse_rate(get_setting(connection, "gross_margin"))


def set_setting(connection: Connection, key: str, value: str, *, database_is_empty: bool) -> None:
    """Store a setting; the reporting currency can only change before any data is ingested."""
    if key not in DEFAULTS:
        raise SettingError(f"unknown setting {key!r} (known: {', '.join(DEFAULTS)})")
    if key == "reporting_currency":
        try:
            currency_exponent(value)
        except MoneyError as error:
            raise SettingError(f"reporting_currency: {error}") from None
        if not database_is_empty and value != reporting_currency(connection):
            raise SettingError("reporting_currency is fixed once data has been ingested")
    if key == "gross_margin":
        try:
            margin = parse_rate(value)
        except MoneyError as error:
            raise SettingError(f"gross_margin: {error}") from None
        if margin > 1:
            raise SettingError(f"gross_margin must be a fraction in (0, 1], got {value}")
    existing = connection.execute(select(settings.c.key).where(settings.c.key == key)).scalar()
    if existing is None:
        connection.execute(settings.insert().values(key=key, value=value))
    else:
        connection.execute(settings.update().where(settings.c.key == key).values(value=value))

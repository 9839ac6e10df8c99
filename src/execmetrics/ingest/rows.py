"""Validation of one input row per data set, into the values stored.

Each `parse_*` function takes a row of strings and returns the row to store, or raises
RowError naming the column at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pycountry

from execmetrics.ingest.problems import RowError
from execmetrics.ingest.readers import Row
from execmetrics.money import (
    MAX_DIGITS,
    MoneyError,
    currency_exponent,
    parse_minor_units,
    parse_rate,
)
from execmetrics.timeutil import TimestampError, parse_timestamp

EVENT_TYPES = ("start", "change", "cancel")
INTERVALS = ("day", "week", "month", "year")
SEGMENTS = {"smb": "SMB", "mid-market": "Mid-Market", "enterprise": "Enterprise"}

CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "created_at",
    "country",
    "segment",
    "employees",
    "acquisition_source",
    "acquisition_campaign",
)
EVENT_COLUMNS = (
    "event_id",
    "customer_id",
    "subscription_id",
    "occurred_at",
    "type",
    "plan_id",
    "tier",
    "amount_minor",
    "quantity",
    "currency",
    "interval",
    "interval_count",
    "trial_ends_at",
)
TICKET_COLUMNS = ("ticket_id", "customer_id", "opened_at", "closed_at", "priority", "category")
PRIORITIES = ("low", "normal", "high", "urgent")
ACTIVITY_COLUMNS = ("event_id", "customer_id", "user_id", "occurred_at", "type", "quantity")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "subscription_events": ("event_id", "customer_id", "subscription_id", "occurred_at", "type"),
    "fx_rates": ("date", "currency", "rate"),
    "marketing_spend": ("month", "source", "amount_minor", "currency"),
    "support_tickets": ("ticket_id", "customer_id", "opened_at", "priority"),
    "activity_events": ("event_id", "customer_id", "occurred_at", "type"),
}
MAX_TEXT = 200  # identifiers and names of plans, sources and campaigns
MAX_COUNT = 2**31 - 1
MAX_AMOUNT_MINOR = 10**15 - 1
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RATE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,18})?")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _text(row: Row, column: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _required(row: Row, column: str) -> str:
    value = _text(row, column)
    if value is None:
        raise RowError(column, "required but empty")
    return value


def _guard(column: str, parse: Callable[[str], Any], value: str) -> Any:
    try:
        return parse(value)
    except (MoneyError, TimestampError, ValueError) as error:
        raise RowError(column, str(error)) from None


def _timestamp(row: Row, column: str, required: bool = False) -> int | None:
    value = _required(row, column) if required else _text(row, column)
    return None if value is None else int(_guard(column, parse_timestamp, value))


def _currency(row: Row, column: str = "currency") -> str:
    code = _required(row, column)
    _guard(column, currency_exponent, code)
    return code


def _count(row: Row, column: str, default: int | None, minimum: int) -> int | None:
    value = _text(row, column)
    return default if value is None else count_value(value, column, minimum)


def count_value(value: str, column: str, minimum: int) -> int:
    """A whole number from `minimum` to MAX_COUNT, or a RowError naming the column."""
    if not re.fullmatch(rf"-?[0-9]{{1,{MAX_DIGITS}}}", value):
        raise RowError(
            column,
            f"expected a whole number from {minimum} to {MAX_COUNT}, got {shown_value(value)}",
        )
    number = int(value)
    if number < minimum:
        raise RowError(column, f"must be at least {minimum}, got {number}")
    if number > MAX_COUNT:
        raise RowError(column, f"must be at most {MAX_COUNT}, got {number}")
    return number


def _country(row: Row) -> str | None:
    code = _text(row, "country")
    if code is None:
        return None
    if len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise RowError("country", f"not an ISO 3166-1 alpha-2 country code: {code!r}")
    return code.upper()


def segment_for(employees: int | None) -> str | None:
    """Segment derived from company size: under 50 SMB, 50-999 Mid-Market, 1000+ Enterprise."""
    if employees is None:
        return None
    if employees < 50:
        return "SMB"
    return "Mid-Market" if employees < 1000 else "Enterprise"


def parse_customer(row: Row) -> dict[str, Any]:
    employees = _count(row, "employees", None, 0)
    segment = _text(row, "segment")
    if segment is not None:
        if segment.lower() not in SEGMENTS:
            raise RowError("segment", f"expected SMB, Mid-Market or Enterprise, got {segment!r}")
        segment = SEGMENTS[segment.lower()]
    else:
        segment = segment_for(employees)
    attributes = {
        key: value.strip()
        for key, value in row.items()
        if key not in CUSTOMER_COLUMNS and value is not None and value.strip()
    }
    record: dict[str, Any] = {
        "customer_id": _identifier(_text(row, "customer_id"), "customer_id"),
        "name": _text(row, "name"),
        "created_at": _timestamp(row, "created_at"),
        "country": _country(row),
        "segment": segment,
        "employees": employees,
        "acquisition_source": _identifier(
            _text(row, "acquisition_source"), "acquisition_source", required=False
        ),
        "acquisition_campaign": _identifier(
            _text(row, "acquisition_campaign"), "acquisition_campaign", required=False
        ),
        "attributes": attributes,
    }
    return record


def _strip(row: Row) -> dict[str, str | None]:
    return {key: (value.strip() or None) if value else None for key, value in row.items()}


def _instant(value: str | None, column: str) -> int:
    if value is None:
        raise RowError(column, "required but empty")
    try:
        return parse_timestamp(value)
    except TimestampError as error:
        raise RowError(column, str(error)) from None


def _minor_units(value: str | None, column: str) -> int:
    if value is None:
        raise RowError(column, "required but empty")
    if not (value.isascii() and value.isdigit()):
        amount = int(_guard(column, parse_minor_units, value))
    elif len(value.lstrip("0")) > len(str(MAX_AMOUNT_MINOR)):
        # Checked on the digits: int() of a very long string is slow and then refused.
        amount = MAX_AMOUNT_MINOR + 1
    else:
        amount = int(value)
    if amount > MAX_AMOUNT_MINOR:
        raise RowError(column, f"must be at most {MAX_AMOUNT_MINOR}, got {shown_value(value)}")
    return amount


def _positive(value: str | None, column: str) -> int:
    if value is None or value == "1":
        return 1
    if (
        value.isascii()
        and value.isdigit()
        and len(value) <= MAX_DIGITS
        and 1 <= int(value) <= MAX_COUNT
    ):
        return int(value)
    raise RowError(
        column, f"expected a whole number from 1 to {MAX_COUNT}, got {shown_value(value)}"
    )


def shown_value(value: str) -> str:
    """A value quoted for a problem report, shortened when it is very long."""
    return repr(value) if len(value) <= 40 else f"{value[:20]!r}... ({len(value)} characters)"


def _identifier(value: str | None, column: str, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise RowError(column, "required but empty")
        return None
    if len(value) > MAX_TEXT:
        raise RowError(column, f"longer than {MAX_TEXT} characters ({len(value)})")
    return value


def parse_subscription_event(row: Row) -> dict[str, Any]:
    # The hot path of a large ingest: one pass of stripping, then direct checks.
    text = _strip(row)
    kind = text.get("type")
    if kind not in EVENT_TYPES:
        reason = (
            "required but empty"
            if kind is None
            else (f"expected start, change or cancel, got {kind!r}")
        )
        raise RowError("type", reason)
    record: dict[str, Any] = {
        "event_id": _identifier(text.get("event_id"), "event_id"),
        "customer_id": _identifier(text.get("customer_id"), "customer_id"),
        "subscription_id": _identifier(text.get("subscription_id"), "subscription_id"),
        "occurred_at": _instant(text.get("occurred_at"), "occurred_at"),
        "type": kind,
        "plan_id": None,
        "tier": None,
        "amount_minor": None,
        "quantity": None,
        "currency": None,
        "interval": None,
        "interval_count": None,
        "trial_ends_at": None,
    }
    if kind == "cancel":
        return record
    interval = text.get("interval")
    if interval not in INTERVALS:
        raise RowError(
            "interval",
            "required but empty"
            if interval is None
            else f"expected day, week, month or year, got {interval!r}",
        )
    currency = text.get("currency")
    if currency is None:
        raise RowError("currency", "required but empty")
    _guard("currency", currency_exponent, currency)
    trial = text.get("trial_ends_at")
    record.update(
        plan_id=_identifier(text.get("plan_id"), "plan_id"),
        tier=_identifier(text.get("tier"), "tier", required=False),
        amount_minor=_minor_units(text.get("amount_minor"), "amount_minor"),
        quantity=_positive(text.get("quantity"), "quantity"),
        currency=currency,
        interval=interval,
        interval_count=_positive(text.get("interval_count"), "interval_count"),
        trial_ends_at=None if trial is None else _instant(trial, "trial_ends_at"),
    )
    return record


def parse_fx_rate(row: Row) -> dict[str, Any]:
    day = _required(row, "date")
    try:
        if not _DATE.fullmatch(day):
            raise ValueError(day)
        parsed_day = date.fromisoformat(day)
    except ValueError:
        raise RowError("date", f"expected a date YYYY-MM-DD, got {day!r}") from None
    rate = _required(row, "rate")
    if not _RATE.fullmatch(rate):
        raise RowError("rate", f"expected a positive decimal such as 0.8523, got {rate!r}")
    _guard("rate", parse_rate, rate)
    return {"date": parsed_day, "currency": _currency(row), "rate": rate}


def parse_marketing_spend(row: Row) -> dict[str, Any]:
    month = _required(row, "month")
    try:
        if not _MONTH.fullmatch(month):
            raise ValueError(month)
        date.fromisoformat(f"{month}-01")
    except ValueError:
        raise RowError("month", f"expected a month YYYY-MM, got {month!r}") from None
    return {
        "month": month,
        "source": _identifier(_text(row, "source"), "source"),
        "campaign": _identifier(_text(row, "campaign"), "campaign", required=False) or "",
        "amount_minor": _minor_units(_text(row, "amount_minor"), "amount_minor"),
        "currency": _currency(row),
    }


def parse_support_ticket(row: Row) -> dict[str, Any]:
    # A ticket closed before it was opened is kept: the data quality scores report it.
    text = _strip(row)
    priority = (text.get("priority") or "").lower()
    if priority not in PRIORITIES:
        reason = (
            "required but empty"
            if not priority
            else f"expected low, normal, high or urgent, got {text.get('priority')!r}"
        )
        raise RowError("priority", reason)
    closed = text.get("closed_at")
    return {
        "ticket_id": _identifier(text.get("ticket_id"), "ticket_id"),
        "customer_id": _identifier(text.get("customer_id"), "customer_id"),
        "opened_at": _instant(text.get("opened_at"), "opened_at"),
        "closed_at": None if closed is None else _instant(closed, "closed_at"),
        "priority": priority,
        "category": _identifier(text.get("category"), "category", required=False),
    }


PARSERS: dict[str, Callable[[Row], dict[str, Any]]] = {
    "customers": parse_customer,
    "subscription_events": parse_subscription_event,
    "fx_rates": parse_fx_rate,
    "marketing_spend": parse_marketing_spend,
    "support_tickets": parse_support_ticket,
}

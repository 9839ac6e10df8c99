"""Exchange rates into the reporting currency, as stored in fx_rates."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import date
from fractions import Fraction

from sqlalchemy import Connection, select

from execmetrics.money import parse_rate
from execmetrics.store.tables import fx_rates
from execmetrics.timeutil import date_to_micros


class FxRates:
    """Per currency, the dated rates; the rate in force on a day is the latest on or before it."""

    def __init__(self, rates: dict[str, list[tuple[date, Fraction]]]) -> None:
        # A rate dated d is in force from d 00:00 UTC, so lookups are by instant.
        self._starts = {c: [date_to_micros(d) for d, _ in sorted(rs)] for c, rs in rates.items()}
        self._rates = {c: [r for _, r in sorted(rs)] for c, rs in rates.items()}

    def rate_at(self, currency: str, instant: int) -> Fraction | None:
        """The rate in force on the UTC date of `instant` (microseconds since the epoch)."""
        starts = self._starts.get(currency)
        if not starts:
            return None
        index = bisect_right(starts, instant)
        return self._rates[currency][index - 1] if index else None

    def rate_on(self, currency: str, day: date) -> Fraction | None:
        return self.rate_at(currency, date_to_micros(day))


def load_fx_rates(connection: Connection) -> FxRates:
    rates: dict[str, list[tuple[date, Fraction]]] = defaultdict(list)
    for currency, day, rate in connection.execute(
        select(fx_rates.c.currency, fx_rates.c.date, fx_rates.c.rate)
    ):
        rates[currency].append((day, parse_rate(rate)))
    return FxRates(rates)

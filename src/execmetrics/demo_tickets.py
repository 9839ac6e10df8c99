"""The demo company's support tickets: a few a year for most customers, more in the wedding
season and on bigger plans, and, for about three in five customers who go on to leave, a
burst of more urgent tickets in the weeks before they cancel. Each customer's tickets come
from an RNG of their own, so adding tickets changes nothing else the demo writes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_DAY = 86_400
_MONTH = 30 * _DAY
# Tickets a month, by tier (Starter to Enterprise); a trial counts as its tier.
_MONTHLY_RATE = {"Starter": 0.12, "Professional": 0.22, "Scale": 0.35, "Enterprise": 0.6}
# By calendar month: busiest while weddings happen.
_SEASON = (0, 0.8, 0.8, 0.9, 1.1, 1.3, 1.5, 1.5, 1.4, 1.2, 0.9, 0.8, 0.9)
_TROUBLED_SHARE = 0.6  # of customers who leave: tickets pile up before they go
_TROUBLE_DAYS = 75
_TROUBLE_FACTOR = 4.0
_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_WEIGHTS = (30, 50, 15, 5)
_TROUBLE_PRIORITY_WEIGHTS = (8, 37, 33, 22)
_CATEGORIES = ("how-to", "billing", "bug", "integrations", "account")
_CATEGORY_WEIGHTS = (40, 20, 20, 12, 8)
_TROUBLE_CATEGORY_WEIGHTS = (20, 30, 35, 10, 5)
# Hours to close, median by priority (log-normal, sigma 1).
_CLOSE_HOURS = {"low": 30.0, "normal": 12.0, "high": 5.0, "urgent": 2.0}


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tier: str


def customer_tickets(
    seed: int, customer_id: str, events: Sequence[Sequence[str]], period_end: int
) -> list[list[str]]:
    """The customer's tickets as CSV rows without their ids (the first column, left
    empty): opened while a subscription ran, up to `period_end`."""
    rng = random.Random(f"{seed}:tickets:{customer_id}")
    spans, left_at = active_spans(events, period_end)
    troubled = left_at is not None and rng.random() < _TROUBLED_SHARE
    trouble_from = None if left_at is None or not troubled else left_at - _TROUBLE_DAYS * _DAY
    rows: list[list[str]] = []
    for span in spans:
        rate = _MONTHLY_RATE.get(span.tier, _MONTHLY_RATE["Starter"]) / _MONTH
        peak = rate * max(_SEASON) * _TROUBLE_FACTOR
        moment = float(span.start)
        while True:
            moment += rng.expovariate(peak)
            if moment >= span.end:
                break
            at = int(moment)
            in_trouble = trouble_from is not None and at >= trouble_from
            wanted = rate * _SEASON[_month(at)] * (_TROUBLE_FACTOR if in_trouble else 1.0)
            if rng.random() < wanted / peak:
                rows.append(_ticket(rng, customer_id, at, in_trouble, period_end))
    return rows


def active_spans(
    events: Sequence[Sequence[str]], period_end: int
) -> tuple[list[_Span], int | None]:
    """When each subscription ran, with its tier; and when the customer left for good (its
    last subscription cancelled), or None."""
    starts: dict[str, tuple[int, str]] = {}
    spans: list[_Span] = []
    for row in events:
        subscription, at, kind, tier = row[2], _instant(row[3]), row[4], row[6]
        if kind == "start":
            starts[subscription] = (at, tier)
        elif kind == "cancel" and subscription in starts:
            began, began_tier = starts.pop(subscription)
            spans.append(_Span(began, at, began_tier))
    ended = [span.end for span in spans]
    spans += [_Span(at, period_end, tier) for at, tier in starts.values()]
    left_at = max(ended) if ended and not starts else None
    return sorted(spans, key=lambda span: span.start), left_at


def _ticket(
    rng: random.Random, customer_id: str, at: int, in_trouble: bool, period_end: int
) -> list[str]:
    priority = rng.choices(
        _PRIORITIES, _TROUBLE_PRIORITY_WEIGHTS if in_trouble else _PRIORITY_WEIGHTS
    )[0]
    category = rng.choices(
        _CATEGORIES, _TROUBLE_CATEGORY_WEIGHTS if in_trouble else _CATEGORY_WEIGHTS
    )[0]
    hours = _CLOSE_HOURS[priority] * math.exp(rng.gauss(0.0, 1.0))
    closed_at = at + int(hours * 3600)
    closed = _stamp(closed_at) if closed_at < period_end else ""  # still open at the end
    return ["", customer_id, _stamp(at), closed, priority, category]


def _instant(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def _stamp(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(at: int) -> int:
    return datetime.fromtimestamp(at, UTC).month

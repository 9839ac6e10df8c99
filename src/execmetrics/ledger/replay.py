"""Replaying one customer's subscription events into MRR spans and movements.

Pure functions: the ledger service feeds them events read from the database and stores
what they return. See docs/metrics.md, definitions 1 to 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import groupby
from operator import itemgetter

from execmetrics.money import conversion_factor, divide_half_up

TYPE_ORDER = {"start": 0, "change": 1, "cancel": 2}

MOVEMENT_TYPES = ("new", "expansion", "reactivation", "contraction", "churn")


def monthly_factor(interval: str, interval_count: int) -> Fraction:
    """F in definition 1: how many billing intervals fall in one month."""
    per_month = {
        "month": Fraction(1),
        "year": Fraction(1, 12),
        "week": Fraction(52, 12),
        "day": Fraction(365, 12),
    }[interval]
    return per_month / interval_count


def subscription_mrr(
    amount_minor: int,
    quantity: int,
    interval: str,
    interval_count: int,
    currency: str,
    reporting_currency: str,
    rate: Fraction,
) -> int:
    """Definition 1: monthly recurring revenue in minor units of the reporting currency."""
    numerator, denominator = _mrr_factor(
        interval, interval_count, currency, reporting_currency, rate.numerator, rate.denominator
    )
    return divide_half_up(amount_minor * quantity * numerator, denominator)


@cache
def _mrr_factor(
    interval: str,
    interval_count: int,
    currency: str,
    reporting_currency: str,
    rate_numerator: int,
    rate_denominator: int,
) -> tuple[int, int]:
    # Exact rational factor, cached: a million events share a few thousand (plan, rate)
    # pairs. The rate comes as two integers because hashing a Fraction is slow.
    factor = monthly_factor(interval, interval_count)
    if currency != reporting_currency:
        rate = Fraction(rate_numerator, rate_denominator)
        factor *= conversion_factor(currency, reporting_currency, rate)
    return factor.numerator, factor.denominator


@dataclass(frozen=True, slots=True)
class PricedEvent:
    """A subscription event with its MRR already in the reporting currency (0 for cancel)."""

    event_id: str
    subscription_id: str
    occurred_at: int
    type: str
    plan_id: str | None
    tier: str | None
    mrr: int
    trial_ends_at: int | None
    source: str

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.subscription_id, self.occurred_at, TYPE_ORDER[self.type], self.event_id)


@dataclass(frozen=True, slots=True)
class Span:
    subscription_id: str
    plan_id: str
    tier: str | None
    valid_from: int
    valid_to: int | None
    mrr: int


@dataclass(frozen=True, slots=True)
class Movement:
    occurred_at: int
    type: str
    mrr_before: int
    mrr_after: int
    paying_since: int
    next_at: int | None


class SequenceError(ValueError):
    """An event that its subscription's history does not allow."""

    def __init__(self, event: PricedEvent, reason: str) -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason
        # Every refused event of the customer, one per subscription, this one first.
        self.all: list[SequenceError] = [self]


@dataclass(slots=True)
class _Point:
    at: int
    mrr: int
    plan_id: str | None
    tier: str | None


def _subscription_points(events: list[PricedEvent]) -> list[_Point]:
    """The subscription's MRR from each point on; events sorted by PricedEvent.sort_key."""
    points: list[_Point] = []
    active = False
    started = False
    trial_ends_at: int | None = None
    for event in events:
        if event.type == "start" and active:
            raise SequenceError(
                event, f"start for subscription {event.subscription_id!r}, which is already active"
            )
        if event.type != "start" and not active:
            state = "was cancelled" if started else "was never started"
            raise SequenceError(
                event, f"{event.type} for subscription {event.subscription_id!r}, which {state}"
            )
        # A later event supersedes what an earlier one scheduled from its instant on,
        # including a trial end that has not been reached yet.
        while points and points[-1].at >= event.occurred_at:
            points.pop()
        if event.type == "cancel":
            points.append(_Point(event.occurred_at, 0, None, None))
            active = False
            continue
        active = started = True
        if event.trial_ends_at is not None:
            trial_ends_at = event.trial_ends_at
        paid = _Point(event.occurred_at, event.mrr, event.plan_id, event.tier)
        if trial_ends_at is not None and trial_ends_at > event.occurred_at:
            points.append(_Point(event.occurred_at, 0, event.plan_id, event.tier))
            paid.at = trial_ends_at
        points.append(paid)
    return points


def _spans(subscription_id: str, points: list[_Point]) -> list[Span]:
    spans = []
    for index, point in enumerate(points):
        if point.mrr > 0 and point.plan_id is not None:
            end = points[index + 1].at if index + 1 < len(points) else None
            spans.append(Span(subscription_id, point.plan_id, point.tier, point.at, end, point.mrr))
    return spans


def _movement_type(before: int, after: int, paid_before: bool) -> str:
    if before == 0:
        return "reactivation" if paid_before else "new"
    if after == 0:
        return "churn"
    return "expansion" if after > before else "contraction"


def _movements(changes: list[tuple[int, str, int]]) -> list[Movement]:
    """Customer movements from (instant, subscription, new MRR) changes of all subscriptions."""
    current: dict[str, int] = {}
    total = 0
    paying_since = 0
    paid_before = False
    rows: list[tuple[int, str, int, int, int]] = []
    changes.sort(key=itemgetter(0))
    before = 0
    for index, (instant, subscription_id, mrr) in enumerate(changes):
        total += mrr - current.get(subscription_id, 0)
        current[subscription_id] = mrr
        # Changes at one instant are netted: decide once the instant's last change is in.
        if index + 1 < len(changes) and changes[index + 1][0] == instant:
            continue
        if total != before:
            kind = _movement_type(before, total, paid_before)
            if before == 0:
                paying_since = instant
                paid_before = True
            rows.append((instant, kind, before, total, paying_since))
        before = total
    return [
        Movement(at, kind, before, after, since, rows[i + 1][0] if i + 1 < len(rows) else None)
        for i, (at, kind, before, after, since) in enumerate(rows)
    ]


def replay_customer(events: list[PricedEvent]) -> tuple[list[Movement], list[Span]]:
    """All MRR movements and subscription spans of one customer, from all its events."""
    events = sorted(events, key=PricedEvent.sort_key)
    spans: list[Span] = []
    changes: list[tuple[int, str, int]] = []
    errors: list[SequenceError] = []
    for subscription_id, group in groupby(events, key=lambda event: event.subscription_id):
        try:
            points = _subscription_points(list(group))
        except SequenceError as error:
            errors.append(error)
            continue
        spans.extend(_spans(subscription_id, points))
        changes.extend((point.at, subscription_id, point.mrr) for point in points)
    if errors:
        errors[0].all = errors
        raise errors[0]
    return _movements(changes), spans

"""The demo company's product activity: logins and feature use by each customer's users,
busiest in the wedding season and quieter at weekends, for the last year of the period.

Customers differ in how much they use the product and how many features they use (bigger
plans use more). About seven in ten customers who go on to leave fade first: their activity
falls over the weeks before they cancel. Noise keeps that signal honest: some who stay have
a quiet spell of their own, and some who leave show no warning. Each customer's activity
comes from an RNG of their own, so adding it changes nothing else the demo writes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from execmetrics.demo_tickets import active_spans
from execmetrics.ingest.rows import EVENT_COLUMNS

ACTIVITY_DAYS = 365
_DAY = 86_400
_LOGINS_A_DAY = 0.22  # a typical customer on a Starter plan, all users together
_TIER_USE = {"Starter": 1.0, "Professional": 1.4, "Scale": 1.9, "Enterprise": 2.6}
_TIER_BREADTH = {"Starter": (1, 3), "Professional": (2, 4), "Scale": (3, 5), "Enterprise": (4, 6)}
FEATURES = (
    "gallery_upload", "booking_form", "invoice_sent", "client_message", "contract_signed",
    "calendar_sync",
)  # fmt: skip
_FEATURE_WEIGHTS = np.array([0.3, 0.2, 0.15, 0.2, 0.1, 0.05])
_FEATURES_PER_LOGIN = 0.9
# By calendar month (index 1 to 12): suppliers are busiest while weddings happen.
_SEASON = np.array([0, 0.7, 0.75, 0.9, 1.05, 1.2, 1.35, 1.35, 1.3, 1.15, 0.95, 0.75, 0.65])
_WEEKEND = 0.55
_FADING_SHARE = 0.7  # of customers who leave
_FADE_DAYS = (30, 120)  # the fade starts this many days before they cancel
_FADE_FLOOR = 0.15  # the share of their usual activity left on their last day
_LULL_SHARE = 0.2  # of all customers: one quiet spell in the year
_LULL_DAYS = (25, 75)
_LULL_FACTOR = 0.35
_QUANTITY_INDEX = EVENT_COLUMNS.index("quantity")


def customer_activity(
    seed: int,
    customer_id: str,
    events: Sequence[Sequence[str]],
    period_end: int,
    stamp: Callable[[int], str],
) -> list[list[str]]:
    """The customer's activity as CSV rows without their ids (the first column, left
    empty), while a subscription ran in the last ACTIVITY_DAYS days before `period_end`."""
    rng = np.random.default_rng(zlib.crc32(f"{seed}:activity:{customer_id}".encode()))
    spans, left_at = active_spans(events, period_end)
    if not spans:
        return []
    tier = spans[-1].tier
    use = _LOGINS_A_DAY * _TIER_USE.get(tier, 1.0) * rng.lognormal(0.0, 0.55)
    low, high = _TIER_BREADTH.get(tier, (1, 3))
    weights = _FEATURE_WEIGHTS * rng.uniform(0.3, 1.0, len(FEATURES))
    chosen = rng.choice(len(FEATURES), size=int(rng.integers(low, high)), replace=False)
    features = np.zeros(len(FEATURES))
    features[chosen] = weights[chosen]
    features /= features.sum()
    users = max(1, min(_seats(events), 6))
    window_start = (period_end - ACTIVITY_DAYS * _DAY) // _DAY
    fade = _fade(rng, left_at)
    lull = _lull(rng, window_start)
    rows: list[list[str]] = []
    for span in spans:
        days = np.arange(max(span.start // _DAY, window_start), span.end // _DAY)
        if days.size == 0:
            continue
        rate = use * _seasonal(days) * fade(days) * lull(days)
        logins = rng.poisson(rate)
        login_at = np.repeat(days, logins) * _DAY + rng.integers(7 * 3600, 23 * 3600, logins.sum())
        login_at = login_at[login_at < span.end]
        who = rng.integers(0, users, login_at.size)
        for at, user in zip(login_at.tolist(), who.tolist(), strict=True):
            rows.append(["", customer_id, f"{customer_id}-u{user + 1}", stamp(at), "login", ""])
        uses = rng.poisson(_FEATURES_PER_LOGIN, login_at.size)
        use_at = np.repeat(login_at, uses) + rng.integers(60, 3600, uses.sum())
        use_user = np.repeat(who, uses)
        kinds = rng.choice(len(FEATURES), size=use_at.size, p=features)
        photos = rng.integers(5, 400, use_at.size)
        for at, user, kind, count in zip(
            use_at.tolist(), use_user.tolist(), kinds.tolist(), photos.tolist(), strict=True
        ):
            if at >= span.end:
                continue
            name = FEATURES[kind]
            quantity = str(count) if name == "gallery_upload" else ""
            rows.append(["", customer_id, f"{customer_id}-u{user + 1}", stamp(at), name, quantity])
    return rows


def _seats(events: Sequence[Sequence[str]]) -> int:
    seats = [int(row[_QUANTITY_INDEX]) for row in events if row[_QUANTITY_INDEX]]
    return max(seats, default=1)


def _seasonal(days: np.ndarray) -> np.ndarray:
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 5 and 6 are Saturday and Sunday
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    return _SEASON[months] * np.where(weekday >= 5, _WEEKEND, 1.0)


def _fade(rng: np.random.Generator, left_at: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Activity falling linearly to _FADE_FLOOR over the days before a fading leaver goes."""
    fading = left_at is not None and rng.random() < _FADING_SHARE
    length = int(rng.integers(*_FADE_DAYS))
    if not fading or left_at is None:
        return lambda days: np.ones(days.size)
    last = left_at // _DAY
    start = last - length

    def factor(days: np.ndarray) -> np.ndarray:
        progress = np.clip((days - start) / length, 0.0, 1.0)
        return 1.0 - (1.0 - _FADE_FLOOR) * progress

    return factor


def _lull(rng: np.random.Generator, window_start: int) -> Callable[[np.ndarray], np.ndarray]:
    """A quiet spell that says nothing about leaving (a holiday, a slow month)."""
    has_lull = rng.random() < _LULL_SHARE
    start = window_start + int(rng.integers(0, ACTIVITY_DAYS))
    end = start + int(rng.integers(*_LULL_DAYS))
    if not has_lull:
        return lambda days: np.ones(days.size)
    return lambda days: np.where((days >= start) & (days < end), _LULL_FACTOR, 1.0)

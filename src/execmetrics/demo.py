"""Synthetic demo data: a UK SaaS company selling subscription plans to wedding suppliers.

`write_demo` writes customers.csv, subscription_events.csv, fx_rates.csv,
marketing_spend.csv, support_tickets.csv (demo_tickets.py) and activity_events.csv
(demo_activity.py) in the format the ingester reads. Each customer is simulated from its
own RNG (seeded with the spec's seed and the customer number), so the output depends only
on the spec and customers are written one at a time: memory stays bounded however many
customers are asked for. Nothing is dated after the moment the demo is written: when the
last month is this month, its rows stop at that moment (customers who would sign up later
are left out, tickets that would close later are still open), as a real export's would.
"""

from __future__ import annotations

import calendar
import csv
import math
import random
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

from execmetrics.demo_activity import customer_activity
from execmetrics.demo_tickets import customer_tickets
from execmetrics.ingest.rows import ACTIVITY_COLUMNS, EVENT_COLUMNS, TICKET_COLUMNS
from execmetrics.ingest.rows import CUSTOMER_COLUMNS as INGEST_CUSTOMER_COLUMNS

# The demo writes the ingest format: the ingester's columns, and one custom attribute.
CUSTOMER_COLUMNS = (*INGEST_CUSTOMER_COLUMNS, "business_type")
# The timestamp columns a demo still under way is cut at.
CREATED_AT = CUSTOMER_COLUMNS.index("created_at")
EVENT_AT = EVENT_COLUMNS.index("occurred_at")
OPENED_AT = TICKET_COLUMNS.index("opened_at")
CLOSED_AT = TICKET_COLUMNS.index("closed_at")
ACTIVITY_AT = ACTIVITY_COLUMNS.index("occurred_at")
FX_COLUMNS = ("date", "currency", "rate")
SPEND_COLUMNS = ("month", "source", "campaign", "amount_minor", "currency")

REPORTING_CURRENCY = "GBP"
TRIAL_DAYS = 14
_DAY = 86_400
_HOUR = 3_600
_PROGRESS_EVERY = 1000

TIERS = ("Starter", "Professional", "Scale", "Enterprise")
_TIER_SLUGS = ("starter", "professional", "scale", "enterprise")
# Monthly list price per seat in minor units, before any yearly price rise.
BASE_PRICES: dict[str, tuple[int, int, int, int]] = {
    "GBP": (1900, 4900, 9900, 19900),
    "EUR": (2200, 5700, 11500, 22900),
    "USD": (2500, 5900, 11900, 24900),
}
ADDON_PRICES = {"GBP": 900, "EUR": 1000, "USD": 1100}
ANNUAL_MONTHS_CHARGED = 10  # an annual plan costs 10 monthly prices: two months free
_PRICE_RISE_PERCENT = 6  # list prices rise every 1 April, rounded to whole pounds/euros/dollars
_PRICE_RISE_MONTH = 4

_COUNTRIES = (
    ("GB", 862),
    ("IE", 30),
    ("FR", 15),
    ("DE", 10),
    ("NL", 10),
    ("ES", 8),
    ("IT", 7),
    ("US", 35),
    ("CA", 10),
    ("AU", 13),
)
_CURRENCY_OF = dict.fromkeys(("IE", "FR", "DE", "NL", "ES", "IT"), "EUR") | dict.fromkeys(
    ("US", "CA", "AU"), "USD"
)

# Relative sign-up weight per calendar month: engagements over Christmas fill January to
# March, summer is wedding season (suppliers are busy), September/October has the fairs.
_SIGNUP_SEASON = (0, 160, 150, 130, 100, 85, 70, 62, 68, 95, 100, 80, 85)
_MONTHLY_GROWTH = 1.02
# Churn multiplier per calendar month: suppliers review tools after the wedding season.
_CHURN_SEASON = (0, 0.75, 0.7, 0.7, 0.75, 0.8, 0.8, 0.85, 0.95, 1.2, 2.0, 1.9, 1.1)
_CHURN_MONTHLY = (0.034, 0.022, 0.016, 0.009)
_CHURN_AT_RENEWAL = (0.3, 0.22, 0.16, 0.1)
_UPGRADE = (0.03, 0.014, 0.007, 0.0)
_DOWNGRADE = (0.0, 0.01, 0.012, 0.008)
_SEAT_CHANGE = (0.0, 0.35, 0.45, 0.55)
_SEAT_RANGE = ((1, 1), (1, 4), (2, 8), (3, 30))
# Chance that an added or removed seat is an addition, per calendar month.
_SEAT_GROWTH = (0, 0.5, 0.7, 0.7, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.3, 0.4)
_TEAM_SHARE = 0.4  # customers who give their freelancers seats on Professional
# Seasonal customers move up a tier for the wedding season and back down after it.
_SEASONAL_SHARE = 0.45
_FLEX = 0.5
_FLEX_UP_MONTHS = (2, 3, 4)
_FLEX_DOWN_MONTHS = (10, 11, 12)
_TO_ANNUAL = 0.015
_TO_MONTHLY_AT_RENEWAL = 0.06
_PRICE_MIGRATION = 0.6  # share of monthly subscribers moved to the new list price per month
_TRIAL_SHARE = 0.35
_TRIAL_CANCEL = 0.3
_RETURN_AFTER_CHURN = 0.17
_RETURN_AFTER_TRIAL = 0.08
_ADDON_SHARE = 0.06
_ADDON_CHURN = 0.025
_NO_SUBSCRIPTION = 0.03

_BUSINESS_TYPES = (
    ("photographer", 24),
    ("venue", 12),
    ("florist", 9),
    ("planner", 9),
    ("hair_makeup", 8),
    ("caterer", 7),
    ("videographer", 7),
    ("band", 6),
    ("cake_maker", 6),
    ("stationer", 5),
    ("bridal_boutique", 4),
    ("celebrant", 3),
)
# Share of each business type that is a multi-site group of 50-400 employees.
_GROUP_SHARE = {"venue": 0.12, "caterer": 0.08, "planner": 0.04, "band": 0.02}
_HOTEL_CHAIN_SHARE = 0.0015

_SUFFIXES = {
    "photographer": ("Photography", "Photo Co.", "Studios", "Photographic", "Images"),
    "venue": ("Manor", "Hall", "Barn", "Estate", "House", "Castle", "Court", "Priory"),
    "florist": ("Florals", "Flowers", "Floristry", "Flower Studio", "Blooms"),
    "planner": ("Weddings", "Events", "Planning Co.", "Wedding Planning", "Occasions"),
    "hair_makeup": ("Bridal Beauty", "Hair & Makeup", "Beauty", "Bridal Hair"),
    "caterer": ("Catering", "Kitchen", "Feasts", "Dining", "Catering Co."),
    "videographer": ("Films", "Wedding Films", "Cinema", "Motion", "Film Co."),
    "band": ("Band", "Collective", "Quartet", "Live", "Music", "Strings"),
    "cake_maker": ("Cakes", "Bakes", "Cake Studio", "Cake Co.", "Patisserie"),
    "stationer": ("Stationery", "Paper Co.", "Press", "Design", "Invitations"),
    "bridal_boutique": ("Bridal", "Bridal Boutique", "Bridalwear", "Bride"),
    "celebrant": ("Ceremonies", "Celebrant", "Celebrations"),
}
# fmt: off
_MOTIFS = (
    "Willow", "Lace", "Ivy", "Rose", "Sage", "Fern", "Honey", "Linen", "Velvet", "Meadow", "Wren",
    "Bloom", "Juniper", "Pearl", "Hazel", "Birch", "Clover", "Poppy", "Saffron", "Olive",
    "Blossom", "Silk", "Ember", "Heather", "Bramble", "Thistle", "Moss", "Peony", "Magnolia",
    "Lavender", "Primrose", "Swallow", "Oak", "Acorn", "Foxglove", "Elder", "Rowan", "Linnet",
    "Ribbon", "Confetti", "Lantern", "Bluebell", "Daisy", "Cedar",
)
_FIRST_NAMES = (
    "Emily", "Sophie", "Lucy", "Hannah", "Charlotte", "Olivia", "Grace", "Amelia", "Chloe", "Ella",
    "Holly", "Jess", "Katie", "Megan", "Rosie", "Tom", "James", "Oliver", "Harry", "Jack",
    "George", "Sam", "Ben", "Dan", "Matt", "Alex", "Chris", "Rhys", "Callum", "Niamh", "Aoife",
    "Ciara", "Isla", "Freya", "Priya", "Aisha", "Zara", "Luca", "Marco", "Anna",
)
_SURNAMES = (
    "Carter", "Hughes", "Walker", "Bennett", "Foster", "Hayes", "Turner", "Wright", "Ellis",
    "Marsh", "Hartley", "Fletcher", "Lawson", "Pearce", "Quinn", "Reid", "Shaw", "Doyle", "Kelly",
    "Murphy", "Evans", "Price", "Morgan", "Patel", "Khan", "Ahmed", "Campbell", "Fraser",
    "Stewart", "Ross", "Holland", "Barnes", "Chapman", "Sinclair", "Ashworth",
)
_PLACES = (
    "Cotswold", "Hartwell", "Ashdown", "Kingsbury", "Thornfield", "Lakeside", "Highclere",
    "Wyndham", "Brampton", "Eastwood", "Hollybrook", "Oakhurst", "Penrose", "Fairfield",
    "Ravensworth", "Yorkshire", "Cornish", "Peak District", "Highland", "Norfolk", "Devon",
    "Sussex", "Kent", "Surrey", "Cheshire", "Wessex", "Northumberland", "Somerset", "Dorset",
)
# fmt: on
_STEMS = _SURNAMES + _PLACES
_VENUE_BUILDINGS = (
    "Old Barn",
    "Tithe Barn",
    "Great Hall",
    "Orangery",
    "Boathouse",
    "Old Rectory",
    "Coach House",
)
_GROUP_NAMES = ("Venues Group", "Country Venues", "Events Group", "Hospitality", "Collection")
_HOTEL_NAMES = ("Hotels & Resorts", "Hotel Collection", "Hotels", "Country House Hotels")

_SOURCE_WEIGHTS = {"organic": 35, "google_ads": 22, "instagram": 18, "referral": 12, "partner": 5}
_FAIR_WEIGHT = 25  # weight of wedding_fair in a month with fairs
_FAIR_FOLLOW_WEIGHT = 10  # in the month after, as visitors sign up later
# Wedding fairs by calendar month; a customer from a fair names the fair's campaign.
_FAIRS: dict[int, tuple[str, ...]] = {
    1: ("nec", "excel"),
    2: ("manchester",),
    3: ("harrogate",),
    9: ("nec",),
    10: ("excel", "glasgow"),
}
_GADS_CAMPAIGNS = (("brand", 25), ("generic", 55), ("competitor", 20))
# Acquisition cost per expected customer, in pence.
_COST_PER_SIGNUP = {
    "google_ads": 42000,
    "instagram": 31000,
    "wedding_fair": 65000,
    "partner": 26000,
}
# Spend multiplier per calendar month, percent: the budget follows engagement season.
_SPEND_SEASON = (0, 150, 135, 120, 100, 90, 80, 75, 80, 100, 105, 100, 140)
# Sign-ups by hour of day (UTC): evenings and lunchtimes, when suppliers do admin.
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 11, 10, 9, 9, 9, 9, 10, 12, 13, 12, 8, 3)
_FX_CENTRES = {"EUR": 0.85, "USD": 0.79}


@dataclass(frozen=True)
class DemoSpec:
    customers: int = 5000
    months: int = 36
    seed: int = 7
    end_month: str | None = None  # "YYYY-MM", the last month generated; None: this UTC month


@dataclass(frozen=True)
class DemoFiles:
    directory: Path
    customers: int
    subscription_events: int
    fx_rates: int
    marketing_spend: int
    support_tickets: int
    activity_events: int


def write_demo(
    spec: DemoSpec,
    directory: Path,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> DemoFiles:
    """Writes the six CSV files into directory (created if needed), with nothing dated after
    `now` (default: the current time).

    progress, when given, is called with the number of customers simulated since its last
    call, every 1000 customers and once at the end for the rest.
    """
    world = _World(spec)
    moment = int((now or datetime.now(UTC)).timestamp())
    if moment <= world.start:
        raise ValueError(
            f"end_month: months={spec.months} up to {spec.end_month} start after the current "
            "time, so nothing would have happened yet"
        )
    # Only a demo whose last month is still under way is cut; an earlier one is whole.
    cutoff = world.stamp(moment) if moment < world.end else None
    directory.mkdir(parents=True, exist_ok=True)
    fx_rows = [row for row in world.fx_rows() if cutoff is None or row[0] <= cutoff[:10]]
    spend_rows = world.spend_rows()
    _write_csv(directory / "fx_rates.csv", FX_COLUMNS, fx_rows)
    _write_csv(directory / "marketing_spend.csv", SPEND_COLUMNS, spend_rows)
    customers, events, tickets, activity = _write_customers(world, directory, cutoff, progress)
    return DemoFiles(
        directory=directory,
        customers=customers,
        subscription_events=events,
        fx_rates=len(fx_rows),
        marketing_spend=len(spend_rows),
        support_tickets=tickets,
        activity_events=activity,
    )


def _write_csv(path: Path, columns: Sequence[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def _write_customers(
    world: _World, directory: Path, cutoff: str | None, progress: Callable[[int], None] | None
) -> tuple[int, int, int, int]:
    """Customers, their events, tickets and activity, none dated after `cutoff` (a timestamp
    as the files write them; None: no limit); the numbers of customers, events, tickets and
    activity events written."""
    written = events = tickets = activity = 0
    pending = 0
    event_width = max(7, len(str(world.customers * 10)))
    with (
        (directory / "customers.csv").open("w", encoding="utf-8", newline="") as customers,
        (directory / "subscription_events.csv").open("w", encoding="utf-8", newline="") as subs,
        (directory / "support_tickets.csv").open("w", encoding="utf-8", newline="") as support,
        (directory / "activity_events.csv").open("w", encoding="utf-8", newline="") as uses,
    ):
        customer_writer = csv.writer(customers)
        event_writer = csv.writer(subs)
        ticket_writer = csv.writer(support)
        customer_writer.writerow(CUSTOMER_COLUMNS)
        event_writer.writerow(EVENT_COLUMNS)
        ticket_writer.writerow(TICKET_COLUMNS)
        activity_writer = csv.writer(uses)
        activity_writer.writerow(ACTIVITY_COLUMNS)
        activity_width = event_width + 2
        for number, month, slot, in_month in _signup_slots(world.signups):
            customer, rows = world.customer(number, month, slot, in_month)
            pending += 1
            if progress is not None and pending == _PROGRESS_EVERY:
                progress(pending)
                pending = 0
            # Tickets and activity follow the customer's whole simulated history, then all
            # three are cut at the same moment.
            opened = customer_tickets(world.seed, customer[0], rows, world.end)
            used = customer_activity(world.seed, customer[0], rows, world.end, world.stamp)
            if cutoff is not None:
                if customer[CREATED_AT] > cutoff:
                    continue
                rows, opened, used = _until(cutoff, rows, opened, used)
            written += 1
            customer_writer.writerow(customer)
            for row in rows:
                events += 1
                row[0] = f"evt_{events:0{event_width}d}"
            event_writer.writerows(rows)
            for ticket in opened:
                tickets += 1
                ticket[0] = f"tkt_{tickets:0{event_width}d}"
            ticket_writer.writerows(opened)
            for use in used:
                activity += 1
                use[0] = f"act_{activity:0{activity_width}d}"
            activity_writer.writerows(used)
    if progress is not None and pending:
        progress(pending)
    return written, events, tickets, activity


def _until(
    cutoff: str, events: list[list[str]], tickets: list[list[str]], uses: list[list[str]]
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """One customer's rows as they stand at `cutoff`: what happened by then, with a ticket
    closed later still open."""
    for ticket in tickets:
        if ticket[CLOSED_AT] > cutoff:
            ticket[CLOSED_AT] = ""
    return (
        [row for row in events if row[EVENT_AT] <= cutoff],
        [ticket for ticket in tickets if ticket[OPENED_AT] <= cutoff],
        [use for use in uses if use[ACTIVITY_AT] <= cutoff],
    )


def _first_month(spec: DemoSpec) -> tuple[int, int]:
    if isinstance(spec.customers, bool) or not isinstance(spec.customers, int):
        raise ValueError(f"customers must be a whole number, got {spec.customers!r}")
    if spec.customers < 1:
        raise ValueError(f"customers must be at least 1, got {spec.customers}")
    if isinstance(spec.months, bool) or not isinstance(spec.months, int):
        raise ValueError(f"months must be a whole number, got {spec.months!r}")
    if spec.months < 1:
        raise ValueError(f"months must be at least 1, got {spec.months}")
    if spec.end_month is None:
        now = datetime.now(UTC)
        end_year, end_month = now.year, now.month
    else:
        match = re.fullmatch(r"([0-9]{4})-(0[1-9]|1[0-2])", str(spec.end_month))
        if match is None:
            raise ValueError(f"end_month must be a month YYYY-MM, got {spec.end_month!r}")
        end_year, end_month = int(match[1]), int(match[2])
    first_year, first_month = divmod(end_year * 12 + end_month - 1 - (spec.months - 1), 12)
    if first_year < 1970:
        raise ValueError(
            f"months={spec.months} before end_month {end_year}-{end_month:02d} starts before 1970"
        )
    return first_year, first_month + 1


class _Sub:
    """The current state of one subscription."""

    __slots__ = (
        "active",
        "addon",
        "epoch",
        "flexed",
        "interval",
        "quantity",
        "renew_mod",
        "seasonal",
        "start_month",
        "sub_id",
        "team",
        "tier",
    )

    def __init__(
        self, sub_id: str, tier: int, interval: str, quantity: int, month: int, epoch: int
    ) -> None:
        self.sub_id = sub_id
        self.addon = False
        self.tier = tier
        self.interval = interval
        self.quantity = quantity
        self.start_month = month
        self.renew_mod = month % 12
        self.epoch = epoch
        self.active = True
        self.seasonal = False
        self.flexed = False
        self.team = False


class _World:
    """Everything shared by all customers of one spec: the calendar, prices, channels."""

    def __init__(self, spec: DemoSpec) -> None:
        year, month = _first_month(spec)
        self.seed = spec.seed
        self.customers = spec.customers
        self.n_months = spec.months
        self.id_width = max(6, len(str(spec.customers)))
        self.months: list[tuple[int, int]] = []
        self.month_starts: list[int] = []
        for index in range(spec.months + 1):
            y, m = divmod(year * 12 + month - 1 + index, 12)
            self.months.append((y, m + 1))
            self.month_starts.append(calendar.timegm((y, m + 1, 1, 0, 0, 0, 0, 0, 0)))
        self.months.pop()
        self.start = self.month_starts[0]
        self.end = self.month_starts[-1]
        first_day = date(year, month, 1)
        # Trial end dates may fall after the period, so the day names run a little past it.
        n_days = (self.end - self.start) // _DAY + TRIAL_DAYS + 2
        self.day_names = [(first_day + timedelta(days=d)).isoformat() for d in range(n_days)]
        self.epochs = list(
            accumulate(
                int(m == _PRICE_RISE_MONTH and i > 0) for i, (_, m) in enumerate(self.months)
            )
        )
        self.prices = {
            currency: tuple(_price_ladder(p, self.epochs[-1]) for p in base)
            for currency, base in BASE_PRICES.items()
        }
        self.signups = self._signup_counts()
        self.source_weights = [self._source_weights(i) for i in range(self.n_months)]
        self.country_cum = list(accumulate(w for _, w in _COUNTRIES))
        self.type_cum = list(accumulate(w for _, w in _BUSINESS_TYPES))
        self.hour_cum = list(accumulate(_HOUR_WEIGHTS))
        self.gads_cum = list(accumulate(w for _, w in _GADS_CAMPAIGNS))

    # -- calendar -------------------------------------------------------------------------

    def stamp(self, ts: int) -> str:
        days, seconds = divmod(ts - self.start, _DAY)
        hours, seconds = divmod(seconds, _HOUR)
        minutes, seconds = divmod(seconds, 60)
        return f"{self.day_names[days]}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"

    def month_of(self, ts: int) -> int:
        return bisect_right(self.month_starts, ts) - 1

    def _signup_counts(self) -> list[int]:
        weights = [_SIGNUP_SEASON[m] * _MONTHLY_GROWTH**i for i, (_, m) in enumerate(self.months)]
        total = sum(weights)
        shares = [self.customers * w / total for w in weights]
        counts = [int(s) for s in shares]
        # Largest remainder, so the counts add up exactly and deterministically.
        order = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
        for i in order[: self.customers - sum(counts)]:
            counts[i] += 1
        return counts

    # -- acquisition ----------------------------------------------------------------------

    def _fairs(self, index: int) -> list[str]:
        if not 0 <= index < self.n_months:
            return []
        year, month = self.months[index]
        return [f"fair_{code}_{year}_{month:02d}" for code in _FAIRS.get(month, ())]

    def _source_weights(self, index: int) -> list[tuple[str, int]]:
        weights = [(s, w) for s, w in _SOURCE_WEIGHTS.items()]
        if self._fairs(index):
            weights.append(("wedding_fair", _FAIR_WEIGHT))
        elif self._fairs(index - 1):
            weights.append(("wedding_fair", _FAIR_FOLLOW_WEIGHT))
        return weights

    def _instagram_campaign(self, index: int) -> str:
        year, month = self.months[index]
        if month in (12, 1, 2):
            return f"ig_winter_{year + 1 if month == 12 else year}"
        season = {3: "spring", 6: "summer", 9: "autumn"}[month - (month % 3)]
        return f"ig_{season}_{year}"

    def _acquisition(self, rng: random.Random, index: int) -> tuple[str, str]:
        weights = self.source_weights[index]
        pick = rng.random() * sum(w for _, w in weights)
        source = weights[-1][0]
        for name, weight in weights:
            if pick < weight:
                source = name
                break
            pick -= weight
        year = self.months[index][0]
        if source == "google_ads":
            kind = _GADS_CAMPAIGNS[_pick(rng, self.gads_cum)][0]
            return source, f"gads_{kind}_{year}"
        if source == "instagram":
            return source, self._instagram_campaign(index)
        if source == "wedding_fair":
            fairs = self._fairs(index) or self._fairs(index - 1)
            return source, rng.choice(fairs)
        return source, ""

    # -- money ----------------------------------------------------------------------------

    def amount(self, currency: str, sub: _Sub) -> int:
        if sub.addon:
            return ADDON_PRICES[currency]
        monthly = self.prices[currency][sub.tier][sub.epoch]
        return monthly * ANNUAL_MONTHS_CHARGED if sub.interval == "year" else monthly

    def plan_row(
        self, customer_id: str, currency: str, sub: _Sub, kind: str, trial_end: str = ""
    ) -> list[str]:
        if sub.addon:
            plan, tier = f"extra-brand-monthly-{currency.lower()}", TIERS[0]
        else:
            period = "monthly" if sub.interval == "month" else "annual"
            plan, tier = f"{_TIER_SLUGS[sub.tier]}-{period}-{currency.lower()}", TIERS[sub.tier]
        return [
            "",
            customer_id,
            sub.sub_id,
            "",
            kind,
            plan,
            tier,
            str(self.amount(currency, sub)),
            str(sub.quantity),
            currency,
            sub.interval,
            "1",
            trial_end,
        ]

    # -- one customer ---------------------------------------------------------------------

    def customer(
        self, number: int, month: int, slot: int, in_month: int
    ) -> tuple[list[str], list[list[str]]]:
        rng = random.Random(f"{self.seed}:{number}")
        customer_id = f"cus_{number:0{self.id_width}d}"
        month_start = self.month_starts[month]
        days = (self.month_starts[month + 1] - month_start) // _DAY
        day = (slot * days + rng.randrange(days)) // in_month
        hour = _pick(rng, self.hour_cum)
        created = month_start + day * _DAY + hour * _HOUR + rng.randrange(_HOUR)

        business = _BUSINESS_TYPES[_pick(rng, self.type_cum)][0]
        country = _COUNTRIES[_pick(rng, self.country_cum)][0]
        currency = _CURRENCY_OF.get(country, REPORTING_CURRENCY)
        if rng.random() < _HOTEL_CHAIN_SHARE:
            business, size = "venue", "chain"
            employees = rng.randint(1000, 6000)
        elif rng.random() < _GROUP_SHARE.get(business, 0.0):
            size = "group"
            employees = rng.randint(50, 400)
        else:
            size = "small"
            typical = 6.0 if business in ("venue", "caterer") else 2.5
            employees = min(20, 1 + int(rng.expovariate(1 / typical)))
        name = _business_name(rng, business, size)
        source, campaign = self._acquisition(rng, month)
        row = [
            customer_id,
            name,
            self.stamp(created),
            country,
            "",
            str(employees),
            source,
            campaign,
            business,
        ]
        return row, self._subscriptions(rng, number, customer_id, currency, created, size)

    def _subscriptions(
        self,
        rng: random.Random,
        number: int,
        customer_id: str,
        currency: str,
        created: int,
        size: str,
    ) -> list[list[str]]:
        events: list[list[str]] = []
        if rng.random() < _NO_SUBSCRIPTION:
            return events
        if rng.random() < 0.7:
            started = created + rng.randint(20, 30 * 60)
        else:
            started = created + rng.randint(_HOUR, 10 * _DAY)
        if started >= self.end:
            return events
        month = self.month_of(started)
        tier = _initial_tier(rng, size)
        interval = "year" if rng.random() < (0.2, 0.28, 0.35, 0.5)[tier] else "month"
        sub_prefix = f"sub_{number:0{self.id_width}d}_"
        count = 1
        main = _Sub(
            f"{sub_prefix}{count}",
            tier,
            interval,
            _initial_quantity(rng, tier, size),
            month,
            self.epochs[month],
        )
        main.seasonal = rng.random() < _SEASONAL_SHARE
        main.team = rng.random() < _TEAM_SHARE
        trial = rng.random() < _TRIAL_SHARE
        trial_end = started + TRIAL_DAYS * _DAY
        start = self.plan_row(
            customer_id, currency, main, "start", self.stamp(trial_end) if trial else ""
        )
        start[3] = self.stamp(started)
        events.append(start)
        last = started
        return_month = -1
        return_same = False
        if trial:
            if rng.random() < _TRIAL_CANCEL:
                cancelled = started + rng.randint(_HOUR, TRIAL_DAYS * _DAY - 60)
                if cancelled >= self.end:
                    return events
                cancel = self._cancel(customer_id, main)
                cancel[3] = self.stamp(cancelled)
                events.append(cancel)
                main.active = False
                last = cancelled
                if rng.random() < _RETURN_AFTER_TRIAL:
                    return_month = self.month_of(cancelled) + rng.randint(1, 9)
                    return_same = rng.random() < 0.5
            else:
                last = trial_end
        addon: _Sub | None = None
        addon_month = month + rng.randint(1, 12) if rng.random() < _ADDON_SHARE else -1

        for index in range(self.month_of(last), self.n_months):
            low = max(self.month_starts[index], last + 1)
            high = self.month_starts[index + 1]
            if low >= high:
                continue
            epoch = self.epochs[index]
            actions: list[list[str]] = []
            if (
                main.active
                and index > main.start_month
                and self._evolve(rng, main, index, customer_id, currency, actions)
            ):
                if addon is not None and addon.active:
                    addon.active = False
                    actions.append(self._cancel(customer_id, addon))
                main.active = False
                actions.append(self._cancel(customer_id, main))
                if rng.random() < _RETURN_AFTER_CHURN:
                    return_month = index + rng.randint(2, 12)
                    return_same = rng.random() < 0.5
            if (
                addon is not None
                and addon.active
                and index > addon.start_month
                and rng.random() < _ADDON_CHURN
            ):
                addon.active = False
                actions.insert(0, self._cancel(customer_id, addon))
            if not main.active and index == return_month:
                if not return_same:
                    count += 1
                    main.sub_id = f"{sub_prefix}{count}"
                main.tier = max(0, min(3, main.tier + rng.choice((-1, 0, 0, 0, 1))))
                main.interval = "year" if rng.random() < 0.15 else "month"
                main.quantity = _initial_quantity(rng, main.tier, size)
                main.start_month = index
                main.renew_mod = index % 12
                main.epoch = epoch
                main.flexed = False
                main.active = True
                actions.append(self.plan_row(customer_id, currency, main, "start"))
            if index == addon_month and main.active and addon is None:
                count += 1
                addon = _Sub(f"{sub_prefix}{count}", 0, "month", 1, index, epoch)
                addon.addon = True
                actions.append(self.plan_row(customer_id, currency, addon, "start"))
            if actions:
                times = sorted(rng.sample(range(low, high), len(actions)))
                for action, moment in zip(actions, times, strict=True):
                    action[3] = self.stamp(moment)
                events.extend(actions)
                last = times[-1]
        return events

    @staticmethod
    def _cancel(customer_id: str, sub: _Sub) -> list[str]:
        return ["", customer_id, sub.sub_id, "", "cancel", "", "", "", "", "", "", "", ""]

    def _evolve(
        self,
        rng: random.Random,
        sub: _Sub,
        index: int,
        customer_id: str,
        currency: str,
        actions: list[list[str]],
    ) -> bool:
        """Plays one month of an active subscription: appends its change events to actions.

        Returns True when the subscription is cancelled this month (nothing else is appended).
        """
        calendar_month = self.months[index][1]
        epoch = self.epochs[index]
        renewal = sub.interval == "year" and index % 12 == sub.renew_mod
        if sub.interval == "month":
            churn = _CHURN_MONTHLY[sub.tier] * _CHURN_SEASON[calendar_month]
            if index - sub.start_month <= 3:
                churn *= 1.4
        elif renewal:
            churn = _CHURN_AT_RENEWAL[sub.tier] * (0.5 + 0.5 * _CHURN_SEASON[calendar_month])
        else:
            churn = 0.0
        if rng.random() < churn:
            return True

        tier = sub.tier
        draw = rng.random()
        if sub.seasonal and sub.interval == "month" and calendar_month in _FLEX_UP_MONTHS:
            if not sub.flexed and tier < 3 and draw < _FLEX:
                sub.flexed = True
                tier += 1
        elif sub.seasonal and sub.interval == "month" and calendar_month in _FLEX_DOWN_MONTHS:
            if sub.flexed and tier > 0 and draw < _FLEX:
                sub.flexed = False
                tier -= 1
        elif draw < _UPGRADE[tier]:
            tier += 1
        elif draw < _UPGRADE[tier] + _DOWNGRADE[tier]:
            tier -= 1
        if tier != sub.tier:
            low, high = self._seat_range(sub, tier)
            step = rng.randint(0, 2) if tier > sub.tier else -rng.randint(0, 3)
            sub.quantity = max(low, min(high, sub.quantity + step))
            sub.tier = tier
            sub.epoch = epoch
            actions.append(self.plan_row(customer_id, currency, sub, "change"))

        low, high = self._seat_range(sub, sub.tier)
        if high > low and rng.random() < _SEAT_CHANGE[sub.tier]:
            # Seats follow bookings: staff are added for the season and shed after it.
            grow = _SEAT_GROWTH[calendar_month]
            step = rng.randint(1, 2 if sub.tier < 3 else 5)
            quantity = max(low, min(high, sub.quantity + (step if rng.random() < grow else -step)))
            if quantity != sub.quantity:
                sub.quantity = quantity
                sub.epoch = epoch
                actions.append(self.plan_row(customer_id, currency, sub, "change"))

        draw = rng.random()
        if (sub.interval == "month" and draw < _TO_ANNUAL) or (
            renewal and draw < _TO_MONTHLY_AT_RENEWAL
        ):
            sub.interval = "year" if sub.interval == "month" else "month"
            sub.renew_mod = index % 12
            sub.epoch = epoch
            actions.append(self.plan_row(customer_id, currency, sub, "change"))

        if sub.epoch < epoch and (
            renewal or (sub.interval == "month" and rng.random() < _PRICE_MIGRATION)
        ):
            sub.epoch = epoch
            actions.append(self.plan_row(customer_id, currency, sub, "change"))
        return False

    @staticmethod
    def _seat_range(sub: _Sub, tier: int) -> tuple[int, int]:
        if tier == 1 and not sub.team:
            return 1, 1
        return _SEAT_RANGE[tier]

    # -- small tables ---------------------------------------------------------------------

    def fx_rows(self) -> list[list[str]]:
        walks: dict[str, list[str]] = {}
        days = (self.end - self.start) // _DAY
        for currency, centre in _FX_CENTRES.items():
            rng = random.Random(f"{self.seed}:fx:{currency}")
            log_rate = math.log(centre) + rng.gauss(0.0, 0.01)
            values: list[str] = []
            for _ in range(days):
                # Mean reverting, so the rate wanders but stays near its centre.
                log_rate += 0.02 * (math.log(centre) - log_rate) + rng.gauss(0.0, 0.003)
                values.append(f"{Decimal(math.exp(log_rate)).quantize(Decimal('0.000001'))}")
            walks[currency] = values
        return [
            [self.day_names[d], currency, walks[currency][d]]
            for d in range(days)
            for currency in _FX_CENTRES
        ]

    def spend_rows(self) -> list[list[str]]:
        rows: list[list[str]] = []
        for index, (year, month) in enumerate(self.months):
            rng = random.Random(f"{self.seed}:spend:{year}-{month:02d}")
            label = f"{year}-{month:02d}"
            google = self._spend(rng, index, "google_ads")
            for name, share in _GADS_CAMPAIGNS:
                amount = google * share // 100
                rows.append([label, "google_ads", f"gads_{name}_{year}", str(amount)])
            instagram = self._spend(rng, index, "instagram")
            rows.append([label, "instagram", self._instagram_campaign(index), str(instagram)])
            fairs = self._fairs(index)
            if fairs:
                # Visitors sign up in the fair's month and the next, so a fair pays for both.
                fair_total = self._spend(rng, index, "wedding_fair")
                fair_total = fair_total * (_FAIR_WEIGHT + _FAIR_FOLLOW_WEIGHT) // _FAIR_WEIGHT
                for fair in fairs:
                    rows.append([label, "wedding_fair", fair, str(fair_total // len(fairs))])
            rows.append([label, "partner", "", str(self._spend(rng, index, "partner"))])
        for row in rows:
            row.append(REPORTING_CURRENCY)
        return rows

    def _spend(self, rng: random.Random, index: int, source: str) -> int:
        weights = self.source_weights[index]
        weight = sum(w for s, w in weights if s == source)
        # Expected customers from the source, in thousandths so that small runs keep a spend.
        expected = self.signups[index] * 1000 * weight // sum(w for _, w in weights)
        noise = rng.randint(85, 115)
        season = _SPEND_SEASON[self.months[index][1]]
        return expected * _COST_PER_SIGNUP[source] * season * noise // 10**7


def _signup_slots(counts: list[int]) -> Iterator[tuple[int, int, int, int]]:
    """(customer number, month index, slot in the month, customers in the month), in order."""
    number = 0
    for month, count in enumerate(counts):
        for slot in range(count):
            number += 1
            yield number, month, slot, count


def _pick(rng: random.Random, cumulative: list[int]) -> int:
    return bisect_right(cumulative, rng.random() * cumulative[-1])


def _price_ladder(base: int, rises: int) -> tuple[int, ...]:
    prices = [base]
    for _ in range(rises):
        prices.append((prices[-1] * (100 + _PRICE_RISE_PERCENT) + 5000) // 10000 * 100)
    return tuple(prices)


def _initial_tier(rng: random.Random, size: str) -> int:
    if size == "chain":
        return 3
    draw = rng.random()
    if size == "group":
        return 1 if draw < 0.1 else 2 if draw < 0.65 else 3
    return 0 if draw < 0.52 else 1 if draw < 0.86 else 2 if draw < 0.97 else 3


def _initial_quantity(rng: random.Random, tier: int, size: str) -> int:
    if tier == 3:
        if size == "chain":
            return rng.randint(10, 25)
        return min(12, 3 + int(rng.expovariate(1 / 3)))
    if tier == 2:
        return rng.randint(2, 5)
    if tier == 1 and rng.random() < 0.08:
        return 2
    return 1


def _business_name(rng: random.Random, business: str, size: str) -> str:
    if size == "chain":
        return f"{rng.choice(_STEMS)} {rng.choice(_HOTEL_NAMES)}"
    if size == "group":
        return f"{rng.choice(_STEMS)} {rng.choice(_GROUP_NAMES)}"
    suffix = rng.choice(_SUFFIXES[business])
    draw = rng.random()
    if business == "venue":
        if draw < 0.6:
            return f"{rng.choice(_STEMS)} {suffix}"
        if draw < 0.85:
            return f"The {rng.choice(_VENUE_BUILDINGS)} at {rng.choice(_PLACES)}"
        return f"{rng.choice(_MOTIFS)} {suffix}"
    if draw < 0.35 and "&" not in suffix:
        first, second = rng.sample(_MOTIFS, 2)
        return f"{first} & {second} {suffix}"
    if draw < 0.6:
        return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)} {suffix}"
    if draw < 0.75:
        return f"{rng.choice(_FIRST_NAMES)}'s {suffix}"
    if draw < 0.9:
        return f"{rng.choice(_PLACES)} {suffix}"
    return f"The {rng.choice(_MOTIFS)} {suffix}"

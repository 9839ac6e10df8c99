"""The demo data generator: file format, valid event histories, and the simulated business."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from execmetrics.demo import (
    BASE_PRICES,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    FX_COLUMNS,
    SPEND_COLUMNS,
    DemoFiles,
    DemoSpec,
    write_demo,
)
from execmetrics.ingest.rows import TICKET_COLUMNS

FILES = ("customers", "subscription_events", "fx_rates", "marketing_spend", "support_tickets")
PERIOD_START = datetime(2023, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 1, 1, tzinfo=UTC)
PLAN_FIELDS = ("plan_id", "tier", "amount_minor", "quantity", "currency", "interval")
PAID_SOURCES = {"google_ads", "instagram", "wedding_fair"}
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

Row = dict[str, str]


def read(directory: Path, name: str) -> list[Row]:
    with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def header(directory: Path, name: str) -> list[str]:
    with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def moment(text: str) -> datetime:
    assert STAMP.fullmatch(text), text
    return datetime.fromisoformat(text)


class Demo:
    def __init__(self, directory: Path, files: DemoFiles) -> None:
        self.directory = directory
        self.files = files
        self.customers = read(directory, "customers")
        self.events = read(directory, "subscription_events")
        self.fx = read(directory, "fx_rates")
        self.spend = read(directory, "marketing_spend")
        self.tickets = read(directory, "support_tickets")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    directory = tmp_path_factory.mktemp("demo")
    files = write_demo(DemoSpec(customers=3000, months=36, seed=11, end_month="2025-12"), directory)
    return Demo(directory, files)


def test_headers_are_exactly_the_ingested_columns(demo: Demo) -> None:
    assert header(demo.directory, "customers") == list(CUSTOMER_COLUMNS)
    assert CUSTOMER_COLUMNS == (
        "customer_id",
        "name",
        "created_at",
        "country",
        "segment",
        "employees",
        "acquisition_source",
        "acquisition_campaign",
        "business_type",
    )
    assert header(demo.directory, "subscription_events") == list(EVENT_COLUMNS)
    assert EVENT_COLUMNS == (
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
    assert header(demo.directory, "fx_rates") == list(FX_COLUMNS) == ["date", "currency", "rate"]
    assert header(demo.directory, "marketing_spend") == list(SPEND_COLUMNS)
    assert list(SPEND_COLUMNS) == ["month", "source", "campaign", "amount_minor", "currency"]
    assert header(demo.directory, "support_tickets") == list(TICKET_COLUMNS)


def test_counts_returned_match_the_files(demo: Demo) -> None:
    assert demo.files.directory == demo.directory
    assert demo.files.customers == len(demo.customers) == 3000
    assert demo.files.subscription_events == len(demo.events)
    assert demo.files.fx_rates == len(demo.fx)
    assert demo.files.marketing_spend == len(demo.spend)
    assert demo.files.support_tickets == len(demo.tickets)


def test_same_spec_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    spec = DemoSpec(customers=400, months=24, seed=3, end_month="2024-06")
    write_demo(spec, tmp_path / "a")
    write_demo(spec, tmp_path / "b")
    write_demo(DemoSpec(customers=400, months=24, seed=4, end_month="2024-06"), tmp_path / "c")
    for name in FILES:
        first = (tmp_path / "a" / f"{name}.csv").read_bytes()
        assert first == (tmp_path / "b" / f"{name}.csv").read_bytes(), name
        assert first != (tmp_path / "c" / f"{name}.csv").read_bytes(), name


def test_customer_rows(demo: Demo) -> None:
    ids = [c["customer_id"] for c in demo.customers]
    assert ids[0] == "cus_000001"
    assert ids == [f"cus_{n:06d}" for n in range(1, 3001)]
    sources = Counter(c["acquisition_source"] for c in demo.customers)
    assert set(sources) == {
        "organic",
        "google_ads",
        "instagram",
        "referral",
        "wedding_fair",
        "partner",
    }
    employees = [int(c["employees"]) for c in demo.customers]
    assert sum(1 <= e <= 20 for e in employees) > 0.9 * len(employees)
    assert any(50 <= e <= 400 for e in employees)
    countries = Counter(c["country"] for c in demo.customers)
    assert countries.most_common(1)[0][0] == "GB"
    assert set(countries) <= {"GB", "IE", "FR", "DE", "NL", "ES", "IT", "US", "CA", "AU"}
    for customer in demo.customers:
        assert customer["name"].strip()
        assert customer["segment"] == ""
        assert PERIOD_START <= moment(customer["created_at"]) < PERIOD_END
        assert customer["business_type"]
        paid = customer["acquisition_source"] in PAID_SOURCES
        assert bool(customer["acquisition_campaign"]) == paid, customer


def test_every_subscription_replays_as_a_valid_sequence(demo: Demo) -> None:
    created = {c["customer_id"]: moment(c["created_at"]) for c in demo.customers}
    active: dict[str, bool] = {}
    last: dict[str, datetime] = {}
    owner: dict[str, str] = {}
    for event in demo.events:
        sub = event["subscription_id"]
        customer = event["customer_id"]
        at = moment(event["occurred_at"])
        assert PERIOD_START <= at < PERIOD_END, event
        assert at > created[customer], event
        assert owner.setdefault(sub, customer) == customer
        assert re.fullmatch(rf"sub_{customer.removeprefix('cus_')}_[0-9]+", sub), event
        if sub in last:
            assert at > last[sub], f"{sub} not strictly after its previous event"
        last[sub] = at
        kind = event["type"]
        if kind == "start":
            assert not active.get(sub, False), f"{sub} started while active"
            active[sub] = True
        else:
            assert kind in ("change", "cancel"), event
            assert active.get(sub, False), f"{sub}: {kind} while not active"
            active[sub] = kind == "change"


def test_fields_filled_per_event_type(demo: Demo) -> None:
    for event in demo.events:
        if event["type"] == "cancel":
            assert all(event[f] == "" for f in (*PLAN_FIELDS, "interval_count", "trial_ends_at"))
            continue
        assert all(event[f] for f in PLAN_FIELDS), event
        assert event["interval"] in ("month", "year")
        assert event["interval_count"] == "1"
        assert event["currency"] in ("GBP", "EUR", "USD")
        assert event["tier"] in ("Starter", "Professional", "Scale", "Enterprise")
        assert re.fullmatch(r"[0-9]+", event["amount_minor"]) and int(event["amount_minor"]) > 0
        assert int(event["quantity"]) >= 1
        period = "monthly" if event["interval"] == "month" else "annual"
        assert event["plan_id"].endswith(f"-{period}-{event['currency'].lower()}")
        if event["trial_ends_at"]:
            assert event["type"] == "start"
            trial = moment(event["trial_ends_at"]) - moment(event["occurred_at"])
            assert trial == timedelta(days=14)


def test_prices_follow_the_list_and_only_rise(demo: Demo) -> None:
    tiers = ("Starter", "Professional", "Scale", "Enterprise")
    starts = [
        e for e in demo.events if e["type"] == "start" and not e["plan_id"].startswith("extra-")
    ]
    latest: dict[tuple[str, str, str], int] = {}
    for event in sorted(starts, key=lambda e: e["occurred_at"]):
        currency = event["currency"]
        base = BASE_PRICES[currency][tiers.index(event["tier"])]
        amount = int(event["amount_minor"])
        monthly = amount if event["interval"] == "month" else amount // 10
        assert event["interval"] == "month" or amount % 10 == 0
        if event["occurred_at"] < "2023-04":
            assert monthly == base, event
        assert base <= monthly < 2 * base, event
        key = (event["tier"], currency, event["interval"])
        assert amount >= latest.get(key, 0), event
        latest[key] = amount
    assert {e["currency"] for e in starts} == {"GBP", "EUR", "USD"}


def test_event_ids_are_unique_and_numbered(demo: Demo) -> None:
    ids = [e["event_id"] for e in demo.events]
    assert len(set(ids)) == len(ids)
    assert ids[:2] == ["evt_0000001", "evt_0000002"]
    assert all(re.fullmatch(r"evt_[0-9]{7,}", i) for i in ids)


def test_fx_rates_are_daily_and_cover_every_foreign_event(demo: Demo) -> None:
    days = [
        date(2023, 1, 1) + timedelta(days=d)
        for d in range((date(2026, 1, 1) - date(2023, 1, 1)).days)
    ]
    assert [(r["date"], r["currency"]) for r in demo.fx] == [
        (d.isoformat(), c) for d in days for c in ("EUR", "USD")
    ]
    for row in demo.fx:
        assert re.fullmatch(r"0\.[0-9]{6}", row["rate"]), row
    eur = [float(r["rate"]) for r in demo.fx if r["currency"] == "EUR"]
    usd = [float(r["rate"]) for r in demo.fx if r["currency"] == "USD"]
    assert min(eur) > 0.75 and max(eur) < 0.95
    assert min(usd) > 0.69 and max(usd) < 0.89
    assert len(set(eur)) > 300

    first_rate: dict[str, str] = {}
    for row in demo.fx:
        first_rate.setdefault(row["currency"], row["date"])
    foreign = [e for e in demo.events if e["currency"] not in ("", "GBP")]
    assert foreign
    for event in foreign:
        assert first_rate[event["currency"]] <= event["occurred_at"][:10]


def test_marketing_spend_rows(demo: Demo) -> None:
    keys = [(r["month"], r["source"], r["campaign"]) for r in demo.spend]
    assert len(set(keys)) == len(keys)
    months = {r["month"] for r in demo.spend}
    assert months == {f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)}
    for row in demo.spend:
        assert row["currency"] == "GBP"
        assert re.fullmatch(r"[0-9]+", row["amount_minor"])
        assert row["source"] in ("google_ads", "instagram", "wedding_fair", "partner")
        assert (row["campaign"] == "") == (row["source"] == "partner")
    by_month: Counter[str] = Counter()
    for row in demo.spend:
        by_month[row["month"]] += int(row["amount_minor"])
    assert by_month["2025-01"] > by_month["2025-07"]
    assert by_month["2025-01"] > by_month["2023-01"]

    campaigns = {(r["source"], r["campaign"]) for r in demo.spend}
    for customer in demo.customers:
        if customer["acquisition_source"] in PAID_SOURCES:
            pair = (customer["acquisition_source"], customer["acquisition_campaign"])
            assert pair in campaigns, pair


def test_spend_scales_with_customers(tmp_path: Path) -> None:
    small = write_demo(DemoSpec(customers=200, months=12, end_month="2024-12"), tmp_path / "s")
    large = write_demo(DemoSpec(customers=2000, months=12, end_month="2024-12"), tmp_path / "l")
    total_small = sum(int(r["amount_minor"]) for r in read(small.directory, "marketing_spend"))
    total_large = sum(int(r["amount_minor"]) for r in read(large.directory, "marketing_spend"))
    assert 8 * total_small < total_large < 12 * total_small


def test_signups_peak_in_engagement_season(demo: Demo) -> None:
    by_month = Counter(int(c["created_at"][5:7]) for c in demo.customers)
    winter = by_month[1] + by_month[2] + by_month[3]
    summer = by_month[6] + by_month[7] + by_month[8]
    assert winter > 1.5 * summer
    assert by_month[9] + by_month[10] > by_month[7] + by_month[8]
    by_year = Counter(c["created_at"][:4] for c in demo.customers)
    assert by_year["2023"] < by_year["2024"] < by_year["2025"]


def test_cancellations_peak_after_the_wedding_season(demo: Demo) -> None:
    by_month = Counter(int(e["occurred_at"][5:7]) for e in demo.events if e["type"] == "cancel")
    autumn = (by_month[10] + by_month[11]) / 2
    rest = sum(n for m, n in by_month.items() if m not in (10, 11)) / 10
    assert autumn > 1.4 * rest


def test_trials_some_cancelled_before_paying(demo: Demo) -> None:
    first_starts = [
        e for e in demo.events if e["type"] == "start" and e["subscription_id"].endswith("_1")
    ]
    trials = {e["subscription_id"]: e for e in first_starts if e["trial_ends_at"]}
    assert 0.28 < len(trials) / len(first_starts) < 0.42
    cancelled_in_trial = {
        e["subscription_id"]
        for e in demo.events
        if e["type"] == "cancel"
        and e["subscription_id"] in trials
        and e["occurred_at"] < trials[e["subscription_id"]]["trial_ends_at"]
    }
    assert 0.15 < len(cancelled_in_trial) / len(trials) < 0.45


def test_multiple_currencies(demo: Demo) -> None:
    currency_of: dict[str, str] = {}
    for event in demo.events:
        if event["type"] == "start":
            currency_of.setdefault(event["customer_id"], event["currency"])
    shares = Counter(currency_of.values())
    total = sum(shares.values())
    assert shares["GBP"] / total > 0.8
    assert 0.02 < shares["EUR"] / total < 0.15
    assert 0.02 < shares["USD"] / total < 0.15
    countries = {c["customer_id"]: c["country"] for c in demo.customers}
    for customer, currency in currency_of.items():
        country = countries[customer]
        expected = {"GB": "GBP", "US": "USD", "CA": "USD", "AU": "USD"}.get(country, "EUR")
        assert currency == expected, (customer, country, currency)


def test_returns_and_add_ons(demo: Demo) -> None:
    by_customer: dict[str, list[Row]] = defaultdict(list)
    for event in demo.events:
        by_customer[event["customer_id"]].append(event)
    restarted_same = restarted_new = add_ons = 0
    for events in by_customer.values():
        cancelled: set[str] = set()
        active: set[str] = set()
        concurrent = False
        for event in events:
            sub = event["subscription_id"]
            if event["type"] == "start":
                if sub in cancelled:
                    restarted_same += 1
                elif cancelled and not event["plan_id"].startswith("extra-"):
                    restarted_new += 1
                active.add(sub)
                concurrent = concurrent or len(active) > 1
            elif event["type"] == "cancel":
                active.discard(sub)
                cancelled.add(sub)
        if concurrent:
            add_ons += 1
            assert any(e["plan_id"].startswith("extra-brand-monthly-") for e in events)
    assert restarted_same > 10
    assert restarted_new > 10
    assert 0.01 < add_ons / len(demo.customers) < 0.06


def test_changes_are_frequent_enough(demo: Demo) -> None:
    kinds = Counter(e["type"] for e in demo.events)
    assert kinds["change"] > kinds["start"] > kinds["cancel"] > 0
    # Customers who signed up in the first month see almost the whole period.
    early = {c["customer_id"] for c in demo.customers if c["created_at"] < "2023-02"}
    per_early = sum(1 for e in demo.events if e["customer_id"] in early) / len(early)
    assert 6 < per_early < 14


def test_progress_reports_every_customer(tmp_path: Path) -> None:
    calls: list[int] = []
    write_demo(DemoSpec(customers=2500, months=3, end_month="2025-03"), tmp_path, calls.append)
    assert calls == [1000, 1000, 500]


def test_single_month_and_default_end_month(tmp_path: Path) -> None:
    files = write_demo(DemoSpec(customers=5, months=1, end_month="2024-02"), tmp_path / "one")
    assert files.fx_rates == 29 * 2
    assert {r["month"] for r in read(tmp_path / "one", "marketing_spend")} == {"2024-02"}
    now = datetime.now(UTC)
    write_demo(DemoSpec(customers=5, months=2), tmp_path / "now")
    last = read(tmp_path / "now", "fx_rates")[-1]["date"]
    assert last[:7] == f"{now.year}-{now.month:02d}"


def test_a_month_under_way_stops_at_the_moment_the_demo_is_written(tmp_path: Path) -> None:
    spec = DemoSpec(customers=400, months=3, seed=5, end_month="2025-11")
    now = datetime(2025, 11, 12, 15, 30, tzinfo=UTC)
    files = write_demo(spec, tmp_path / "cut", now=now)
    write_demo(spec, tmp_path / "whole", now=datetime(2025, 12, 1, tzinfo=UTC))
    cut, whole = Demo(tmp_path / "cut", files), Demo(tmp_path / "whole", files)
    cutoff = "2025-11-12T15:30:00Z"
    assert files.customers == len(cut.customers)
    assert files.customers < len(whole.customers)  # some would sign up later in the month
    # What happened by then is the whole demo's, nothing after it (ids are numbered anew).
    for rows, full, column in [
        (cut.customers, whole.customers, "created_at"),
        (cut.events, whole.events, "occurred_at"),
        (cut.tickets, whole.tickets, "opened_at"),
    ]:
        assert [without_id(r) for r in rows] == [
            without_id(r) for r in full if r[column] <= cutoff
        ]  # fmt: skip
    assert max(r["date"] for r in cut.fx) == "2025-11-12"
    # A ticket closed after the moment is still open; the others are as they were.
    reopened = [r for r in whole.tickets if r["opened_at"] <= cutoff < r["closed_at"]]
    assert reopened
    open_now = {r["opened_at"] + r["customer_id"] for r in cut.tickets if not r["closed_at"]}
    assert {r["opened_at"] + r["customer_id"] for r in reopened} <= open_now
    activity = read(tmp_path / "cut", "activity_events")
    assert activity and max(r["occurred_at"] for r in activity) <= cutoff
    assert files.activity_events == len(activity)


def without_id(row: Row) -> Row:
    """A row without its id, for tickets without the closing moment a cut may clear."""
    first = next(iter(row))
    return {k: v for k, v in row.items() if k != first and k != "closed_at"}


def test_files_pass_the_ingester_row_checks(demo: Demo) -> None:
    from execmetrics.ingest import rows

    for name, parsed in (
        ("customers", demo.customers[:300]),
        ("subscription_events", demo.events[:3000]),
        ("fx_rates", demo.fx[:100]),
        ("marketing_spend", demo.spend),
        ("support_tickets", demo.tickets[:3000]),
    ):
        for row in parsed:
            rows.PARSERS[name](row)


@pytest.mark.parametrize(
    ("spec", "parameter"),
    [
        (DemoSpec(customers=0), "customers"),
        (DemoSpec(customers=-5), "customers"),
        (DemoSpec(months=0), "months"),
        (DemoSpec(end_month="2024-13"), "end_month"),
        (DemoSpec(end_month="2024-1"), "end_month"),
        (DemoSpec(end_month="24-01"), "end_month"),
        (DemoSpec(end_month="2024-01-01"), "end_month"),
        (DemoSpec(end_month="january"), "end_month"),
        (DemoSpec(months=2, end_month="2999-01"), "end_month"),  # nothing has happened yet
    ],
)
def test_bad_specs_are_refused(tmp_path: Path, spec: DemoSpec, parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        write_demo(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def subscription_spans(demo: Demo) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each customer's subscriptions as (started, cancelled or None)."""
    started: dict[str, datetime] = {}
    spans: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for event in demo.events:
        key = event["subscription_id"]
        if event["type"] == "start":
            started[key] = moment(event["occurred_at"])
        elif event["type"] == "cancel":
            spans[event["customer_id"]].append((started.pop(key), moment(event["occurred_at"])))
    for event in demo.events:
        if event["type"] == "start" and event["subscription_id"] in started:
            spans[event["customer_id"]].append((started.pop(event["subscription_id"]), None))
    return spans


def test_tickets_are_opened_while_a_subscription_runs_and_close_after(demo: Demo) -> None:
    spans = subscription_spans(demo)
    end = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [ticket["ticket_id"] for ticket in demo.tickets]
    assert len(set(ids)) == len(ids) and ids[0] == "tkt_0000001"
    assert 1 < len(demo.tickets) / len(demo.customers) < 6  # a few per customer in three years
    for ticket in demo.tickets:
        opened = moment(ticket["opened_at"])
        assert opened < end
        assert any(
            start <= opened < (stop or end) for start, stop in spans[ticket["customer_id"]]
        ), ticket
        if ticket["closed_at"]:
            assert opened < moment(ticket["closed_at"]) < end
    priorities = Counter(ticket["priority"] for ticket in demo.tickets)
    assert set(priorities) == {"low", "normal", "high", "urgent"}
    assert priorities["normal"] > priorities["urgent"]
    assert any(not ticket["closed_at"] for ticket in demo.tickets)  # some still open


def test_customers_who_leave_often_file_more_urgent_tickets_first(demo: Demo) -> None:
    spans = subscription_spans(demo)
    left = {
        customer: max(stop for _, stop in found if stop is not None)
        for customer, found in spans.items()
        if all(stop is not None for _, stop in found)
    }
    window = timedelta(days=75)
    before = [t for t in demo.tickets if t["customer_id"] in left
              and left[t["customer_id"]] - window <= moment(t["opened_at"])]  # fmt: skip
    others = [t for t in demo.tickets if t["customer_id"] not in left]
    # The tickets of their last 75 days are far more often high or urgent than others'.
    urgent = {"high", "urgent"}
    share_before = sum(t["priority"] in urgent for t in before) / len(before)
    share_others = sum(t["priority"] in urgent for t in others) / len(others)
    assert share_before > 1.5 * share_others
    # Not always: many leavers file no ticket at all in their last 75 days.
    troubled = {t["customer_id"] for t in before}
    assert 0.2 < len(troubled) / len(left) < 0.9

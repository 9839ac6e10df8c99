"""Property tests over random event streams: the exact identities, an independent MRR model,
and breakdown sums (SQLite only, to keep the suite quick; the same queries run on PostgreSQL in
the scenario tests)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from tests.builders import cancel, change, customer, ingest, metrics, start
from tests.metrics.scenarios import ADDITIVE_FIELDS

from execmetrics.ingest.readers import Row
from execmetrics.metrics.periods import periods_between, time_zone
from execmetrics.store.tables import metadata
from execmetrics.timeutil import parse_timestamp

BASE = datetime(2023, 11, 1, tzinfo=UTC)
FIRST, LAST = "2023-11", "2024-05"


def instant(step: int) -> str:
    """Steps of 23 hours, so events land on midnights of UTC and of London summer time."""
    return (BASE + timedelta(hours=23 * step)).isoformat().replace("+00:00", "Z")


@st.composite
def companies(draw: st.DrawFn) -> tuple[list[Row], list[Row]]:
    customers: list[Row] = []
    events: list[Row] = []
    for c in range(draw(st.integers(1, 5))):
        cid = f"c{c}"
        customers.append(customer(cid, segment=draw(st.sampled_from([None, "SMB", "Enterprise"]))))
        for s in range(draw(st.integers(1, 2))):
            sid = f"{cid}-s{s}"
            steps = sorted(draw(st.sets(st.integers(0, 200), min_size=1, max_size=5)))
            active = False
            for n, step in enumerate(steps):
                eid = f"{sid}-e{n}"
                amount = draw(st.sampled_from([1000, 2500, 4000, 12000]))
                if not active:
                    trial = None
                    if n == 0 and draw(st.booleans()):
                        # A trial that ends before the subscription's next event.
                        limit = steps[1] if len(steps) > 1 else 230
                        trial = instant(draw(st.integers(step, limit - 1)))
                    events.append(start(eid, cid, sid, instant(step), amount, trial_ends_at=trial))
                    active = True
                elif draw(st.booleans()):
                    events.append(change(eid, cid, sid, instant(step), amount))
                else:
                    events.append(cancel(eid, cid, sid, instant(step)))
                    active = False
    return customers, events


def model_mrr(events: list[Row], at: int) -> dict[str, int]:
    """Each customer's MRR from the events before `at`, by the definitions, without the ledger."""
    latest: dict[tuple[str, str], Row] = {}
    for row in sorted(events, key=lambda r: parse_timestamp(str(r["occurred_at"]))):
        if parse_timestamp(str(row["occurred_at"])) < at:
            latest[(str(row["customer_id"]), str(row["subscription_id"]))] = row
    totals: dict[str, int] = defaultdict(int)
    for (cid, _), row in latest.items():
        if row["type"] == "cancel":
            continue
        trial = row.get("trial_ends_at")
        if trial is not None and parse_timestamp(trial) >= at:
            continue
        totals[cid] += int(str(row["amount_minor"]))
    return totals


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(company=companies(), tz=st.sampled_from(["UTC", "Europe/London"]))
def test_random_streams_keep_the_identities_and_match_a_direct_model(
    sqlite_engine: Engine, company: tuple[list[Row], list[Row]], tz: str
) -> None:
    customers, events = company
    clear(sqlite_engine)
    ingest(sqlite_engine, customers=customers, events=events)
    rows = metrics(sqlite_engine, FIRST, LAST, tz=tz)
    periods = periods_between(date(2023, 11, 1), date(2024, 5, 1), "month", time_zone(tz))
    assert [row["period"] for row in rows] == [p.label for p in periods]
    assert rows[0]["mrr_start"] == 0
    for row, period in zip(rows, periods, strict=True):
        assert (
            row["net_new_mrr"]
            == (
                row["new_mrr"]
                + row["expansion_mrr"]
                + row["reactivation_mrr"]
                - row["contraction_mrr"]
                - row["churned_mrr"]
            )
            == row["mrr_end"] - row["mrr_start"]
        )
        assert row["customers_end"] == (
            row["customers_start"]
            + row["new_customers"]
            + row["reactivated_customers"]
            - row["churned_customers"]
        )
        model = model_mrr(events, period.end_us)
        assert row["mrr_end"] == sum(model.values())
        assert row["customers_end"] == sum(1 for v in model.values() if v > 0)
        start_model = model_mrr(events, period.start_us)
        assert row["customers_start"] == sum(1 for v in start_model.values() if v > 0)
    for previous, row in itertools.pairwise(rows):
        assert row["mrr_start"] == previous["mrr_end"]
    # Every customer who ever paid before the range's end is `new` exactly once.
    end = periods[-1].end_us
    moments = {
        parse_timestamp(str(r[k]))
        for r in events
        for k in ("occurred_at", "trial_ends_at")
        if r.get(k) is not None
    }
    ever_paid = {
        cid
        for moment in moments
        if moment < end
        for cid, mrr in model_mrr(events, moment + 1).items()
        if mrr > 0
    }
    assert sum(row["new_customers"] for row in rows) == len(ever_paid)
    # Segment groups sum to the total in every period and field.
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in metrics(sqlite_engine, FIRST, LAST, tz=tz, by="segment"):
        for name in ADDITIVE_FIELDS:
            sums[row["period"]][name] += row[name]
    for row in rows:
        expected: dict[str, Any] = {name: row[name] for name in ADDITIVE_FIELDS}
        assert {name: sums[row["period"]][name] for name in ADDITIVE_FIELDS} == expected

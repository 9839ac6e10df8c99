"""The scheduled digest: what it says, from real ingested data and stored KPI values, and when
it is queued, on each user's wall clock, once per scheduled time, catching up for a day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select
from tests.builders import cancel, change, ingest, start

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_user
from execmetrics.alerts.messages import AlertContext
from execmetrics.ingest.readers import Row
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis
from execmetrics.notify.charts import PNG_SIGNATURE, sparkline_png
from execmetrics.notify.digest import (
    digest_key,
    digest_message,
    latest_scheduled,
    queue_due_digests,
)
from execmetrics.notify.message import Message, Severity
from execmetrics.notify.outbox import message_from_json
from execmetrics.notify.preferences import Digest, Preferences, save_preferences
from execmetrics.store.roles import as_role
from execmetrics.store.tables import alert_instances, notifications, users
from execmetrics.timeutil import to_micros

PASSWORD = "correct horse battery staple"
LONDON = "Europe/London"
CONTEXT = AlertContext(public_url="https://metrics.example.com/", secret_key="s" * 32)
CEO = "ceo@example.com"
# Monday 8 July 2024, 08:00 in London (British Summer Time): a digest is due.
SUMMER_MONDAY = "2024-07-08T07:00:00"


def utc(text: str) -> int:
    return to_micros(datetime.fromisoformat(text).replace(tzinfo=UTC))


# A company from June 2023: ten customers at GBP 100.00 a month, one more at GBP 50.00 each
# month from July 2023 to June 2024; in June 2024 one leaves (churn 1 of 21) and one grows by
# GBP 8,900.00 (ten days before the digest: not in its week). In the week before Monday 8
# July 07:00 UTC, six movements, of which the digest shows the five largest.
def company_events() -> list[Row]:
    events = [
        start(f"a{i:02d}-1", f"a{i:02d}", f"a{i:02d}-s", "2023-06-01T00:00:00Z", 10000)
        for i in range(1, 11)
    ]
    for month in range(12):
        year, number = (2023, month + 7) if month < 6 else (2024, month - 5)
        joined = f"{year}-{number:02d}-15T00:00:00Z"
        events.append(start(f"m{month}-1", f"m{month:02d}", f"m{month}-s", joined, 5000))
    return [
        *events,
        cancel("a08-2", "a08", "a08-s", "2024-06-10T00:00:00Z"),
        change("a06-2", "a06", "a06-s", "2024-06-28T00:00:00Z", 900000),
        start("acme-1", "acme", "acme-s", "2024-07-02T09:00:00Z", 120000),
        change("a01-2", "a01", "a01-s", "2024-07-03T09:00:00Z", 60000),
        cancel("a02-2", "a02", "a02-s", "2024-07-04T09:00:00Z"),
        change("a03-2", "a03", "a03-s", "2024-07-05T09:00:00Z", 5000),
        change("a04-2", "a04", "a04-s", "2024-07-05T10:00:00Z", 12000),
        change("a05-2", "a05", "a05-s", "2024-07-06T09:00:00Z", 11000),
    ]


def mrr_with_goal() -> KpiDefinition:
    """The starter MRR KPI with a monthly goal of GBP 15,000.00."""
    [mrr] = [definition for definition in starter_kpis() if definition.name == "mrr"]
    fields = mrr.model_dump(mode="json")
    goal = {"kind": "recurring", "every": "month", "value": "1500000"}
    return KpiDefinition.model_validate({**fields, "targets": [goal]})


def alert_row(rule: str, phase: str, **fields: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "labels_key": "kpi=customer_churn_rate",
        "labels": {"kpi": "customer_churn_rate"},
        "rule_version": 1,
        "severity": "critical",
        "phase": phase,
        "since": utc("2024-07-05T13:30:00"),
        "firing_since": None,
        "episode": 1,
        "summary": f"{rule} summary",
        "evaluated_at": utc("2024-07-08T06:00:00"),
        "acknowledgements": [],
        **fields,
    }


def add_user(
    connection: Connection,
    email: str,
    role: Role = Role.EXECUTIVE,
    digest: Digest | None = None,
    zone: str = LONDON,
) -> None:
    user = create_user(connection, email, PASSWORD, role)
    chosen = Digest(channel="board-email") if digest is None else digest
    save_preferences(connection, user, Preferences(time_zone=zone, digest=chosen))


def build_company(engine: Engine) -> None:
    ingest(engine, events=company_events())
    with engine.begin() as connection:
        as_role(connection, "admin")
        apply_kpis(connection, [mrr_with_goal()], "test")
        record_evaluations(connection, date(2024, 7, 8), periods=13)
        churn = alert_row(
            "churn_spike",
            "firing",
            firing_since=utc("2024-07-05T13:30:00"),
            summary="customer churn 4.76% is above 4%",
        )
        connection.execute(insert(alert_instances), [churn, alert_row("slow_growth", "pending")])
        add_user(connection, CEO)


def compose(
    engine: Engine, email: str = CEO, now: str = SUMMER_MONDAY, key: str = "digest:test"
) -> Message:
    with engine.begin() as connection:
        as_role(connection, "admin")
        prefs = Preferences(time_zone=LONDON, digest=Digest(channel="board-email"))
        return digest_message(connection, CONTEXT, email, prefs, utc(now), key=key)


def queue(engine: Engine, now: str) -> int:
    with engine.begin() as connection:
        as_role(connection, "admin")
        return queue_due_digests(connection, CONTEXT, utc(now))


def queued_keys(engine: Engine) -> list[str]:
    with engine.begin() as connection:
        as_role(connection, "admin")
        n = notifications.c
        return list(connection.execute(select(n.idempotency_key).order_by(n.id)).scalars())


# Charts.


def test_a_sparkline_is_a_png_and_the_same_input_draws_the_same_bytes() -> None:
    values = [3.0, 4.0, None, 5.5, 5.0, 7.0]
    first = sparkline_png(values, title="MRR", target=6.0)
    again = sparkline_png(values, title="MRR", target=6.0)
    assert first.startswith(PNG_SIGNATURE)
    assert first == again
    assert sparkline_png(values, title="MRR") != first  # the target line is drawn
    assert sparkline_png([*values[:-1], 9.0], title="MRR", target=6.0) != first


def test_a_sparkline_has_the_size_asked_for_even_with_nothing_to_draw() -> None:
    for values in ([], [None, None], [2.0]):
        png = sparkline_png(values, title="Empty", width_px=300, height_px=80)
        assert png.startswith(PNG_SIGNATURE)
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (300, 80)  # from the PNG's IHDR chunk


# What the digest says.


def test_the_digest_gives_each_headline_kpi_its_value_change_target_and_band(
    engine: Engine,
) -> None:
    build_company(engine)
    message = compose(engine)
    assert message.idempotency_key == "digest:test"
    assert (message.event, message.severity) == ("digest", Severity.INFO)
    # July to date against June: GBP 11,980.00 against GBP 10,400.00.
    assert message.subject == "Weekly digest: MRR GBP 11,980.00 (+15.2%), 1 alert firing"
    text = message.text
    assert "- MRR (2024-07): GBP 11,980.00\n" in text
    assert "  change: +GBP 1,580.00 (+15.2%) on 2024-06\n" in text
    assert "  target: goal GBP 15,000.00, missed\n" in text
    assert "- Paying customers (2024-07): 21\n  change: no change on 2024-06\n" in text
    # One customer of 21 left in June; the shipped monthly churn band is Recurly's.
    churn = text[text.index("- Customer (logo) churn rate (2024-06)") :]
    # A rate changes by points, not by a percentage of itself.
    assert churn.startswith(
        "- Customer (logo) churn rate (2024-06): 0.0476\n  change: +0.0476 on 2024-05\n"
    )
    assert "  benchmark: typical 0.0515 (Recurly, 2019)\n" in churn
    titles = [label for label, _ in message.facts]
    leading = ["MRR", "ARR", "MRR growth, month on month", "Net new MRR", "Paying customers"]
    assert titles[:5] == leading
    assert len(titles) == 9  # eight KPIs at most, and the count of alerts
    assert message.facts[0] == ("MRR", "GBP 11,980.00 · +GBP 1,580.00 (+15.2%) on 2024-06")
    assert ("Alerts firing", "1") in message.facts


def test_the_digest_lists_the_firing_alerts_and_the_weeks_biggest_movements(
    engine: Engine,
) -> None:
    build_company(engine)
    text = compose(engine).text
    firing = text[text.index("Alerts firing (1)") :]
    assert firing.startswith(
        "Alerts firing (1)\n- [critical] churn_spike on customer_churn_rate: customer churn "
        "4.76% is above 4% (firing since 2024-07-05 14:30 BST)\n"
    )
    assert "slow_growth" not in text  # pending: not firing yet
    movements = text[text.index("Biggest MRR movements, last 7 days") :].splitlines()[1:7]
    assert movements == [
        "- acme: new +GBP 1,200.00 on 2024-07-02",
        "- a01: expansion +GBP 500.00 on 2024-07-03",
        "- a02: churn -GBP 100.00 on 2024-07-04",
        "- a03: contraction -GBP 50.00 on 2024-07-05",
        "- a04: expansion +GBP 20.00 on 2024-07-05",
        "",
    ]
    assert "Open dashboard: https://metrics.example.com/\n" in text
    assert text.endswith("Open alerts: https://metrics.example.com/alerts")


def test_the_weeks_movements_end_at_the_digests_time(engine: Engine) -> None:
    build_company(engine)
    # On Wednesday evening the week reaches back to the June growth of a06 and has seen
    # none of the movements from 4 July on.
    text = compose(engine, now="2024-07-03T18:00:00").text
    movements = text[text.index("Biggest MRR movements, last 7 days") :].splitlines()[1:4]
    assert movements == [
        "- a06: expansion +GBP 8,900.00 on 2024-06-28",
        "- acme: new +GBP 1,200.00 on 2024-07-02",
        "- a01: expansion +GBP 500.00 on 2024-07-03",
    ]
    assert "- a02:" not in text


def test_the_html_shows_every_chart_by_content_id_and_the_text_has_none(engine: Engine) -> None:
    build_company(engine)
    message = compose(engine)
    assert len(message.images) == len(message.facts) - 1  # one chart per headline KPI
    assert len({image.content_id for image in message.images}) == len(message.images)
    for image in message.images:
        assert f"<img src='cid:{image.content_id}'" in message.html
        assert image.png.startswith(PNG_SIGNATURE)
        assert image.alt in message.html
    assert "cid:" not in message.text
    assert "<td valign='top'><strong>GBP 11,980.00</strong></td>" in message.html
    assert "Recurly, 2019" in message.html
    assert "customer churn 4.76% is above 4%" in message.html


def test_the_queued_digest_is_the_composed_one(engine: Engine) -> None:
    build_company(engine)
    assert queue(engine, SUMMER_MONDAY) == 1
    with engine.begin() as connection:
        as_role(connection, "admin")
        row = connection.execute(select(notifications)).one()
    key = "digest:ceo@example.com:2024-07-08T07:00Z"
    assert (row.idempotency_key, row.channel, row.recipient) == (key, "board-email", CEO)
    assert (row.event, row.severity, row.status) == ("digest", "info", "queued")
    assert message_from_json(row.message) == compose(engine, key=key)


def test_only_executives_and_admins_see_customer_movements(engine: Engine) -> None:
    build_company(engine)
    with engine.begin() as connection:
        as_role(connection, "admin")
        add_user(connection, "analyst@example.com", Role.ANALYST)
    text = compose(engine, "analyst@example.com").text
    assert "Biggest MRR movements" not in text
    assert "acme" not in text
    assert "- MRR (2024-07): GBP 11,980.00" in text  # the KPIs are for every role


# When it is queued.


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        # Monday 08:00 in London is 07:00 UTC in summer and 08:00 UTC in winter.
        ("0 8 * * 1", "2024-07-08T07:00:00", "2024-07-08T07:00Z"),
        ("0 8 * * 1", "2024-07-08T06:59:59", None),
        ("0 8 * * 1", "2024-01-08T08:00:00", "2024-01-08T08:00Z"),
        ("0 8 * * 1", "2024-01-08T07:59:59", None),
        # The first Monday of summer time, the day after the clocks went forward.
        ("0 8 * * 1", "2024-04-01T07:00:00", "2024-04-01T07:00Z"),
        # Up to 24 hours late, the missed one; later, none.
        ("0 8 * * 1", "2024-01-09T08:00:00", "2024-01-08T08:00Z"),
        ("0 8 * * 1", "2024-01-09T08:01:00", None),
        # 01:30 does not happen on 31 March: the digest goes when the clock reaches 02:00 BST.
        ("30 1 * * *", "2024-03-31T01:00:00", "2024-03-31T01:00Z"),
        # 01:30 happens twice on 27 October: the digest goes at the first.
        ("30 1 * * *", "2024-10-27T01:30:00", "2024-10-27T00:30Z"),
    ],
)
def test_the_due_time_is_wall_clock_time_in_the_users_zone(
    schedule: str, now: str, expected: str | None
) -> None:
    due = latest_scheduled(schedule, LONDON, utc(now))
    assert (None if due is None else f"{due:%Y-%m-%dT%H:%MZ}") == expected
    if due is not None:
        assert due.tzinfo is UTC


def test_a_digest_is_queued_once_for_each_scheduled_time(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.begin() as connection:
        as_role(connection, "admin")
        add_user(connection, "CEO@Example.com")
    assert queue(engine, "2024-07-08T06:59:00") == 0
    assert queue(engine, "2024-07-08T07:00:00") == 1

    def not_composed_again(*args: object, **kwargs: object) -> Message:
        raise AssertionError("a queued digest is not composed again")

    # Later ticks find the queued digest by its key, before drawing any chart.
    monkeypatch.setattr("execmetrics.notify.digest.digest_message", not_composed_again)
    assert queue(engine, "2024-07-08T07:00:00") == 0  # the same tick again
    assert queue(engine, "2024-07-08T07:00:15") == 0  # the next tick
    assert queue(engine, "2024-07-08T19:00:00") == 0
    assert queue(engine, "2024-07-15T06:59:00") == 0
    monkeypatch.undo()
    assert queue(engine, "2024-07-15T07:00:30") == 1
    assert queued_keys(engine) == [
        "digest:ceo@example.com:2024-07-08T07:00Z",
        "digest:ceo@example.com:2024-07-15T07:00Z",
    ]


def test_a_digest_goes_at_08_00_london_time_in_winter_and_in_summer(engine: Engine) -> None:
    with engine.begin() as connection:
        as_role(connection, "admin")
        add_user(connection, CEO)
    for now in ["2024-01-08T07:30:00", "2024-01-08T08:00:00", "2024-01-08T08:00:59"]:
        queue(engine, now)
    for now in ["2024-07-08T06:30:00", "2024-07-08T07:00:00", "2024-07-08T08:00:00"]:
        queue(engine, now)
    winter, summer = datetime(2024, 1, 8, 8, tzinfo=UTC), datetime(2024, 7, 8, 7, tzinfo=UTC)
    assert queued_keys(engine) == [digest_key(CEO, winter), digest_key(CEO, summer)]


def test_a_missed_digest_is_sent_within_a_day_and_not_after(engine: Engine) -> None:
    with engine.begin() as connection:
        as_role(connection, "admin")
        add_user(connection, CEO)
        add_user(connection, "cfo@example.com")
    # Both were due at 07:00 UTC on Monday 8 July and the server was down. Back a day and a
    # minute later, it is too late: nothing goes (and next Monday's is not due yet).
    assert queue(engine, "2024-07-09T07:01:00") == 0
    assert queued_keys(engine) == []
    # Back a minute before the day was out, both missed digests go, once.
    assert queue(engine, "2024-07-09T06:59:00") == 2
    assert queue(engine, "2024-07-09T06:59:15") == 0
    assert queued_keys(engine) == [
        "digest:ceo@example.com:2024-07-08T07:00Z",
        "digest:cfo@example.com:2024-07-08T07:00Z",
    ]


def test_each_user_gets_their_own_schedule_zone_and_channel(engine: Engine) -> None:
    with engine.begin() as connection:
        as_role(connection, "admin")
        add_user(connection, CEO)  # Monday 08:00 London
        daily = Digest(schedule="0 7 * * *", channel="slack-board")
        add_user(connection, "ny@example.com", digest=daily, zone="America/New_York")
        user = create_user(connection, "nodigest@example.com", PASSWORD, Role.EXECUTIVE)
        save_preferences(connection, user, Preferences(time_zone=LONDON))
        add_user(connection, "gone@example.com")
        connection.execute(
            users.update().where(users.c.email == "gone@example.com").values(disabled_at=1)
        )
    # 07:00 in New York on Monday 8 July (EDT) is 11:00 UTC; the London digest, due at 07:00
    # UTC, is four hours late and goes too.
    assert queue(engine, "2024-07-08T11:00:00") == 2
    assert queue(engine, "2024-07-09T11:00:00") == 1
    with engine.begin() as connection:
        as_role(connection, "admin")
        n = notifications.c
        columns = (n.idempotency_key, n.channel, n.recipient, n.message)
        rows = connection.execute(select(*columns).order_by(n.id)).all()
    assert [(row.idempotency_key, row.channel, row.recipient) for row in rows] == [
        ("digest:ceo@example.com:2024-07-08T07:00Z", "board-email", CEO),
        ("digest:ny@example.com:2024-07-08T11:00Z", "slack-board", "ny@example.com"),
        ("digest:ny@example.com:2024-07-09T11:00Z", "slack-board", "ny@example.com"),
    ]
    subjects = [message_from_json(row.message).subject for row in rows]
    # Nothing ingested yet: no KPI has a value, and no alert fires.
    assert subjects == [
        "Weekly digest: no alerts firing",
        "Daily digest: no alerts firing",
        "Daily digest: no alerts firing",
    ]
    assert "- no KPI has a value yet" in message_from_json(rows[0].message).text

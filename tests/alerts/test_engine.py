"""Alert rules evaluated against stored KPI values: firing and resolving once, notifications
queued with the change, silences, escalation, acknowledgement, and the scheduler's lease."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select
from tests.builders import ingest, start

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_user
from execmetrics.alerts.engine import evaluate_rules
from execmetrics.alerts.messages import AlertContext, acknowledge_token, read_acknowledge_token
from execmetrics.alerts.scheduler import LEASE, Scheduler, SchedulerConfig
from execmetrics.alerts.service import acknowledge, create_silence, list_instances
from execmetrics.as_code import apply_declared, parse_declared
from execmetrics.errors import Conflict, NotAuthenticated
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.notify.preferences import Preferences, save_preferences
from execmetrics.notify.quiet_hours import deferred_until
from execmetrics.notify.registry import Sealer
from execmetrics.store.lease import take_lease
from execmetrics.store.tables import alert_transitions, notifications
from execmetrics.timeutil import from_micros, now_micros, to_micros

SECRET = "a-test-secret-key-of-sufficient-length-0123456789"
CONTEXT = AlertContext("https://metrics.example", SECRET)
MINUTE = 60_000_000

CONFIG = """\
channels:
  - name: finance-slack
    kind: webhook
    url: https://hooks.example/finance
    secret: "0123456789abcdef0123"
  - name: quiet-hook
    kind: webhook
    url: https://hooks.example/quiet
    secret: "0123456789abcdef0123"
    send_resolved: false
policies:
  - name: revenue-oncall
    levels:
      - delay_minutes: 0
        recipients: [user:cfo@example.com]
      - delay_minutes: 30
        recipients: [user:ceo@example.com]
rules:
  - name: mrr-floor
    kpi: mrr
    severity: critical
    condition: {kind: threshold, below: "200000", recover_above: "250000"}
    notify: [channel:finance-slack, channel:quiet-hook]
    policy: revenue-oncall
"""


def configure(engine: Engine, text: str = CONFIG) -> None:
    with engine.begin() as connection:
        apply_declared(
            connection, parse_declared(text, "alerts.yaml"), "test", Sealer.from_secret(SECRET)
        )
        for email in ("cfo@example.com", "ceo@example.com"):
            create_user(connection, email, "a long enough password", Role.EXECUTIVE)


def evaluate_kpis_on(engine: Engine, day: date) -> None:
    with engine.begin() as connection:
        record_evaluations(connection, day, periods=3)


def cycle(engine: Engine, now: int) -> Any:
    with engine.begin() as connection:
        return evaluate_rules(connection, CONTEXT, now)


def queued(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                notifications.c.channel,
                notifications.c.recipient,
                notifications.c.event,
                notifications.c.status,
            ).order_by(notifications.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def instance(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        [found] = list_instances(connection)
    return found


def test_a_rule_fires_once_notifies_and_resolves_per_channel_setting(engine: Engine) -> None:
    configure(engine)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    report = cycle(engine, now)
    assert report.fired == 1
    fired = instance(engine)
    assert fired["phase"] == "firing" and fired["labels"] == {"kpi": "mrr"}
    assert (
        fired["summary"]
        and "GBP 1,000.00 is below the threshold of GBP 2,000.00" in fired["summary"]
    )
    assert fired["policy"] == "revenue-oncall" and fired["policy_version"] == 1
    assert queued(engine) == [
        ("finance-slack", "", "firing", "queued"),
        ("quiet-hook", "", "firing", "queued"),
        ("in_app", "cfo@example.com", "escalated", "queued"),  # level 0 of the policy
    ]
    # The same data again: nothing changes, nothing is sent twice.
    again = cycle(engine, now + MINUTE)
    assert (again.evaluated, again.unchanged, again.queued) == (0, 1, 0)
    assert len(queued(engine)) == 3
    # Half an hour on, unacknowledged: the policy's second level.
    cycle(engine, now + 31 * MINUTE)
    assert queued(engine)[-1] == ("in_app", "ceo@example.com", "escalated", "queued")
    # New data lifts MRR above the recovery threshold: resolved, told to those who were told
    # of the firing, except the channel that does not send resolutions.
    ingest(engine, events=[start("e2", "c2", "s2", "2024-03-01T00:00:00Z", 200_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    assert cycle(engine, now + 40 * MINUTE).resolved == 1
    resolved = {(c, r) for c, r, event, _ in queued(engine) if event == "resolved"}
    assert resolved == {
        ("finance-slack", ""),
        ("in_app", "cfo@example.com"),
        ("in_app", "ceo@example.com"),
    }
    with engine.connect() as connection:
        states = connection.execute(
            select(
                alert_transitions.c.from_state,
                alert_transitions.c.to_state,
                alert_transitions.c.event,
            ).order_by(alert_transitions.c.id)
        ).all()
    assert [tuple(s) for s in states] == [
        ("normal", "firing", "firing"),
        ("firing", "normal", "resolved"),
    ]


def test_hysteresis_keeps_the_alert_firing_between_the_thresholds(engine: Engine) -> None:
    configure(engine)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    cycle(engine, now)
    # 220,000 is above the firing threshold but below the recovery one: still firing.
    ingest(engine, events=[start("e2", "c2", "s2", "2024-03-01T00:00:00Z", 120_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    assert cycle(engine, now + MINUTE).resolved == 0
    assert instance(engine)["phase"] == "firing"


def test_acknowledging_stops_every_pending_escalation(engine: Engine) -> None:
    configure(engine)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    cycle(engine, now)
    fired = instance(engine)
    token = acknowledge_token(CONTEXT, fired["id"], fired["episode"])
    assert read_acknowledge_token(CONTEXT, token) == (fired["id"], fired["episode"])
    with pytest.raises(NotAuthenticated):
        read_acknowledge_token(CONTEXT, token[:-2] + "xx")
    with pytest.raises(NotAuthenticated):
        read_acknowledge_token(AlertContext("https://x", "another secret key entirely!!!"), token)
    with engine.begin() as connection:
        with pytest.raises(Conflict):
            acknowledge(
                connection, fired["id"], "user:cfo@example.com", episode=fired["episode"] + 1
            )
        acknowledge(connection, fired["id"], "user:cfo@example.com", episode=fired["episode"])
        acknowledge(connection, fired["id"], "user:ceo@example.com")  # a second ack: no change
    assert instance(engine)["acknowledged_by"] == "user:cfo@example.com"
    before = len(queued(engine))
    cycle(engine, now + 45 * MINUTE)
    assert len(queued(engine)) == before  # level 2 was due at 30 minutes: cancelled


def test_a_silence_keeps_evaluating_but_sends_nothing(engine: Engine) -> None:
    configure(engine)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    with engine.begin() as connection:
        create_silence(
            connection,
            rule="mrr-floor",
            matchers={"kpi": "mrr"},
            starts_at=now - MINUTE,
            ends_at=now + 60 * MINUTE,
            author="user:cfo@example.com",
            reason="known: migration",
        )
    assert cycle(engine, now).fired == 1
    assert instance(engine)["phase"] == "firing"
    statuses = {
        (channel, status) for channel, _, event, status in queued(engine) if event == "firing"
    }
    assert statuses == {("finance-slack", "silenced"), ("quiet-hook", "silenced")}


def test_a_rule_with_no_value_to_judge_shows_nodata(engine: Engine) -> None:
    configure(engine)
    now = now_micros()
    cycle(engine, now)
    found = instance(engine)
    assert found["health"] == "nodata" and found["phase"] == "normal"
    assert queued(engine) == []


def test_a_pending_period_delays_firing_until_it_has_passed(engine: Engine) -> None:
    configure(engine, CONFIG.replace("    policy: revenue-oncall\n", "    pending_minutes: 10\n"))
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    assert cycle(engine, now).fired == 0
    assert instance(engine)["phase"] == "pending"
    assert cycle(engine, now + 5 * MINUTE).fired == 0
    assert cycle(engine, now + 10 * MINUTE).fired == 1  # same data, but the period has run


def test_user_quiet_hours_defer_their_email_but_not_the_in_app_list(engine: Engine) -> None:
    configure(engine)
    with engine.begin() as connection:
        from execmetrics.notify.preferences import user_id

        cfo = user_id(connection, "cfo@example.com")
        assert cfo is not None
        always_quiet = {
            "time_zone": "Europe/London",
            "windows": [{"start": "00:00", "end": "12:00"}, {"start": "12:00", "end": "23:59"}],
            "critical_bypass": False,
        }
        save_preferences(
            connection,
            cfo,
            Preferences.model_validate(
                {"email_channel": "finance-slack", "quiet_hours": always_quiet}
            ),
        )
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros() - now_micros() % 60_000_000 + 30_000_000  # mid-minute
    cycle(engine, now)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                notifications.c.channel, notifications.c.recipient, notifications.c.next_attempt_at
            )
        ).all()
    by_channel = {(row.channel, row.recipient): row.next_attempt_at for row in rows}
    assert by_channel[("in_app", "cfo@example.com")] <= now_micros()
    quiet = Preferences.model_validate({"quiet_hours": always_quiet}).quiet_hours
    end = deferred_until(quiet, from_micros(now), "critical")
    assert end is not None  # the rule is critical, but this user opted out of the bypass
    assert by_channel[("finance-slack", "cfo@example.com")] == to_micros(end)


def test_one_scheduler_evaluates_however_many_processes_run(engine: Engine) -> None:
    config = SchedulerConfig(context=CONTEXT, lease_seconds=60)
    first = Scheduler(engine, SchedulerConfig(context=CONTEXT, holder="one"))
    second = Scheduler(engine, SchedulerConfig(context=CONTEXT, holder="two"))
    assert config.holder != SchedulerConfig(context=CONTEXT).holder  # unique per process
    cycle_one, _ = first.tick()
    cycle_two, _ = second.tick()
    assert cycle_one is not None and cycle_two is None
    assert take_lease(engine, LEASE, "one", 0)  # the holder lets it lapse at once
    cycle_two, _ = second.tick()
    assert cycle_two is not None  # an expired lease passes to another process


def test_an_alert_keeps_the_policy_version_it_fired_with(engine: Engine) -> None:
    configure(engine)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    cycle(engine, now)
    # The policy changes while the alert fires: its second level now comes after 5 minutes.
    with engine.begin() as connection:
        apply_declared(
            connection,
            parse_declared(CONFIG.replace("delay_minutes: 30", "delay_minutes: 5"), "a.yaml"),
            "test",
            Sealer.from_secret(SECRET),
        )
    cycle(engine, now + 10 * MINUTE)
    assert ("in_app", "ceo@example.com", "escalated", "queued") not in queued(engine)
    assert instance(engine)["policy_version"] == 1


def test_a_condition_that_cannot_be_evaluated_puts_the_alert_in_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(engine, CONFIG.replace("    policy: revenue-oncall\n", "    error: keep_last\n"))
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))

    def broken(*_: object) -> None:
        raise ArithmeticError("the detector failed")

    monkeypatch.setattr("execmetrics.alerts.conditions.check_threshold", broken)
    cycle(engine, now_micros())
    found = instance(engine)
    assert (found["health"], found["phase"]) == ("error", "normal")
    assert "evaluation failed: the detector failed" in found["summary"]
    assert queued(engine) == []  # keep_last: an error alone notifies no one


MANY_RULES = """\
channels:
  - name: hook
    kind: webhook
    url: https://hooks.example/alerts
    secret: "0123456789abcdef0123"
rules:
  - {name: floor-a, kpi: mrr, condition: {kind: threshold, below: "200000"}, notify: [channel:hook]}
  - {name: floor-b, kpi: mrr, condition: {kind: threshold, below: "150000"}, notify: [channel:hook]}
  - {name: ceiling, kpi: mrr, condition: {kind: threshold, above: "250000"}, notify: [channel:hook]}
  - {name: calm, kpi: mrr, condition: {kind: threshold, below: "1000"}, notify: [channel:hook]}
"""


def test_a_cycle_of_many_changes_keeps_each_notification_and_transition_with_its_alert(
    engine: Engine,
) -> None:
    configure(engine, MANY_RULES)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    now = now_micros()
    assert cycle(engine, now).fired == 2  # both floors; four new alerts written at once
    ingest(engine, events=[start("e2", "c2", "s2", "2024-03-01T00:00:00Z", 200_000)])
    evaluate_kpis_on(engine, date(2024, 3, 15))
    report = cycle(engine, now + MINUTE)  # both floors resolve, the ceiling fires
    assert (report.fired, report.resolved) == (1, 2)
    with engine.connect() as connection:
        rule_of = {found["id"]: found["rule"] for found in list_instances(connection)}
        sent = connection.execute(
            select(notifications.c.instance_id, notifications.c.event, notifications.c.message)
        ).all()
        moves = connection.execute(
            select(alert_transitions.c.instance_id, alert_transitions.c.event)
        ).all()
    assert sorted(rule_of.values()) == ["calm", "ceiling", "floor-a", "floor-b"]
    assert sorted((rule_of[row.instance_id], row.event) for row in sent) == [
        ("ceiling", "firing"),
        ("floor-a", "firing"),
        ("floor-a", "resolved"),
        ("floor-b", "firing"),
        ("floor-b", "resolved"),
    ]
    for row in sent:  # the message names the alert it was queued for
        assert rule_of[row.instance_id] in json.dumps(row.message)
    assert sorted((rule_of[row.instance_id], row.event) for row in moves) == [
        ("ceiling", "firing"),
        ("floor-a", "firing"),
        ("floor-a", "resolved"),
        ("floor-b", "firing"),
        ("floor-b", "resolved"),
    ]

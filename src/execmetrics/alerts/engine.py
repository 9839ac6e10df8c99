"""One evaluation cycle of every alert rule against the stored KPI values.

Each instance (rule plus labels) moves through the state machine (alerts/state.py); when it
fires or resolves, its notifications are queued in the same transaction as the change (the
outbox), and escalation steps that have come due are queued with keys that make each one
happen once. Evaluating a rule again at the same rule version and data version changes
nothing unless a pending or keep-firing period has run out meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from execmetrics.alerts import conditions as check
from execmetrics.alerts.escalation import EscalationPolicy, escalation_steps
from execmetrics.alerts.messages import AlertContext, alert_message
from execmetrics.alerts.recipients import AddressBook, Delivery, address_book, deliveries
from execmetrics.alerts.rules import AlertRule
from execmetrics.alerts.series import KpiSeries, kpi_series
from execmetrics.alerts.service import (
    StoredPolicy,
    StoredRule,
    current_policies,
    current_rules,
    is_silenced,
    labels_key,
    list_silences,
    policy_version,
)
from execmetrics.alerts.state import Event, Instance, Observation, State, advance, next_deadline
from execmetrics.kpi.evaluation import fraction_text
from execmetrics.kpi.service import StoredKpi, current_kpis
from execmetrics.kpi.targets import goal_for
from execmetrics.notify.outbox import enqueue
from execmetrics.render import format_kpi_value
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import alert_instances, alert_transitions, notifications
from execmetrics.timeutil import from_micros, now_micros, to_micros


@dataclass(frozen=True)
class Judgement:
    """One label set of a rule to evaluate: what it would judge (the KPI period and data
    version) and how; judging is left until the inputs are known to have changed."""

    labels: dict[str, str]
    period: str | None
    data_version: str | None
    judge: Callable[[], check.Outcome] | None = None  # None: no value to judge

    def run(self) -> tuple[Observation, check.Outcome | None]:
        if self.judge is None:
            return Observation.NODATA, None
        try:
            outcome = self.judge()
        except Exception as error:  # a rule that cannot be evaluated is in Error, not the cycle
            return Observation.ERROR, check.Outcome(None, None, None, f"evaluation failed: {error}")
        found = {True: Observation.HOLDS, False: Observation.CLEAR, None: Observation.NODATA}
        return found[outcome.holds], outcome


@dataclass
class CycleReport:
    evaluated: int = 0
    unchanged: int = 0
    fired: int = 0
    resolved: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


def evaluate_rules(
    connection: Connection,
    context: AlertContext,
    now: int | None = None,
    kpis: dict[str, StoredKpi] | None = None,
) -> CycleReport:
    """Evaluate every current rule once, in the caller's transaction; `kpis` are the current
    KPIs when the caller has read them already."""
    now = now_micros() if now is None else now
    report = CycleReport()
    kpis = current_kpis(connection) if kpis is None else kpis
    rules = current_rules(connection)
    book = address_book(connection)
    series = kpi_series(connection, kpis)
    currency = reporting_currency(connection)
    silences = list_silences(connection, active_at=now)
    existing = {
        (row.rule, row.labels_key): row for row in connection.execute(select(alert_instances))
    }
    changes: list[Change] = []
    for name, stored in sorted(rules.items()):
        for judgement in judge_rule(stored.rule, series, currency, existing, name):
            row = existing.get((name, labels_key(judgement.labels)))
            change = _judge(stored, judgement, row, now, report)
            if change is not None:
                changes.append(change)
    instance_ids = _save(connection, changes, now)
    for change, instance_id in zip(changes, instance_ids, strict=True):
        if change.event is not None:
            silenced = is_silenced(silences, change.stored.rule.name, change.judgement.labels)
            report.queued += _notify_change(
                connection, context, book, change, instance_id, silenced is not None
            )
    report.queued += _escalate(connection, context, rules, book, now)
    return report


def judge_rule(
    rule: AlertRule,
    series: dict[str, KpiSeries],
    currency: str,
    existing: dict[tuple[str, str], Any],
    name: str,
) -> Iterator[Judgement]:
    for kpi in rule.kpis:
        found = series.get(kpi)
        labels = rule.labels | {"kpi": kpi}
        if found is None or found.current is None:
            yield Judgement(labels, None, None)
            continue

        def describe(value: Fraction, unit: str = found.definition.unit.value) -> str:
            return format_kpi_value(value, unit, currency)

        condition = rule.condition
        if isinstance(condition, check.TargetCondition):
            yield from _judge_target(condition, found, labels, describe)
            continue
        firing = _alerting(existing.get((name, labels_key(labels))))
        yield _judged(
            labels, found, found.current, partial(_outcome, condition, found, firing, describe)
        )


def _outcome(
    condition: Any, found: KpiSeries, firing: bool, describe: Callable[[Fraction], str]
) -> check.Outcome:
    current = found.current
    assert current is not None
    if isinstance(condition, check.ThresholdCondition):
        return check.check_threshold(condition, found.values.get(current), firing, describe)
    if isinstance(condition, check.TrendCondition):
        return check.check_trend(condition, found.values, current, found.interval, describe)
    return check.check_anomaly(condition, found.values, current, found.interval, describe)


def _judge_target(
    condition: check.TargetCondition,
    found: KpiSeries,
    labels: dict[str, str],
    describe: Callable[[Fraction], str],
) -> Iterator[Judgement]:
    """Pacing judges the period under way; a missed target judges the last complete one."""
    assert found.current is not None
    definition, current = found.definition, found.current
    to_date = found.back == 0
    if condition.check in ("pacing", "both") and to_date:

        def pacing() -> check.Outcome:
            elapsed = found.elapsed()
            if not elapsed:  # no evaluation yet, or one at the very start of the period
                return check.Outcome(None, None, None, "too early in the period to judge")
            return check.check_pacing(
                condition,
                found.values.get(current),
                found.values.get(found.label(1)),
                goal_for(definition.targets, current),
                definition.direction,
                found.pace,
                elapsed,
                describe,
            )

        yield _judged(labels | {"check": "pacing"}, found, current, pacing)
    if condition.check in ("missed", "both"):
        complete = found.label(1) if to_date else current

        def missed() -> check.Outcome:
            goal = goal_for(definition.targets, complete)
            value = found.values.get(complete)
            return check.check_missed(value, goal, definition.direction, describe)

        yield _judged(labels | {"check": "missed"}, found, complete, missed)


def _judged(
    labels: dict[str, str], found: KpiSeries, period: str, judge: Callable[[], check.Outcome]
) -> Judgement:
    return Judgement(labels, period, found.data_version, judge)


def _alerting(row: Any) -> bool:
    return row is not None and row.phase in (State.FIRING, State.RECOVERING)


def _instance(row: Any) -> Instance:
    if row is None:
        return Instance()
    return Instance(
        phase=State(row.phase),
        health=State(row.health) if row.health else None,
        since=row.since,
        firing_since=row.firing_since,
        episode=row.episode,
    )


@dataclass(frozen=True)
class Change:
    """An instance judged afresh: its state before and after, and the event, if any."""

    stored: StoredRule
    judgement: Judgement
    outcome: check.Outcome | None
    row: Any  # the stored instance; None for a new one
    before: Instance
    after: Instance
    event: Event | None


def _judge(
    stored: StoredRule, judgement: Judgement, row: Any, now: int, report: CycleReport
) -> Change | None:
    """Advance one instance; None when its inputs are those it was last judged on."""
    before = _instance(row)
    if row is not None and _same_inputs(row, stored, judgement, before, now):
        report.unchanged += 1
        return None
    report.evaluated += 1
    if (
        row is not None
        and judgement.labels.get("check") == "missed"
        and row.period != judgement.period
    ):
        before = Instance(episode=before.episode)  # a new period's target: judged afresh
    observation, outcome = judgement.run()
    after, event = advance(before, observation, now, stored.rule.timing)
    report.fired += event is Event.FIRING
    report.resolved += event is Event.RESOLVED
    return Change(stored, judgement, outcome, row, before, after, event)


def _same_inputs(
    row: Any, stored: StoredRule, judgement: Judgement, instance: Instance, now: int
) -> bool:
    if row.rule_version != stored.version or row.data_version != judgement.data_version:
        return False
    if row.period != judgement.period:
        return False
    deadline = next_deadline(instance, stored.rule.timing)
    return deadline is None or now < deadline


def _save(connection: Connection, changes: list[Change], now: int) -> list[int]:
    """Write every changed instance and its transition in a few statements (one per kind of
    row, each with many parameter sets), not one per instance: the instances' ids, in order."""
    policies = current_policies(connection) if changes else {}
    values = [_instance_values(change, policies, now) for change in changes]
    new = [index for index, change in enumerate(changes) if change.row is None]
    ids = [0 if change.row is None else int(change.row.id) for change in changes]
    if new:
        inserted = connection.execute(
            insert(alert_instances).returning(alert_instances.c.id, sort_by_parameter_order=True),
            [values[index] for index in new],
        )
        for index, instance_id in zip(new, inserted.scalars(), strict=True):
            ids[index] = int(instance_id)
    updates: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for index, change in enumerate(changes):
        if change.row is not None:
            updates[frozenset(values[index])].append(values[index] | {"instance": ids[index]})
    for rows in updates.values():
        statement = update(alert_instances).where(alert_instances.c.id == bindparam("instance"))
        connection.execute(statement, rows)
    transitions = [
        _transition(change, instance_id, now)
        for change, instance_id in zip(changes, ids, strict=True)
        if change.before.state != change.after.state or change.event is not None
    ]
    if transitions:
        connection.execute(insert(alert_transitions), transitions)
    return ids


def _instance_values(change: Change, policies: dict[str, StoredPolicy], now: int) -> dict[str, Any]:
    """The instance's row as it is after the change; a new instance's has every column."""
    stored, judgement, after = change.stored, change.judgement, change.after
    outcome = change.outcome
    values: dict[str, Any] = {
        "rule": stored.rule.name,
        "labels_key": labels_key(judgement.labels),
        "labels": judgement.labels,
        "rule_version": stored.version,
        "severity": stored.rule.severity.value,
        "phase": after.phase.value,
        "health": after.health.value if after.health else None,
        "since": after.since,
        "firing_since": after.firing_since,
        "episode": after.episode,
        "value": _text(None if outcome is None else outcome.observed),
        "summary": _summary(outcome),
        "period": judgement.period,
        "data_version": judgement.data_version,
        "evaluated_at": now,
    }
    if change.event is Event.FIRING:
        # The alert keeps the policy version it fired with until it resolves.
        values |= {"acknowledgements": [], "acknowledged_by": None}
        values |= _policy_at_firing(stored.rule, policies)
    elif change.row is None:
        values |= {"acknowledgements": [], "acknowledged_by": None}
        values |= {"policy": None, "policy_version": None}
    return values


def _transition(change: Change, instance_id: int, now: int) -> dict[str, Any]:
    outcome = change.outcome
    return {
        "instance_id": instance_id,
        "at": now,
        "from_state": change.before.state.value,
        "to_state": change.after.state.value,
        "event": change.event.value if change.event else None,
        "episode": change.after.episode,
        "value": _text(None if outcome is None else outcome.observed),
        "summary": _summary(outcome),
    }


def _summary(outcome: check.Outcome | None) -> str:
    return "no value to judge" if outcome is None else outcome.summary


def _policy_at_firing(rule: AlertRule, policies: dict[str, StoredPolicy]) -> dict[str, Any]:
    if rule.policy is None:
        return {"policy": None, "policy_version": None}
    stored = policies.get(rule.policy)
    return {"policy": rule.policy, "policy_version": stored.version if stored else None}


def _text(value: Fraction | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Fraction):
        return fraction_text(value)
    return repr(value)


def _notify_change(
    connection: Connection,
    context: AlertContext,
    book: AddressBook,
    change: Change,
    instance_id: int,
    silenced: bool,
) -> int:
    """Queue the notifications of a firing or a resolution: the rule's own recipients, and on
    resolution everyone the episode's escalation reached."""
    rule, instance, event = change.stored.rule, change.after, change.event
    assert event is not None
    targets = deliveries(book, rule.notify, severity=rule.severity.value)
    if event is Event.RESOLVED:
        targets = _merge(targets, _reached(connection, book, instance_id, instance.episode))
    queued = 0
    for target in targets:
        if event is Event.RESOLVED and not target.send_resolved:
            continue
        message = alert_message(
            context, rule, instance_id, instance, event, change.judgement.labels, change.outcome,
            key=f"alert:{instance_id}:{instance.episode}:{event.value}:{target.key}",
        )  # fmt: skip
        queued += enqueue(
            connection,
            message,
            target.channel,
            target.recipient,
            instance_id=instance_id,
            not_before=target.not_before,
            silenced=silenced,
        )
    return queued


def _merge(first: list[Delivery], second: list[Delivery]) -> list[Delivery]:
    seen = {target.key for target in first}
    return first + [target for target in second if target.key not in seen]


def _reached(
    connection: Connection, book: AddressBook, instance_id: int, episode: int
) -> list[Delivery]:
    """Who was told of the episode's firing or escalation, to be told of its resolution."""
    n = notifications.c
    prefix = f"alert:{instance_id}:{episode}:"
    rows = connection.execute(
        select(n.channel, n.recipient)
        .where(n.instance_id == instance_id, n.idempotency_key.startswith(prefix))
        .where(n.event.in_(("firing", "escalated")))
        .distinct()
    )
    return [
        Delivery(row.channel, row.recipient, None, book.resolved.get(row.channel, True))
        for row in rows
    ]


def _escalate(
    connection: Connection,
    context: AlertContext,
    rules: dict[str, StoredRule],
    book: AddressBook,
    now: int,
) -> int:
    """Queue every escalation step that has come due for an unacknowledged firing alert and
    has not been queued before."""
    a = alert_instances.c
    rows = connection.execute(
        select(alert_instances).where(
            a.phase.in_((State.FIRING.value, State.RECOVERING.value)), a.policy.is_not(None)
        )
    ).all()
    if not rows:
        return 0
    queued_keys = _escalations_queued(connection, [row.id for row in rows])
    policies: dict[tuple[str, int], EscalationPolicy | None] = {}
    queued = 0
    for row in rows:
        key = (row.policy, row.policy_version or 0)
        if key not in policies:
            policies[key] = policy_version(connection, *key)
        policy = policies[key]
        stored = rules.get(row.rule)
        if policy is None or stored is None or row.firing_since is None:
            continue
        steps = escalation_steps(
            policy,
            fired_at=from_micros(row.firing_since),
            acknowledgements=[from_micros(at) for at in row.acknowledgements],
            resolved_at=None,
            until=from_micros(now),
        )
        instance = _instance(row)
        for step in steps:
            prefix = f"alert:{row.id}:{row.episode}:escalated:{step.key}:"
            if any(key.startswith(prefix) for key in queued_keys.get(row.id, ())):
                continue  # queued in an earlier round
            targets = deliveries(
                book, [step.recipient], severity=row.severity, at=to_micros(step.due_at)
            )
            for target in targets:
                message = alert_message(
                    context, stored.rule, row.id, instance, Event.FIRING, row.labels, None,
                    key=prefix + target.key, summary=row.summary, escalation=step,
                )  # fmt: skip
                queued += enqueue(
                    connection, message, target.channel, target.recipient,
                    instance_id=row.id, not_before=target.not_before,
                )  # fmt: skip
    return queued


def _escalations_queued(connection: Connection, instance_ids: list[int]) -> dict[int, list[str]]:
    n = notifications.c
    found: dict[int, list[str]] = {}
    rows = connection.execute(
        select(n.instance_id, n.idempotency_key).where(
            n.instance_id.in_(instance_ids), n.event == "escalated"
        )
    )
    for row in rows:
        found.setdefault(row.instance_id, []).append(row.idempotency_key)
    return found

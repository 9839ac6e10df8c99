"""Stored alerting: rule and policy versions, alert instances and their transitions,
silences, and acknowledgements.

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from execmetrics.alerts.escalation import EscalationPolicy
from execmetrics.alerts.rules import AlertRule
from execmetrics.errors import Conflict, InvalidParameter, NotFound
from execmetrics.store import versions
from execmetrics.store.tables import (
    alert_instances,
    alert_rule_versions,
    alert_transitions,
    escalation_policy_versions,
    silences,
)
from execmetrics.timeutil import now_micros

MAX_SILENCE_DAYS = 366
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class StoredRule:
    version: int
    rule: AlertRule


@dataclass(frozen=True)
class StoredPolicy:
    version: int
    policy: EscalationPolicy


def current_rules(connection: Connection) -> dict[str, StoredRule]:
    return {
        name: StoredRule(stored.version, AlertRule.model_validate(stored.definition))
        for name, stored in versions.latest(connection, alert_rule_versions).items()
    }


def current_policies(connection: Connection) -> dict[str, StoredPolicy]:
    return {
        name: StoredPolicy(stored.version, EscalationPolicy.model_validate(stored.definition))
        for name, stored in versions.latest(connection, escalation_policy_versions).items()
    }


def policy_version(connection: Connection, name: str, number: int) -> EscalationPolicy | None:
    """The policy version an alert started with: it keeps it until it resolves."""
    found = versions.version(connection, escalation_policy_versions, name, number)
    return None if found is None else EscalationPolicy.model_validate(found)


def labels_key(labels: dict[str, str]) -> str:
    """The identity of a label set: the same labels give the same key in any order."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def list_instances(
    connection: Connection, alerting_only: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    a = alert_instances.c
    query = select(alert_instances).order_by(a.evaluated_at.desc(), a.id.desc()).limit(limit)
    if alerting_only:
        query = query.where(a.phase.in_(("firing", "recovering")))
    return [dict(row._mapping) for row in connection.execute(query)]


def find_instance(connection: Connection, instance_id: int) -> dict[str, Any] | None:
    row = connection.execute(
        select(alert_instances).where(alert_instances.c.id == instance_id)
    ).first()
    return None if row is None else dict(row._mapping)


def get_instance(connection: Connection, instance_id: int) -> dict[str, Any]:
    found = find_instance(connection, instance_id)
    if found is None:
        raise NotFound(f"alert {instance_id} does not exist")
    return found


def instance_transitions(connection: Connection, instance_id: int) -> list[dict[str, Any]]:
    t = alert_transitions.c
    rows = connection.execute(
        select(alert_transitions).where(t.instance_id == instance_id).order_by(t.at, t.id)
    )
    return [dict(row._mapping) for row in rows]


def acknowledge(
    connection: Connection, instance_id: int, actor: str, episode: int | None = None
) -> dict[str, Any]:
    """Acknowledge a firing alert: every pending escalation step of its current episode stops
    for every recipient. `episode`, from a signed link, makes the link good for the episode
    it was sent for only; acknowledging twice changes nothing the second time."""
    a = alert_instances.c
    row = connection.execute(select(alert_instances).where(a.id == instance_id)).first()
    if row is None:
        raise NotFound(f"alert {instance_id} does not exist")
    if row.phase not in ("firing", "recovering"):
        raise Conflict(f"alert {instance_id} is not firing")
    if episode is not None and episode != row.episode:
        raise Conflict(f"alert {instance_id} has fired again since this link was sent")
    acknowledgements = list(row.acknowledgements)
    if row.acknowledged_by is None:
        acknowledgements.append(now_micros())
        connection.execute(
            update(alert_instances)
            .where(a.id == instance_id)
            .values(acknowledgements=acknowledgements, acknowledged_by=actor)
        )
    return dict(row._mapping) | {"acknowledgements": acknowledgements, "acknowledged_by": actor}


def create_silence(
    connection: Connection,
    *,
    rule: str | None,
    matchers: dict[str, str],
    starts_at: int,
    ends_at: int,
    author: str,
    reason: str,
) -> int:
    if ends_at <= starts_at:
        raise InvalidParameter("ends_at", "a silence must end after it starts")
    if ends_at - starts_at > MAX_SILENCE_DAYS * DAY_US:
        raise InvalidParameter("ends_at", f"a silence lasts at most {MAX_SILENCE_DAYS} days")
    if not reason.strip():
        raise InvalidParameter("reason", "say why the alerts are silenced")
    created = connection.execute(
        silences.insert()
        .values(
            rule=rule,
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            author=author,
            reason=reason.strip(),
            created_at=now_micros(),
        )
        .returning(silences.c.id)
    ).scalar_one()
    return int(created)


def end_silence(connection: Connection, silence_id: int) -> None:
    s = silences.c
    now = now_micros()
    ended = connection.execute(
        update(silences).where(s.id == silence_id, s.ends_at > now).values(ends_at=now)
    ).rowcount
    if not ended:
        raise NotFound(f"silence {silence_id} does not exist or has ended")


def list_silences(
    connection: Connection, active_at: int | None = None, silence_id: int | None = None
) -> list[dict[str, Any]]:
    s = silences.c
    query = select(silences).order_by(s.starts_at.desc(), s.id.desc())
    if active_at is not None:
        query = query.where(s.starts_at <= active_at, s.ends_at > active_at)
    if silence_id is not None:
        query = query.where(s.id == silence_id)
    return [dict(row._mapping) for row in connection.execute(query)]


def is_silenced(
    active: list[dict[str, Any]], rule: str, labels: dict[str, str]
) -> dict[str, Any] | None:
    """The silence that covers an alert instance, if any: same rule (or any rule) and every
    matcher label equal."""
    for silence in active:
        if silence["rule"] not in (None, rule):
            continue
        if all(labels.get(key) == value for key, value in silence["matchers"].items()):
            return silence
    return None


def recent_transitions(connection: Connection, since: int, limit: int = 200) -> list[Any]:
    t, a = alert_transitions.c, alert_instances.c
    query = (
        select(alert_transitions, a.rule, a.labels, a.severity)
        .join(alert_instances, a.id == t.instance_id)
        .where(t.at >= since)
        .order_by(t.at.desc(), t.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]

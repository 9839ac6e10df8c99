"""Alerting: rules, escalation policies, channels, alert instances with their history and
deliveries, acknowledgement, silences, the notification outbox, and each user's own
in-app notifications and preferences (docs/alerts.md, docs/notifications.md).

Every role reads; executives and admins change. A user's own notifications and preferences
are theirs whatever their role."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import Connection

from execmetrics.accounts.service import Identity
from execmetrics.alerts.service import (
    acknowledge,
    create_silence,
    current_policies,
    current_rules,
    end_silence,
    get_instance,
    instance_transitions,
    list_instances,
    list_silences,
)
from execmetrics.api.deps import DbDep, ExecutiveCaller, ServerDep, ViewerCaller
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import (
    AlertDetail,
    AlertOut,
    ChannelOut,
    InboxOut,
    NotificationOut,
    PolicyOut,
    RuleOut,
    SilenceIn,
    SilenceOut,
    TransitionOut,
)
from execmetrics.errors import Conflict, InvalidParameter, NotFound
from execmetrics.notify.inbox import acting_user, list_inbox, mark_all_read
from execmetrics.notify.outbox import list_notifications, requeue
from execmetrics.notify.preferences import Preferences, preferences_of, save_preferences
from execmetrics.notify.registry import current_channels, sealer
from execmetrics.store import versions
from execmetrics.store.tables import channel_versions
from execmetrics.timeutil import format_micros, now_micros, to_micros

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=PROBLEM_RESPONSES)

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/rules", response_model=list[RuleOut])
def rules(_: ViewerCaller, connection: DbDep) -> list[RuleOut]:
    """Every current alert rule, with its version."""
    return [
        RuleOut.model_validate({"version": s.version, **s.rule.model_dump(mode="json")})
        for s in current_rules(connection).values()
    ]


@router.get("/policies", response_model=list[PolicyOut])
def policies(_: ViewerCaller, connection: DbDep) -> list[PolicyOut]:
    """Every current escalation policy, with its version."""
    return [
        PolicyOut.model_validate({"version": s.version, **s.policy.model_dump(mode="json")})
        for s in current_policies(connection).values()
    ]


@router.get("/channels", response_model=list[ChannelOut])
def channels(_: ViewerCaller, connection: DbDep, state: ServerDep) -> list[ChannelOut]:
    """Every channel; secrets are write-only and shown only as whether each is set."""
    stored = versions.latest(connection, channel_versions)
    return [
        ChannelOut(
            name=name,
            version=stored[name].version,
            send_resolved=entry.send_resolved,
            kind=entry.channel.kind,
            settings={k: v for k, v in entry.flat().items() if k not in ("name", "send_resolved")},
        )
        for name, entry in current_channels(connection, sealer(state.settings)).items()
    ]


@router.get("/alerts", response_model=list[AlertOut])
def alerts(
    _: ViewerCaller,
    connection: DbDep,
    firing: Annotated[bool, Query(description="Only alerts firing or recovering")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    """Alert instances, the most recently evaluated first."""
    return [_alert(row) for row in list_instances(connection, firing, limit)]


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def alert(_: ViewerCaller, connection: DbDep, alert_id: Id) -> AlertDetail:
    """One alert with its transitions and every notification it caused: escalation progress
    and delivery status."""
    found = get_instance(connection, alert_id)
    transitions = [
        TransitionOut.model_validate(
            {key: row[key] for key in TransitionOut.model_fields} | {"at": format_micros(row["at"])}
        )
        for row in instance_transitions(connection, alert_id)
    ]
    sent = _notifications(connection, instance_ids=[alert_id])
    return AlertDetail(**_alert(found).model_dump(), transitions=transitions, notifications=sent)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge_alert(caller: ExecutiveCaller, connection: DbDep, alert_id: Id) -> AlertOut:
    """Acknowledge a firing alert: its pending escalation stops for every recipient. Again
    for an acknowledged alert changes nothing."""
    return _alert(acknowledge(connection, alert_id, caller.label))


@router.get("/silences", response_model=list[SilenceOut])
def silences(
    _: ViewerCaller,
    connection: DbDep,
    active: Annotated[bool, Query(description="Only silences in force now")] = False,
) -> list[SilenceOut]:
    return [_silence(row) for row in list_silences(connection, now_micros() if active else None)]


@router.post("/silences", response_model=SilenceOut, status_code=201)
def silence(caller: ExecutiveCaller, connection: DbDep, body: SilenceIn) -> SilenceOut:
    """Silence the notifications of alerts of a rule (or of every rule) whose labels match;
    they keep being evaluated, and their notifications are kept, marked silenced."""
    starts = now_micros() if body.starts_at is None else to_micros(body.starts_at)
    created = create_silence(
        connection, rule=body.rule, matchers=body.matchers, starts_at=starts,
        ends_at=to_micros(body.ends_at), author=caller.label, reason=body.reason,
    )  # fmt: skip
    [row] = list_silences(connection, silence_id=created)
    return _silence(row)


@router.delete("/silences/{silence_id}", status_code=204)
def unsilence(_: ExecutiveCaller, connection: DbDep, silence_id: Id) -> None:
    """End a silence now."""
    end_silence(connection, silence_id)


@router.get("/notifications", response_model=list[NotificationOut])
def outbox(
    _: ViewerCaller,
    connection: DbDep,
    status: Annotated[
        str | None, Query(pattern="^(queued|delivered|dead|silenced)$", description="Only these")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[NotificationOut]:
    """Notifications in the outbox, newest first; `status=dead` lists the dead letters."""
    return _notifications(connection, status=status, limit=limit)


@router.post("/notifications/{notification_id}/retry", response_model=NotificationOut)
def retry(_: ExecutiveCaller, connection: DbDep, notification_id: Id) -> NotificationOut:
    """Send a dead notification again, from its first attempt."""
    if not requeue(connection, notification_id):
        raise Conflict(f"notification {notification_id} is not dead")
    [found] = _notifications(connection, notification_id=notification_id)
    return found


@router.get("/me/notifications", response_model=list[InboxOut])
def my_notifications(
    caller: ViewerCaller,
    connection: DbDep,
    unread: Annotated[bool, Query(description="Only those not yet read")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InboxOut]:
    """The caller's in-app notifications, newest first."""
    user = _own_user(connection, caller)
    return [
        InboxOut(
            id=row["id"],
            severity=row["severity"],
            subject=row["subject"],
            text=row["text"],
            links=row["links"],
            created_at=format_micros(row["created_at"]),
            read_at=format_micros(row["read_at"]) if row["read_at"] else None,
        )
        for row in list_inbox(connection, user, unread=unread, limit=limit)
    ]


@router.post("/me/notifications/read", status_code=204)
def read_my_notifications(caller: ViewerCaller, connection: DbDep) -> None:
    """Mark every one of the caller's in-app notifications as read."""
    mark_all_read(connection, _own_user(connection, caller))


@router.get("/me/preferences", response_model=Preferences)
def my_preferences(caller: ViewerCaller, connection: DbDep) -> Preferences:
    """How the caller is told: channels, time zone, quiet hours, digest."""
    return preferences_of(connection, _own_user(connection, caller))


@router.put("/me/preferences", response_model=Preferences)
def set_my_preferences(caller: ViewerCaller, connection: DbDep, body: Preferences) -> Preferences:
    """Replace the caller's preferences (an unknown time zone or channel is a 422)."""
    known = set(versions.latest(connection, channel_versions))
    for field in ("email_channel", "sms_channel"):
        name = getattr(body, field)
        if name is not None and name not in known:
            raise InvalidParameter(field, f"no channel named {name!r}")
    save_preferences(connection, _own_user(connection, caller), body)
    return body


def _own_user(connection: Connection, caller: Identity) -> int:
    user = acting_user(connection, caller)
    if user is None:
        raise NotFound("notifications and preferences belong to users; sign in as one")
    return user


def _alert(row: dict[str, Any]) -> AlertOut:
    acknowledgements = row["acknowledgements"]
    return AlertOut(
        id=row["id"], rule=row["rule"], labels=row["labels"], severity=row["severity"],
        state=row["health"] or row["phase"], phase=row["phase"], health=row["health"],
        since=format_micros(row["since"]),
        firing_since=format_micros(row["firing_since"]) if row["firing_since"] else None,
        episode=row["episode"], value=row["value"], summary=row["summary"],
        period=row["period"], evaluated_at=format_micros(row["evaluated_at"]),
        policy=row["policy"], policy_version=row["policy_version"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=format_micros(acknowledgements[-1]) if row["acknowledged_by"] else None,
    )  # fmt: skip


def _silence(row: dict[str, Any]) -> SilenceOut:
    return SilenceOut.model_validate(
        row | {key: format_micros(row[key]) for key in ("starts_at", "ends_at", "created_at")}
    )


def _notifications(connection: Connection, **where: Any) -> list[NotificationOut]:
    return [_notification(row) for row in list_notifications(connection, **where)]


def _notification(row: dict[str, Any]) -> NotificationOut:
    times = {
        key: format_micros(row[key]) if row[key] else None
        for key in ("next_attempt_at", "created_at", "delivered_at")
    }
    return NotificationOut(
        id=row["id"], idempotency_key=row["idempotency_key"], instance_id=row["instance_id"],
        channel=row["channel"], recipient=row["recipient"], event=row["event"],
        severity=row["severity"], subject=row["message"]["subject"], status=row["status"],
        attempts=row["attempts"], last_error=row["last_error"],
        next_attempt_at=times["next_attempt_at"] or "", created_at=times["created_at"] or "",
        delivered_at=times["delivered_at"],
    )  # fmt: skip

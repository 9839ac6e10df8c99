"""The transactional outbox: notifications are written in the transaction that decides them
(an alert's state change, an escalation step, a digest) and delivered afterwards, here.

Delivery is at least once: a dispatcher claims due notifications for a while, delivers them,
and records the result; if it dies mid-delivery, the claim runs out and another (or the same
after a restart) delivers again, with the same idempotency key, so a receiver can tell.
A failed attempt is retried with exponential back-off and jitter; after the last attempt, or
a failure that cannot succeed later, the notification is dead and shown as such.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from execmetrics.notify.channels import Channel, DeliveryFailed, deliver_many
from execmetrics.notify.message import InlineImage, Message, Severity
from execmetrics.store.roles import as_role
from execmetrics.store.tables import inbox, notifications, users
from execmetrics.timeutil import now_micros

IN_APP = "in_app"  # the built-in channel: a user's list in the API and the dashboard
MAX_ATTEMPTS = 8
BACKOFF_FIRST_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
# Deliveries recorded together, in one transaction: a dispatcher killed mid-way sends at most
# this many of a channel's notifications again (with the same idempotency keys).
MARK_EVERY = 25
# How long a dispatcher owns the notifications it claimed; longer than any channel's timeout.
CLAIM_SECONDS = 180
SECOND_US = 1_000_000

ChannelLookup = Callable[[str], Channel | None]


def message_to_json(message: Message) -> dict[str, Any]:
    return {
        "idempotency_key": message.idempotency_key,
        "event": message.event,
        "severity": message.severity.value,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "facts": [list(pair) for pair in message.facts],
        "links": [list(pair) for pair in message.links],
        "images": [
            {"content_id": i.content_id, "alt": i.alt, "png": base64.b64encode(i.png).decode()}
            for i in message.images
        ],
    }


def message_from_json(data: dict[str, Any]) -> Message:
    return Message(
        idempotency_key=data["idempotency_key"],
        event=data["event"],
        severity=Severity(data["severity"]),
        subject=data["subject"],
        text=data["text"],
        html=data["html"],
        facts=tuple((label, value) for label, value in data["facts"]),
        links=tuple((title, url) for title, url in data["links"]),
        images=tuple(
            InlineImage(i["content_id"], base64.b64decode(i["png"]), i["alt"])
            for i in data["images"]
        ),
    )


def enqueue(
    connection: Connection,
    message: Message,
    channel: str,
    recipient: str = "",
    *,
    instance_id: int | None = None,
    not_before: int | None = None,
    silenced: bool = False,
) -> bool:
    """Queue one notification in the caller's transaction; False when one with the same
    idempotency key is already queued or sent (so deciding twice sends once). A silenced
    notification is kept, marked silenced, and never sent."""
    now = now_micros()
    row = {
        "idempotency_key": message.idempotency_key,
        "instance_id": instance_id,
        "channel": channel,
        "recipient": recipient,
        "event": message.event,
        "severity": message.severity.value,
        "message": message_to_json(message),
        "status": "silenced" if silenced else "queued",
        "attempts": 0,
        "next_attempt_at": now if not_before is None else max(now, not_before),
        "created_at": now,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(notifications).values(row).on_conflict_do_nothing()
    return connection.execute(statement.returning(notifications.c.id)).first() is not None


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    recipient: str
    message: Message
    attempts: int
    claimed_until: int


def claim_due(engine: Engine, limit: int, now: int | None = None) -> list[Claimed]:
    """Claim up to `limit` due notifications for this dispatcher, in one statement, so two
    dispatchers never claim the same one (the conditions are checked again on each row)."""
    now = now_micros() if now is None else now
    until = now + CLAIM_SECONDS * SECOND_US
    n = notifications.c
    claimable = and_(
        n.status == "queued",
        n.next_attempt_at <= now,
        or_(n.claimed_until.is_(None), n.claimed_until <= now),
    )
    due = select(n.id).where(claimable).order_by(n.next_attempt_at, n.id).limit(limit)
    with engine.begin() as connection:
        as_role(connection, "admin")
        rows = connection.execute(
            update(notifications)
            .where(n.id.in_(due.scalar_subquery()), claimable)
            .values(claimed_until=until)
            .returning(n.id, n.channel, n.recipient, n.message, n.attempts)
        ).all()
    return [
        Claimed(
            row.id, row.channel, row.recipient, message_from_json(row.message), row.attempts, until
        )
        for row in sorted(rows, key=lambda row: row.id)
    ]


@dataclass
class DispatchReport:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def dispatch_due(
    engine: Engine,
    lookup: ChannelLookup,
    allow: Sequence[str] = (),
    *,
    limit: int = 500,
    workers: int = 8,
) -> DispatchReport:
    """Deliver every due notification (up to `limit`), in up to `workers` batches at once:
    the notifications of a channel are split into batches that each share a connection."""
    report = DispatchReport()
    claimed = claim_due(engine, limit)
    if not claimed:
        return report
    batches = _batches(claimed, workers)

    def attempt(batch: list[Claimed]) -> list[str]:
        return _deliver_batch(engine, batch, lookup, allow)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(batches)))) as pool:
        for batch, outcomes in zip(batches, pool.map(attempt, batches), strict=True):
            for item, outcome in zip(batch, outcomes, strict=True):
                if outcome == "delivered":
                    report.delivered += 1
                elif outcome == "retrying":
                    report.retrying += 1
                else:
                    report.dead += 1
                    report.errors.append(f"notification {item.id}: {outcome}")
    return report


def _batches(claimed: list[Claimed], workers: int) -> list[list[Claimed]]:
    """The claimed notifications by channel, each channel's split into at most `workers`
    batches of about equal size; in-app notifications one by one (each is a transaction)."""
    by_channel: dict[str, list[Claimed]] = {}
    for item in claimed:
        by_channel.setdefault(item.channel, []).append(item)
    batches: list[list[Claimed]] = []
    for channel, items in by_channel.items():
        if channel == IN_APP:
            batches.extend([item] for item in items)
            continue
        count = max(1, min(workers, len(items)))
        batches.extend(items[start::count] for start in range(count))
    return batches


def _deliver_batch(
    engine: Engine, batch: list[Claimed], lookup: ChannelLookup, allow: Sequence[str]
) -> list[str]:
    first = batch[0]
    if first.channel == IN_APP:
        return [_deliver_in_app(engine, item) for item in batch]
    channel = lookup(first.channel)
    if channel is None:
        missing = DeliveryFailed(f"channel {first.channel!r} does not exist", retryable=False)
        return [_record_failure(engine, item, missing) for item in batch]
    outcomes: list[str] = []
    for start in range(0, len(batch), MARK_EVERY):
        chunk = batch[start : start + MARK_EVERY]
        messages = [(item.message, (item.recipient,) if item.recipient else ()) for item in chunk]
        failures = deliver_many(channel, messages, allow=allow)
        delivered = [item for item, failure in zip(chunk, failures, strict=True) if not failure]
        if delivered:
            with engine.begin() as connection:
                as_role(connection, "admin")
                _mark_delivered(connection, delivered)
        outcomes.extend(
            "delivered" if failure is None else _record_failure(engine, item, failure)
            for item, failure in zip(chunk, failures, strict=True)
        )
    return outcomes


def _deliver_in_app(engine: Engine, item: Claimed) -> str:
    """The user's own list: written with the delivery record, so exactly once."""
    with engine.begin() as connection:
        as_role(connection, "admin")
        user_id = connection.execute(
            select(users.c.id).where(func.lower(users.c.email) == item.recipient.lower())
        ).scalar()
        if user_id is not None:
            message = item.message
            connection.execute(
                insert(inbox).values(
                    user_id=user_id,
                    notification_id=item.id,
                    severity=message.severity.value,
                    subject=message.subject,
                    text=message.text,
                    links=[list(link) for link in message.links],
                    created_at=now_micros(),
                )
            )
            _mark_delivered(connection, [item])
            return "delivered"
    failure = DeliveryFailed(f"no user {item.recipient!r}", retryable=False)
    return _record_failure(engine, item, failure)


def _mark_delivered(connection: Connection, items: list[Claimed]) -> None:
    n = notifications.c
    connection.execute(
        update(notifications)
        .where(n.id.in_([item.id for item in items]), n.status == "queued")
        .values(
            status="delivered",
            attempts=n.attempts + 1,
            delivered_at=now_micros(),
            claimed_until=None,
            last_error=None,
        )
    )


def _record_failure(engine: Engine, item: Claimed, failure: DeliveryFailed) -> str:
    attempts = item.attempts + 1
    dead = not failure.retryable or attempts >= MAX_ATTEMPTS
    now = now_micros()
    with engine.begin() as connection:
        as_role(connection, "admin")
        n = notifications.c
        connection.execute(
            update(notifications)
            .where(n.id == item.id, n.status == "queued")
            .values(
                status="dead" if dead else "queued",
                attempts=attempts,
                next_attempt_at=now if dead else now + _retry_wait_us(attempts, failure),
                claimed_until=None,
                last_error=failure.detail[:2000],
            )
        )
    return failure.detail if dead else "retrying"


def _retry_wait_us(attempts: int, failure: DeliveryFailed) -> int:
    """The back-off, or longer when the service asked for a longer wait (Retry-After)."""
    asked = int((failure.retry_after or 0) * SECOND_US)
    return max(backoff_us(attempts), min(asked, BACKOFF_CAP_SECONDS * SECOND_US))


def backoff_us(attempts: int, rng: random.Random | None = None) -> int:
    """The wait before the next attempt after `attempts` failures: doubling from 30 seconds
    up to an hour, each drawn between half and all of that ("equal jitter"), so that many
    notifications failing together do not retry together."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1))
    draw = (rng or random).uniform(ceiling / 2, ceiling)
    return int(draw * SECOND_US)


def list_notifications(
    connection: Connection,
    *,
    instance_ids: list[int] | None = None,
    notification_id: int | None = None,
    status: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Notifications in the outbox, newest first, optionally of some alerts or one status."""
    n = notifications.c
    query = select(notifications).order_by(n.id.desc()).limit(limit)
    if instance_ids is not None:
        query = query.where(n.instance_id.in_(instance_ids))
    if notification_id is not None:
        query = query.where(n.id == notification_id)
    if status is not None:
        query = query.where(n.status == status)
    return [dict(row._mapping) for row in connection.execute(query)]


def requeue(connection: Connection, notification_id: int) -> bool:
    """Send a dead notification again (an admin's decision, after fixing the channel)."""
    n = notifications.c
    return bool(
        connection.execute(
            update(notifications)
            .where(n.id == notification_id, n.status == "dead")
            .values(status="queued", attempts=0, next_attempt_at=now_micros(), last_error=None)
        ).rowcount
    )

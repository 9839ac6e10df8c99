"""Who a notification goes to: a recipient ("channel:NAME" or "user:EMAIL") becomes one
delivery per channel, with the user's quiet hours applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from execmetrics.notify.outbox import IN_APP
from execmetrics.notify.preferences import Preferences, all_preferences
from execmetrics.notify.quiet_hours import deferred_until
from execmetrics.store import versions
from execmetrics.store.tables import channel_versions
from execmetrics.timeutil import from_micros, now_micros, to_micros


@dataclass(frozen=True)
class Delivery:
    channel: str  # a channel's name, or in_app
    recipient: str  # '' for a channel's own recipients; else an address or phone number
    not_before: int | None  # the end of the recipient's quiet hours, if they are in them
    send_resolved: bool

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.recipient}"


@dataclass(frozen=True)
class AddressBook:
    """What deciding deliveries reads: every user's preferences, and whether each channel
    tells of resolutions. Read once for an evaluation cycle, whatever it sends."""

    preferences: dict[str, Preferences]
    resolved: dict[str, bool]


def address_book(connection: Connection) -> AddressBook:
    return AddressBook(all_preferences(connection), sends_resolved(connection))


def deliveries(
    book: AddressBook,
    recipients: Sequence[str],
    *,
    severity: str,
    at: int | None = None,
) -> list[Delivery]:
    """The deliveries for `recipients` of a notification due at `at` (now by default)."""
    at = now_micros() if at is None else at
    found: list[Delivery] = []
    for recipient in recipients:
        kind, _, target = recipient.partition(":")
        if kind == "channel":
            found.append(Delivery(target, "", None, book.resolved.get(target, True)))
            continue
        prefs = book.preferences.get(target.lower(), Preferences())
        found.extend(_user_deliveries(target, prefs, severity, at, book.resolved))
    unique = {delivery.key: delivery for delivery in found}
    return list(unique.values())


def _user_deliveries(
    email: str, prefs: Preferences, severity: str, at: int, resolved: dict[str, bool]
) -> list[Delivery]:
    later = deferred_until(prefs.quiet_hours, from_micros(at), severity)
    not_before = None if later is None else to_micros(later)
    found = [Delivery(IN_APP, email, None, True)]  # the in-app list is never held back
    if prefs.email_channel:
        found.append(
            Delivery(
                prefs.email_channel, email, not_before, resolved.get(prefs.email_channel, True)
            )
        )
    if prefs.sms_channel and prefs.phone:
        found.append(
            Delivery(
                prefs.sms_channel, prefs.phone, not_before, resolved.get(prefs.sms_channel, True)
            )
        )
    return found


def sends_resolved(connection: Connection) -> dict[str, bool]:
    """Whether each channel also tells of resolutions (in-app always does)."""
    found = {
        name: bool(stored.definition.get("send_resolved", True))
        for name, stored in versions.latest(connection, channel_versions).items()
    }
    return found | {IN_APP: True}

"""The configured channels, stored as versions like KPIs, with their secrets encrypted.

A channel's secrets are sealed with a key derived from the server's secret key (Fernet:
AES-128-CBC with an HMAC-SHA256), so a copy of the database alone does not give away SMTP
passwords, Slack webhook URLs, Twilio tokens or webhook signing secrets; the API and the
export show only whether each is set.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from execmetrics.config import Settings
from execmetrics.notify.channels import (
    SECRET_FIELDS,
    Channel,
    EmailChannel,
    SlackChannel,
    SmsChannel,
    merge_secrets,
    parse_channel,
    public_view,
)
from execmetrics.notify.urls import UnsafeUrl, check_literal_destination
from execmetrics.store import versions
from execmetrics.store.tables import channel_versions

CHANNEL_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
RESERVED = ("in_app",)  # the built-in in-app channel


class ChannelEntry(BaseModel):
    """A named channel: where it sends (`channel`) and whether it also tells of resolutions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=CHANNEL_NAME)]
    send_resolved: bool = True
    channel: Channel

    @classmethod
    def from_flat(cls, data: dict[str, Any]) -> ChannelEntry:
        """From the flat form of a configuration file: name, send_resolved and the channel's
        own fields side by side."""
        fields = dict(data)
        name = fields.pop("name", None)
        send_resolved = fields.pop("send_resolved", True)
        return cls(name=name, send_resolved=send_resolved, channel=parse_channel(fields))

    def flat(self) -> dict[str, Any]:
        """The flat form without secrets, for export and the API."""
        return {"name": self.name, "send_resolved": self.send_resolved} | public_view(self.channel)


class SecretKeyError(ValueError):
    """A stored secret that the server's secret key cannot open (the key changed)."""


@dataclass(frozen=True)
class Sealer:
    """Seals and opens channel secrets with a key derived from the server's secret key."""

    fernet: Fernet

    @classmethod
    def from_secret(cls, secret_key: str) -> Sealer:
        digest = hashlib.sha256(b"execmetrics channel secrets\0" + secret_key.encode()).digest()
        return cls(Fernet(base64.urlsafe_b64encode(digest)))

    def seal(self, entry: ChannelEntry) -> dict[str, Any]:
        stored: dict[str, Any] = {"name": entry.name, "send_resolved": entry.send_resolved}
        stored |= entry.channel.model_dump(mode="json")
        for field in SECRET_FIELDS[entry.channel.kind]:
            secret = getattr(entry.channel, field)
            stored[field] = (
                None
                if secret is None
                else {"sealed": self.fernet.encrypt(secret.get_secret_value().encode()).decode()}
            )
        return stored

    def open(self, stored: dict[str, Any]) -> ChannelEntry:
        fields = dict(stored)
        for field in SECRET_FIELDS[fields["kind"]]:
            sealed = fields.get(field)
            if isinstance(sealed, dict):
                try:
                    fields[field] = self.fernet.decrypt(sealed["sealed"].encode()).decode()
                except InvalidToken:
                    raise SecretKeyError(
                        f"channel {fields['name']}: {field} was sealed with another secret key; "
                        "set it again"
                    ) from None
        return ChannelEntry.from_flat(fields)


def sealer(settings: Settings) -> Sealer:
    """The sealer of this server's channel secrets."""
    return Sealer.from_secret(settings.secret_key.get_secret_value())


def current_channels(connection: Connection, sealer: Sealer) -> dict[str, ChannelEntry]:
    return {
        name: sealer.open(stored.definition)
        for name, stored in versions.latest(connection, channel_versions).items()
    }


def check_destinations(entries: list[ChannelEntry], allow: Sequence[str]) -> list[str]:
    """Problems with where channels send: an address the outbound guard refuses (private,
    loopback, link-local) unless the allow list names it (docs/notifications.md)."""
    problems = []
    for entry in entries:
        for field, host in _destinations(entry.channel):
            try:
                check_literal_destination(host, allow)
            except UnsafeUrl as error:
                problems.append(f"channels.{entry.name}.{field}: {error.reason}")
    return problems


def _destinations(channel: Channel) -> list[tuple[str, str]]:
    if isinstance(channel, EmailChannel):
        return [("host", channel.host)]
    if isinstance(channel, SlackChannel):
        url = channel.webhook_url.get_secret_value() if channel.webhook_url else ""
        return [("webhook_url", urlsplit(url).hostname or "")] if url else []
    if isinstance(channel, SmsChannel):
        return [("base_url", urlsplit(channel.base_url).hostname or "")]
    return [("url", urlsplit(channel.url).hostname or "")]


def apply_channels(
    connection: Connection,
    entries: list[ChannelEntry],
    sealer: Sealer,
    actor: str,
    prune: bool = False,
    dry_run: bool = False,
) -> versions.Diff:
    """Make the stored channels match `entries`. A secret left out keeps the stored one (as
    long as the channel still sends to the same place); an unchanged channel, secrets
    included, adds no version. The diff never shows a secret, only that it changed."""
    stored = current_channels(connection, sealer)
    merged = {}
    for entry in entries:
        if entry.name in RESERVED:
            raise ValueError(f"channel {entry.name!r}: the name is reserved for the built-in one")
        before = stored.get(entry.name)
        channel = merge_secrets(entry.channel, before.channel if before else None)
        merged[entry.name] = entry.model_copy(update={"channel": channel})
    sealed_before = versions.latest(connection, channel_versions)
    given = {}
    for name, entry in merged.items():
        given[name] = sealer.seal(entry)
        before = stored.get(name)
        if before is None:
            continue
        # Sealing is randomised: keep the stored form of each secret that has not changed, so
        # that only real changes make a new version and show in the diff.
        old, new = _comparable(before), _comparable(entry)
        for field in SECRET_FIELDS[entry.channel.kind]:
            if before.channel.kind == entry.channel.kind and old[field] == new[field]:
                given[name][field] = sealed_before[name].definition[field]
    diff = versions.apply(connection, channel_versions, given, actor, prune, dry_run)
    for name, changes in diff.changed.items():
        secrets = SECRET_FIELDS[merged[name].channel.kind]
        diff.changed[name] = [
            versions.FieldChange(c.field, "(secret)", "(secret)") if c.field in secrets else c
            for c in changes
        ]
    return diff


def _comparable(entry: ChannelEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"name": entry.name, "send_resolved": entry.send_resolved}
    data |= entry.channel.model_dump(mode="json")
    for field in SECRET_FIELDS[entry.channel.kind]:
        secret = getattr(entry.channel, field)
        data[field] = None if secret is None else secret.get_secret_value()
    return data

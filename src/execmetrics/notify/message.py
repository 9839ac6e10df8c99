"""What a notification says, independent of the channel that carries it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class InlineImage:
    """A PNG shown inside an email, referenced from the HTML part as cid:<content_id>."""

    content_id: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class Message:
    """One notification. `idempotency_key` identifies it across retries and restarts: a
    receiver that sees the same key twice is seeing the same notification."""

    idempotency_key: str
    event: str  # firing, resolved, escalated, digest, test
    severity: Severity
    subject: str  # one line, also the SMS text's first line
    text: str  # the plain-text body
    html: str = ""  # the HTML body of an email; empty: the plain text only
    facts: tuple[tuple[str, str], ...] = ()  # label and value pairs, shown as a list
    links: tuple[tuple[str, str], ...] = ()  # title and URL, such as the acknowledge link
    images: tuple[InlineImage, ...] = ()

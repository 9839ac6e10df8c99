"""Generic webhook delivery: a signed JSON POST, and the check its receivers run.

The signature is an HMAC-SHA256, keyed with the channel's secret, over the timestamp, a dot
and the exact body bytes. Signing the timestamp too lets a receiver refuse old requests,
so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from execmetrics.notify.channels import DeliveryFailed, WebhookChannel, http_failure, post_outbound
from execmetrics.notify.message import Message

SIGNATURE_VERSION = "v1"


def send_webhook(
    channel: WebhookChannel,
    message: Message,
    allow: Sequence[str],
    now: Callable[[], float] = time.time,
) -> None:
    """POST the signed message to the channel's URL; any 2xx answer is success."""
    if channel.secret is None:
        raise DeliveryFailed("the webhook channel has no signing secret", retryable=False)
    sent_at = int(now())
    body = webhook_body(message, sent_at)
    timestamp = str(sent_at)
    response = post_outbound(
        channel.url,
        allow,
        service="Webhook",
        timeout=channel.timeout_seconds,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Execmetrics-Timestamp": timestamp,
            "X-Execmetrics-Signature": webhook_signature(
                channel.secret.get_secret_value(), timestamp, body
            ),
            "Idempotency-Key": message.idempotency_key,
        },
    )
    if not response.is_success:
        raise http_failure(response, "Webhook")


def webhook_body(message: Message, sent_at: int) -> bytes:
    """The JSON body: compact with sorted keys, so equal messages give equal bytes."""
    payload = {
        "id": message.idempotency_key,
        "event": message.event,
        "severity": message.severity.value,
        "subject": message.subject,
        "text": message.text,
        "facts": dict(message.facts),
        "links": [{"title": title, "url": url} for title, url in message.links],
        "sent_at": datetime.fromtimestamp(sent_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Execmetrics-Signature value for a body sent at `timestamp` (Unix seconds)."""
    signed = timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_webhook_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_seconds: int = 300,
) -> bool:
    """Whether a received request is authentic and recent: `signature` (the header, which
    may list several comma-separated values while a secret is rotated) holds the right
    HMAC, and `timestamp` is within `tolerance_seconds` of `now`, either way."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = webhook_signature(secret, timestamp, body).encode()
    candidates = [value.strip().encode() for value in signature.split(",")]
    # Every candidate is compared, in constant time, so timing reveals nothing of the HMAC.
    matches = [hmac.compare_digest(candidate, expected) for candidate in candidates]
    return any(matches)

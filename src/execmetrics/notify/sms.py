"""SMS delivery through Twilio's Messages REST API."""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from execmetrics.notify.channels import DeliveryFailed, SmsChannel, http_failure, post_outbound
from execmetrics.notify.message import Message

_BODY_CHARS = 1600  # Twilio's limit for a message body
_TIMEOUT_SECONDS = 10


def send_sms(
    channel: SmsChannel, message: Message, recipients: Sequence[str], allow: Sequence[str]
) -> None:
    """Send the message's SMS text to each number in turn, stopping at the first failure.

    A retry after a failure part-way resends to the numbers already served. Each request
    carries an idempotency token made of the message's key and the number, the same on every
    attempt, so that the resent requests can be recognised as repeats.
    """
    if channel.auth_token is None:
        raise DeliveryFailed("the SMS channel has no Twilio auth token", retryable=False)
    if not recipients:
        raise DeliveryFailed(
            "no recipients: the channel and the delivery name none", retryable=False
        )
    url = f"{channel.base_url.rstrip('/')}/2010-04-01/Accounts/{channel.account_sid}/Messages.json"
    credentials = (channel.account_sid, channel.auth_token.get_secret_value())
    body = sms_text(message)
    for sent, number in enumerate(recipients):
        response = post_outbound(
            url,
            allow,
            service="Twilio",
            timeout=_TIMEOUT_SECONDS,
            https_only=True,  # the request carries the auth token
            data={"To": number, "From": channel.from_number, "Body": body},
            headers={"I-Twilio-Idempotency-Token": f"{message.idempotency_key}:{number}"},
            auth=credentials,
        )
        if not response.is_success:
            raise http_failure(response, "Twilio", _twilio_error(response, number, sent))


def sms_text(message: Message) -> str:
    """The subject, then the first link (an acknowledge link, say) on a line of its own. The
    subject gives way when space runs short, so that the link stays whole."""
    link = message.links[0][1] if message.links else ""
    if not link or len(link) + 1 >= _BODY_CHARS:
        return _cut(message.subject, _BODY_CHARS)
    return _cut(message.subject, _BODY_CHARS - len(link) - 1) + "\n" + link


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _twilio_error(response: httpx.Response, number: str, sent: int) -> str:
    """What Twilio said about the refused number, from its JSON error body when present."""
    explanation = f"refused the message to {number}"
    try:
        error = json.loads(response.content)
    except ValueError:
        error = None
    if isinstance(error, dict) and error.get("message"):
        explanation += f": {error['message']}"
    if isinstance(error, dict) and error.get("code") is not None:
        explanation += f" (Twilio error code {error['code']})"
    if sent:
        explanation += f"; already sent to {sent} other number(s)"
    return explanation

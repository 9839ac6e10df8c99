"""Slack delivery through an incoming webhook, as a Block Kit message."""

from __future__ import annotations

import json
from collections.abc import Sequence

from execmetrics.notify.channels import DeliveryFailed, SlackChannel, http_failure, post_outbound
from execmetrics.notify.message import Message

# Slack's documented limits for the blocks used here.
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELD_CHARS = 2000
_FIELDS_PER_SECTION = 10
_FACT_SECTIONS = 20  # a message holds at most 50 blocks
_BUTTONS = 5
_BUTTON_CHARS = 75
_BUTTON_URL_CHARS = 3000
_TIMEOUT_SECONDS = 10


def send_slack(channel: SlackChannel, message: Message, allow: Sequence[str]) -> None:
    """Post `message` to the channel's webhook. The URL must be https unless the allow list
    names its host: the URL is a credential and must not cross the network in clear."""
    if channel.webhook_url is None:
        raise DeliveryFailed("the Slack channel has no webhook URL", retryable=False)
    response = post_outbound(
        channel.webhook_url.get_secret_value(),
        allow,
        service="Slack",
        timeout=_TIMEOUT_SECONDS,
        https_only=True,
        content=json.dumps(slack_payload(message)).encode(),
        headers={"Content-Type": "application/json"},
    )
    if not response.is_success:
        raise http_failure(response, "Slack")


def slack_payload(message: Message) -> dict[str, object]:
    """The webhook body: `text` for notifications and clients without blocks, and blocks."""
    blocks: list[dict[str, object]] = [_header(message)]
    if message.text.strip():
        blocks.append(_section(escape_mrkdwn(message.text, _SECTION_CHARS)))
    blocks.extend(_fact_sections(message.facts))
    blocks.extend(_actions(message.links))
    blocks.append(_context(message))
    return {"text": escape_mrkdwn(message.subject, _SECTION_CHARS), "blocks": blocks}


def escape_mrkdwn(text: str, limit: int) -> str:
    """`text` with &, < and > escaped as Slack requires (so it cannot form links or
    mentions), cut to `limit` characters without splitting an escape."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    pieces: list[str] = []
    size = 1  # room for the ellipsis
    for character in text:
        piece = _escape(character)
        if size + len(piece) > limit:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, object]:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": shown, "emoji": True}


def _header(message: Message) -> dict[str, object]:
    # Slack rejects an empty text; the event name stands in for a missing subject.
    return {
        "type": "header",
        "text": _plain(message.subject.strip() or message.event, _HEADER_CHARS),
    }


def _section(mrkdwn: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _fact_sections(facts: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    fields = [
        {"type": "mrkdwn", "text": escape_mrkdwn(f"*{label}*\n{value}", _FIELD_CHARS)}
        for label, value in facts
    ]
    chunks = [
        fields[start : start + _FIELDS_PER_SECTION]
        for start in range(0, len(fields), _FIELDS_PER_SECTION)
    ]
    return [{"type": "section", "fields": chunk} for chunk in chunks[:_FACT_SECTIONS]]


def _actions(links: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    """One actions block of link buttons, or none: Slack rejects an empty one."""
    usable = [(title, url) for title, url in links if len(url) <= _BUTTON_URL_CHARS]
    buttons = [
        {"type": "button", "text": _plain(title, _BUTTON_CHARS), "url": url}
        for title, url in usable[:_BUTTONS]
    ]
    return [{"type": "actions", "elements": buttons}] if buttons else []


def _context(message: Message) -> dict[str, object]:
    summary = f"Severity: *{message.severity.value}* · {_escape(message.event)}"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": summary}]}

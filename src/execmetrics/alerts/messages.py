"""What an alert notification says, and the signed link that acknowledges it.

The acknowledge link carries a token signed with a key derived from the server's secret key
(HS256 JWT): it names the alert instance and the firing episode it was sent for, and expires
after a week. Acknowledging is idempotent, so the link acknowledges once; it is refused for
a later episode, whose own notifications carry their own link.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

import jwt

from execmetrics.alerts.conditions import Outcome
from execmetrics.alerts.escalation import EscalationStep
from execmetrics.alerts.rules import AlertRule
from execmetrics.alerts.state import Event, Instance
from execmetrics.errors import NotAuthenticated
from execmetrics.notify.message import Message, Severity
from execmetrics.timeutil import from_micros, now_micros

ACK_LINK_SECONDS = 7 * 24 * 3600
ACK_PURPOSE = "acknowledge-alert"


@dataclass(frozen=True)
class AlertContext:
    """What messages need from the server's configuration."""

    public_url: str  # where the dashboard is reached, for links
    secret_key: str

    def signing_key(self) -> bytes:
        return hashlib.sha256(
            b"execmetrics acknowledge links\0" + self.secret_key.encode()
        ).digest()


def acknowledge_token(context: AlertContext, instance_id: int, episode: int) -> str:
    issued = now_micros() // 1_000_000
    claims = {
        "purpose": ACK_PURPOSE,
        "alert": instance_id,
        "episode": episode,
        "iat": issued,
        "exp": issued + ACK_LINK_SECONDS,
    }
    return jwt.encode(claims, context.signing_key(), algorithm="HS256")


def read_acknowledge_token(context: AlertContext, token: str) -> tuple[int, int]:
    """The alert instance and episode a link acknowledges; NotAuthenticated if the link is
    forged, altered or expired."""
    try:
        claims = jwt.decode(
            token,
            context.signing_key(),
            algorithms=["HS256"],
            options={"require": ["exp", "purpose", "alert", "episode"]},
        )
    except jwt.PyJWTError as error:
        raise NotAuthenticated(f"acknowledge link is not valid ({error})") from None
    if claims["purpose"] != ACK_PURPOSE:
        raise NotAuthenticated("acknowledge link is not valid (wrong purpose)")
    return int(claims["alert"]), int(claims["episode"])


def alert_message(
    context: AlertContext,
    rule: AlertRule,
    instance_id: int,
    instance: Instance,
    event: Event,
    labels: dict[str, str],
    outcome: Outcome | None,
    *,
    key: str,
    summary: str | None = None,
    escalation: EscalationStep | None = None,
) -> Message:
    what = summary or (outcome.summary if outcome else "no value to judge")
    kpi = labels.get("kpi", "")
    state = {Event.FIRING: "FIRING", Event.RESOLVED: "RESOLVED"}[event]
    if escalation is not None:
        state = f"ESCALATED (level {escalation.level + 1})"
    subject = f"[{state}] {rule.name}: {kpi} - {what}"[:200]
    base = context.public_url.rstrip("/")
    links = [("Open alerts", f"{base}/alerts")]
    if event is Event.FIRING:
        token = acknowledge_token(context, instance_id, instance.episode)
        links.insert(0, ("Acknowledge", f"{base}/alerts/acknowledge/{token}"))
    started = from_micros(instance.firing_since) if instance.firing_since else None
    facts = [
        ("Rule", rule.name),
        ("KPI", kpi),
        ("Severity", rule.severity.value),
        ("State", state.lower()),
        *((name, value) for name, value in sorted(labels.items()) if name != "kpi"),
    ]
    if started is not None:
        facts.append(("Firing since", started.strftime("%Y-%m-%d %H:%M UTC")))
    text = "\n".join(
        [what, "", *(f"{label}: {value}" for label, value in facts), "",
         *(f"{title}: {url}" for title, url in links)]
    )  # fmt: skip
    return Message(
        idempotency_key=key,
        event="escalated" if escalation is not None else event.value,
        severity=Severity(rule.severity.value),
        subject=subject,
        text=text,
        html=_html(what, facts, links, rule.description),
        facts=tuple(facts),
        links=tuple(links),
    )


def _html(
    what: str, facts: list[tuple[str, str]], links: list[tuple[str, str]], description: str
) -> str:
    rows = "".join(
        f"<tr><th align='left'>{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in facts
    )
    buttons = " ".join(f"<a href='{escape(url)}'>{escape(title)}</a>" for title, url in links)
    about = f"<p>{escape(description)}</p>" if description else ""
    return f"<p><strong>{escape(what)}</strong></p>{about}<table>{rows}</table><p>{buttons}</p>"

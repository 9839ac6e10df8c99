"""The Alerts page (firing alerts, escalation, deliveries, silences), the signed acknowledge
link of notifications, and the signed-in user's own notifications."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import (
    Identity,
    same_secret,
)
from execmetrics.alerts.escalation import EscalationPolicy
from execmetrics.alerts.messages import AlertContext, read_acknowledge_token
from execmetrics.alerts.rules import LABEL_PATTERN
from execmetrics.alerts.service import (
    DAY_US,
    MAX_SILENCE_DAYS,
    acknowledge,
    create_silence,
    current_rules,
    end_silence,
    find_instance,
    list_instances,
    list_silences,
    policy_version,
    recent_transitions,
)
from execmetrics.api.deps import (
    DbDep,
    ServerDep,
    audit_entry,
    set_database_role,
)
from execmetrics.errors import Conflict, InvalidParameter, NotAuthenticated, NotFound
from execmetrics.notify.inbox import acting_user, list_inbox, mark_all_read
from execmetrics.notify.outbox import list_notifications
from execmetrics.timeutil import now_micros
from execmetrics.web.pages import (
    ExecutiveForm,
    ViewerForm,
    ViewerPage,
    moment,
    render_page,
)

router = APIRouter(include_in_schema=False)

# Alerts ----------------------------------------------------------------------------------------

RECENT_DAYS = 7
MAX_SILENCE_HOURS = MAX_SILENCE_DAYS * 24
HOUR_US = 3_600_000_000
_LABEL = re.compile(LABEL_PATTERN)
_ESCALATION_STEP = re.compile(
    r"alert:(?P<alert>[0-9]+):(?P<episode>[0-9]+):escalated:"
    r"arm(?P<arm>[0-9]+)\.round(?P<round>[0-9]+)\.level(?P<level>[0-9]+)\."
    r"(?P<step_recipient>(?:user|channel):.+)"
)
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass(frozen=True)
class EscalationStepKey:
    """What the idempotency key of an escalation notification says about its step."""

    alert: int
    episode: int
    arm: int
    round: int
    level: int  # from 0, as the policy lists its levels
    step_recipient: str  # user:<email> or channel:<name>, as the policy names it


def parse_escalation_key(key: str, channel: str, recipient: str) -> EscalationStepKey | None:
    """The step of an escalation notification, from its idempotency key
    `alert:{id}:{episode}:escalated:arm{a}.round{r}.level{l}.{step recipient}` followed by
    `:{channel}:{recipient}`; None for a notification that is not an escalation step. The
    channel and recipient are the notification's own, so the step recipient (which has a
    colon of its own, user:<email>) is read whole whatever characters it holds."""
    suffix = f":{channel}:{recipient}"
    if not key.endswith(suffix):
        return None
    found = _ESCALATION_STEP.fullmatch(key[: -len(suffix)])
    if found is None:
        return None
    numbers = {name: int(found[name]) for name in ("alert", "episode", "arm", "round", "level")}
    return EscalationStepKey(**numbers, step_recipient=found["step_recipient"])


def parse_matchers(text: str) -> dict[str, str]:
    """Silence matchers written as label=value pairs, separated by commas or new lines;
    ValueError naming the first pair that is not one."""
    matchers: dict[str, str] = {}
    for written in re.split(r"[,\n]", text):
        pair = written.strip()
        if not pair:
            continue
        label, equals, value = (part.strip() for part in pair.partition("="))
        if not equals or not _LABEL.fullmatch(label) or not 1 <= len(value) <= 200:
            raise ValueError(
                f"{pair!r} is not label=value (a label of lower-case letters, digits and _, "
                "then a value of 1 to 200 characters)"
            )
        if label in matchers:
            raise ValueError(f"the label {label!r} is given twice")
        matchers[label] = value
    return matchers


def parse_hours(text: str) -> int:
    """A silence's duration in hours (a decimal such as 4 or 1.5), as microseconds."""
    problem = f"give a number of hours above 0 and at most {MAX_SILENCE_HOURS} (366 days)"
    try:
        hours = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(problem) from None
    if not hours.is_finite() or not 0 < hours <= MAX_SILENCE_HOURS:
        raise ValueError(problem)
    return int(hours * HOUR_US)


@dataclass(frozen=True)
class SilenceForm:
    """The silence form as submitted, kept to show again beside its problems."""

    rule: str = ""
    matchers: str = ""
    hours: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SilenceRequest:
    rule: str | None
    matchers: dict[str, str]
    duration_us: int
    reason: str


def check_silence_form(
    form: SilenceForm, rules: Collection[str]
) -> tuple[SilenceRequest | None, dict[str, str]]:
    """The silence a form asks for, or the problem with each field it names."""
    problems: dict[str, str] = {}
    rule = form.rule.strip() or None
    if rule is not None and rule not in rules:
        problems["rule"] = f"Rule: there is no rule named {rule!r}."
    matchers: dict[str, str] = {}
    try:
        matchers = parse_matchers(form.matchers)
    except ValueError as error:
        problems["matchers"] = f"Matchers: {error}."
    duration = 0
    try:
        duration = parse_hours(form.hours)
    except ValueError as error:
        problems["hours"] = f"Duration (hours): {error}."
    reason = form.reason.strip()
    if not reason:
        problems["reason"] = "Reason: say why the alerts are silenced."
    elif len(reason) > 2000:
        problems["reason"] = "Reason: at most 2,000 characters."
    if problems:
        return None, problems
    return SilenceRequest(rule, matchers, duration, reason), {}


def _alert_notifications(
    connection: Connection, instance_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """The notifications each alert caused, oldest first, with the step of each escalation."""
    found: dict[int, list[dict[str, Any]]] = {}
    for row in reversed(list_notifications(connection, instance_ids=instance_ids)):
        step = parse_escalation_key(row["idempotency_key"], row["channel"], row["recipient"])
        found.setdefault(row["instance_id"], []).append(row | {"step": step})
    return found


def escalation_progress(
    policy: EscalationPolicy, sent: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each level of the policy with the notifications its steps queued so far."""
    return [
        {
            "number": index + 1,
            "delay_minutes": level.delay_minutes,
            "recipients": level.recipients,
            "deliveries": [n for n in sent if n["step"] is not None and n["step"].level == index],
        }
        for index, level in enumerate(policy.levels)
    ]


def _alert_view(
    connection: Connection, row: dict[str, Any], sent: list[dict[str, Any]]
) -> dict[str, Any]:
    policy = None
    if row["policy"] is not None:
        policy = policy_version(connection, row["policy"], row["policy_version"] or 0)
    acknowledged = row["acknowledged_by"] is not None and bool(row["acknowledgements"])
    return {
        "id": row["id"],
        "rule": row["rule"],
        "kpi": row["labels"].get("kpi", ""),
        "labels": {k: v for k, v in sorted(row["labels"].items()) if k != "kpi"},
        "severity": row["severity"],
        "state": row["health"] or row["phase"],
        "summary": row["summary"],
        "firing_since": row["firing_since"],
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": row["acknowledgements"][-1] if acknowledged else None,
        "policy": row["policy"],
        "escalation": escalation_progress(policy, sent) if policy is not None else None,
        "deliveries": sent,
    }


def _alerts_page(
    request: Request,
    caller: Identity,
    connection: Connection,
    *,
    status: int = 200,
    notice: str | None = None,
    silence_form: SilenceForm | None = None,
    silence_problems: dict[str, str] | None = None,
) -> Response:
    now = now_micros()
    firing = list_instances(connection, alerting_only=True)
    sent = _alert_notifications(connection, [row["id"] for row in firing])
    context = {
        "alerts": [_alert_view(connection, row, sent.get(row["id"], [])) for row in firing],
        "transitions": recent_transitions(connection, now - RECENT_DAYS * DAY_US),
        "recent_days": RECENT_DAYS,
        "silences": list_silences(connection, active_at=now),
        "rules": sorted(current_rules(connection)),
        "can_act": caller.role.includes(Role.EXECUTIVE),
        "notice": notice,
        "silence_form": silence_form or SilenceForm(hours="4"),
        "silence_problems": silence_problems or {},
        "max_hours": MAX_SILENCE_HOURS,
    }
    return render_page(request, "alerts.html", caller, context, status)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, caller: ViewerPage, connection: DbDep) -> Response:
    return _alerts_page(request, caller, connection)


@router.post("/alerts/{alert_id}/acknowledge", response_class=HTMLResponse)
def acknowledge_alert(
    request: Request, caller: ExecutiveForm, connection: DbDep, alert_id: AlertId
) -> Response:
    try:
        acknowledge(connection, alert_id, caller.label)
    except (Conflict, NotFound) as error:
        return _alerts_page(request, caller, connection, status=error.status, notice=error.detail)
    return RedirectResponse(f"/alerts#alert-{alert_id}", status_code=303)


@router.post("/alerts/silences", response_class=HTMLResponse)
def create_silence_from_form(
    request: Request,
    caller: ExecutiveForm,
    connection: DbDep,
    rule: Annotated[str, Form(max_length=200)] = "",
    matchers: Annotated[str, Form(max_length=10_000)] = "",
    hours: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    form = SilenceForm(rule, matchers, hours, reason)
    wanted, problems = check_silence_form(form, current_rules(connection))
    if wanted is not None:
        now = now_micros()
        try:
            create_silence(
                connection, rule=wanted.rule, matchers=wanted.matchers, starts_at=now,
                ends_at=now + wanted.duration_us, author=caller.label, reason=wanted.reason,
            )  # fmt: skip
        except InvalidParameter as error:
            field = "hours" if error.parameter == "ends_at" else error.parameter
            problems = {field: f"{field.capitalize()}: {error.detail}."}
    if problems:
        return _alerts_page(
            request, caller, connection, status=422, silence_form=form, silence_problems=problems
        )
    return RedirectResponse("/alerts#silences", status_code=303)


@router.post("/alerts/silences/{silence_id}/end", response_class=HTMLResponse)
def end_silence_from_form(
    request: Request, caller: ExecutiveForm, connection: DbDep, silence_id: AlertId
) -> Response:
    try:
        end_silence(connection, silence_id)
    except NotFound as error:
        return _alerts_page(request, caller, connection, status=404, notice=error.detail)
    return RedirectResponse("/alerts#silences", status_code=303)


# The signed acknowledge link of notifications --------------------------------------------------

ACKNOWLEDGE_LINK = "/alerts/acknowledge/{token}"
AckToken = Annotated[str, Path(max_length=4000)]


def _link_target(state: ServerDep, token: str) -> tuple[int, int] | None:
    """The alert and episode a signed link acknowledges; None when it is not valid."""
    context = AlertContext(state.settings.public_url, state.settings.secret_key.get_secret_value())
    try:
        return read_acknowledge_token(context, token)
    except NotAuthenticated:
        return None


def link_problem(row: dict[str, Any] | None, episode: int) -> str | None:
    """Why a link cannot acknowledge the alert now, for people; None when it can."""
    if row is None:
        return "This alert no longer exists."
    if row["phase"] not in ("firing", "recovering"):
        return "This alert is not firing any more, so there is nothing to acknowledge."
    if row["episode"] != episode:
        return (
            "This alert has fired again since this link was sent; "
            "use the link in the latest notification."
        )
    if row["acknowledged_by"] is not None:
        at = moment(row["acknowledgements"][-1]) if row["acknowledgements"] else ""
        return f"This alert was already acknowledged by {row['acknowledged_by']} {at}".strip()
    return None


def _link_page(
    request: Request,
    status: int = 200,
    *,
    token: str | None = None,
    alert: dict[str, Any] | None = None,
    problem: str | None = None,
    done: bool = False,
) -> Response:
    context = {"token": token, "alert": alert, "problem": problem, "done": done}
    return render_page(request, "acknowledge_link.html", None, context, status)


def _invalid_link(request: Request) -> Response:
    problem = "This acknowledge link is not valid or has expired."
    return _link_page(request, 401, problem=problem)


@router.get(ACKNOWLEDGE_LINK, response_class=HTMLResponse)
def acknowledge_link_form(
    request: Request, connection: DbDep, state: ServerDep, token: AckToken
) -> Response:
    """The confirmation behind the link: fetching it changes nothing, so a mail client's link
    scanner cannot acknowledge; the button posts the token back."""
    target = _link_target(state, token)
    if target is None:
        return _invalid_link(request)
    alert_id, episode = target
    set_database_role(connection, Role.VIEWER)
    row = find_instance(connection, alert_id)
    return _link_page(request, token=token, alert=row, problem=link_problem(row, episode))


@router.post(ACKNOWLEDGE_LINK, response_class=HTMLResponse)
def acknowledge_by_link(
    request: Request,
    connection: DbDep,
    state: ServerDep,
    token: AckToken,
    posted: Annotated[str, Form(alias="token", max_length=4000)] = "",
) -> Response:
    """Acknowledge as `link:<alert id>` for the episode the link was sent for. The token is
    the credential: the form carries it and it is verified again here."""
    entry = audit_entry(request, None)
    entry.resource = ACKNOWLEDGE_LINK  # the token is a credential: never in the audit trail
    request.state.audit = entry
    target = _link_target(state, posted) if same_secret(posted, token) else None
    if target is None:
        return _invalid_link(request)
    alert_id, episode = target
    entry.identity = f"link:{alert_id}"
    set_database_role(connection, Role.EXECUTIVE)
    row = find_instance(connection, alert_id)
    problem = link_problem(row, episode)
    if problem is not None:
        return _link_page(request, 409, alert=row, problem=problem)
    try:
        acknowledged = acknowledge(connection, alert_id, entry.identity, episode)
    except (Conflict, NotFound):
        return _link_page(request, 409, alert=row, problem=link_problem(row, episode))
    return _link_page(request, alert=acknowledged, done=True)


# The signed-in user's notifications ------------------------------------------------------------

INBOX_LIMIT = 200


def _inbox(connection: Connection, user: int) -> list[dict[str, Any]]:
    """The user's in-app notifications, newest first, with their links to this server."""
    return [
        row
        | {
            "links": [
                (t, url) for t, url in row["links"] if url.startswith(("https://", "http://"))
            ]
        }
        for row in list_inbox(connection, user, limit=INBOX_LIMIT)
    ]


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, caller: ViewerPage, connection: DbDep) -> Response:
    user = acting_user(connection, caller)
    items = _inbox(connection, user) if user is not None else []
    return render_page(
        request, "notifications.html", caller, {"items": items, "has_inbox": user is not None}
    )


@router.post("/notifications/read-all", response_class=HTMLResponse)
def mark_notifications_read(caller: ViewerForm, connection: DbDep) -> Response:
    user = acting_user(connection, caller)
    if user is not None:
        mark_all_read(connection, user)
    return RedirectResponse("/notifications", status_code=303)

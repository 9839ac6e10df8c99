"""The scheduled executive digest (docs/notifications-digest.md): the headline KPIs with
their change, target and benchmark band, the alerts firing, and the week's biggest MRR
movements, sent to each user who asked for it on their own schedule and in their own time
zone, through the outbox like any other notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim
from sqlalchemy import Connection, func, select

from execmetrics.accounts.roles import Role
from execmetrics.alerts.messages import AlertContext
from execmetrics.kpi.benchmarks import Band, band_beside, load_bands
from execmetrics.kpi.definitions import Category, KpiDefinition
from execmetrics.kpi.evaluation import current_values, value_history
from execmetrics.kpi.service import current_kpis
from execmetrics.kpi.targets import period_interval
from execmetrics.metrics.periods import label, parse_label, shift_periods, time_zone
from execmetrics.metrics.service import as_decimal
from execmetrics.money import Money, round_half_up
from execmetrics.notify.charts import sparkline_png
from execmetrics.notify.message import InlineImage, Message, Severity
from execmetrics.notify.outbox import enqueue
from execmetrics.notify.preferences import DEFAULT_DIGEST_SCHEDULE, Preferences, all_preferences
from execmetrics.render import format_kpi_value
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import (
    alert_instances,
    customers,
    mrr_movements,
    notifications,
    users,
)
from execmetrics.timeutil import from_micros

HEADLINE_LIMIT = 8
HEADLINE_CATEGORIES = (Category.FINANCIAL, Category.CUSTOMER)
# Within those categories, KPIs on these metrics (overall, not one group of a breakdown)
# lead, in this order: the figures a board asks for first.
HEADLINE_METRICS = (
    "mrr_end",
    "arr",
    "mrr_growth",
    "net_new_mrr",
    "customers_end",
    "customer_churn_rate",
    "nrr_12m",
    "gross_mrr_churn_rate",
)
# A percent change means something for an amount; for a rate, the change in points says it.
AMOUNT_UNITS = frozenset({"money", "count", "days"})
SPARKLINE_PERIODS = 12
MOVEMENT_WINDOW_US = 7 * 24 * 3600 * 1_000_000
MOVEMENT_LIMIT = 5
ALERT_LIMIT = 20
ALERTING_PHASES = ("firing", "recovering")  # a recovering alert has not resolved yet
SEVERITY_ORDER = ("critical", "warning", "info")
# How late a digest may still go out: a server down for some hours catches up, one down
# for days does not send last week's digest.
CATCH_UP = timedelta(hours=24)
CADENCES = {timedelta(days=1): "Daily", timedelta(days=7): "Weekly"}


@dataclass(frozen=True)
class Headline:
    """One headline KPI as of its latest stored period."""

    name: str
    title: str
    unit: str
    period: str
    value: Fraction
    previous: Fraction | None  # the value of the period before, when stored
    goal: Fraction | None
    met: bool | None  # None: no target applies to the period
    band: Band | None  # only a band on the same basis as the KPI's period
    recent: tuple[float | None, ...]  # up to the last 12 periods, oldest first, for the chart


@dataclass(frozen=True)
class FiringAlert:
    rule: str
    kpi: str
    severity: str
    summary: str
    firing_since: int | None


@dataclass(frozen=True)
class Movement:
    customer: str  # the customer's name, or its id when it has none
    kind: str  # new, expansion, reactivation, contraction or churn
    amount: int  # the change of MRR, minor units of the reporting currency
    occurred_at: int


@dataclass(frozen=True)
class DigestContent:
    """Everything a digest says, before it is written as text, HTML and facts."""

    cadence: str
    recipient: str
    zone: ZoneInfo
    now_us: int
    currency: str
    headlines: list[Headline]
    alerts: list[FiringAlert]
    movements: list[Movement] | None  # None: the recipient may not see customer-level data


# What goes in the digest.


def headline_kpis(connection: Connection, bands: list[Band]) -> list[Headline]:
    """Up to eight KPIs with a value: financial and customer KPIs first, the well-known
    figures of HEADLINE_METRICS leading, then by category and name."""
    stored = current_kpis(connection)
    latest = {row["name"]: row for row in current_values(connection) if row["value"] is not None}
    names = sorted(latest, key=lambda name: _headline_rank(stored[name].definition))
    return [
        _headline(connection, stored[name].definition, latest[name], bands)
        for name in names[:HEADLINE_LIMIT]
    ]


def _headline_rank(definition: KpiDefinition) -> tuple[int, int, int, str]:
    known = len(HEADLINE_METRICS)
    if definition.group is None and definition.metric in HEADLINE_METRICS:
        known = HEADLINE_METRICS.index(definition.metric)
    return (
        0 if definition.category in HEADLINE_CATEGORIES else 1,
        known,
        list(Category).index(definition.category),
        definition.name,
    )


def _headline(
    connection: Connection, definition: KpiDefinition, latest: dict[str, Any], bands: list[Band]
) -> Headline:
    period: str = latest["period"]
    history = value_history(connection, definition.name, last=period)
    previous = history[-1]["previous"] if history and history[-1]["period"] == period else None
    return Headline(
        name=definition.name,
        title=definition.title,
        unit=definition.unit.value,
        period=period,
        value=latest["value"],
        previous=previous,
        goal=latest["goal"],
        met=latest["met"],
        band=band_beside(bands, definition.name, definition.metric, period),
        recent=tuple(_as_float(row["value"]) for row in history[-SPARKLINE_PERIODS:]),
    )


def _as_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)  # for drawing only


def firing_alerts(connection: Connection) -> list[FiringAlert]:
    """Every alert firing now (or recovering, not yet resolved): the most severe first, then
    the longest firing."""
    a = alert_instances.c
    rows = connection.execute(
        select(a.rule, a.labels, a.severity, a.summary, a.firing_since).where(
            a.phase.in_(ALERTING_PHASES)
        )
    )
    alerts = [
        FiringAlert(row.rule, _kpi_label(row.labels), row.severity, row.summary, row.firing_since)
        for row in rows
    ]
    return sorted(alerts, key=_alert_order)


def _kpi_label(labels: object) -> str:
    return str(labels.get("kpi", "")) if isinstance(labels, dict) else ""


def _alert_order(alert: FiringAlert) -> tuple[int, int, str, str]:
    rank = SEVERITY_ORDER.index(alert.severity) if alert.severity in SEVERITY_ORDER else 0
    since = alert.firing_since if alert.firing_since is not None else 0
    return (rank, since, alert.rule, alert.kpi)


def biggest_movements(connection: Connection, now_us: int) -> list[Movement]:
    """The five largest changes of a customer's MRR (by size, up or down) in the seven days
    before `now_us`."""
    m, c = mrr_movements.c, customers.c
    amount = (m.mrr_after - m.mrr_before).label("amount")
    rows = connection.execute(
        select(c.customer_id, c.name, m.type, amount, m.occurred_at)
        .join_from(mrr_movements, customers, c.id == m.customer_key)
        .where(m.occurred_at >= now_us - MOVEMENT_WINDOW_US, m.occurred_at < now_us)
        .order_by(func.abs(m.mrr_after - m.mrr_before).desc(), m.occurred_at, m.id)
        .limit(MOVEMENT_LIMIT)
    )
    return [
        Movement(row.name or row.customer_id, row.type, int(row.amount), row.occurred_at)
        for row in rows
    ]


def sees_customers(connection: Connection, email: str) -> bool:
    """Whether the user's role may see customer-level data (executives and admins), as the
    API allows: the movements name customers."""
    role = connection.execute(
        select(users.c.role).where(func.lower(users.c.email) == email.lower())
    ).scalar()
    return role is not None and Role(role).includes(Role.EXECUTIVE)


def cadence(schedule: str) -> str:
    """'Daily' or 'Weekly' for a schedule that repeats so, else 'Executive': the subject's
    first word."""
    times = CronSim(schedule, datetime(2024, 1, 1))
    first, second = next(times), next(times)
    return CADENCES.get(second - first, "Executive")


# How it reads.


def _signed(delta: Fraction, unit: str, currency: str) -> str:
    sign = "-" if delta < 0 else "+"
    if unit == "percent":
        return f"{sign}{as_decimal(abs(delta) * 100):.2f} pts"
    return sign + format_kpi_value(abs(delta), unit, currency)


def percent_change(value: Fraction, previous: Fraction | None, unit: str) -> str | None:
    """The change as a percentage of the value before, to one place (halves away from zero);
    None for a rate, or when the value before was not above zero."""
    if previous is None or previous <= 0 or unit not in AMOUNT_UNITS:
        return None
    tenths = round_half_up((value - previous) * 1000 / previous)
    return f"{'-' if tenths < 0 else '+'}{abs(tenths) // 10:,}.{abs(tenths) % 10}%"


def previous_period(period: str) -> str:
    """The label of the period before: 2024-06 for 2024-07, 2024-Q1 for 2024-Q2."""
    interval = period_interval(period)
    return label(shift_periods(parse_label(period, "period"), interval, 1), interval)


def change_text(headline: Headline, currency: str) -> str:
    before = previous_period(headline.period)
    if headline.previous is None:
        return f"no value for {before}"
    delta = headline.value - headline.previous
    if delta == 0:
        return f"no change on {before}"
    percent = percent_change(headline.value, headline.previous, headline.unit)
    shown = _signed(delta, headline.unit, currency)
    return f"{shown} ({percent}) on {before}" if percent else f"{shown} on {before}"


def target_text(headline: Headline, currency: str) -> str:
    verdict = {True: "met", False: "missed", None: ""}[headline.met]
    if headline.goal is not None:
        goal = f"goal {format_kpi_value(headline.goal, headline.unit, currency)}"
        return f"{goal}, {verdict}" if verdict else goal
    return f"targets {verdict}" if verdict else "no target"


def band_text(headline: Headline, currency: str) -> str:
    band = headline.band
    if band is None:
        return ""
    figures = " · ".join(
        f"{name} {format_kpi_value(value, headline.unit, currency)}"
        for name, value in band.figures().items()
    )
    return f"{figures} ({band.source.publisher}, {band.source.year})"


def value_text(headline: Headline, currency: str) -> str:
    return format_kpi_value(headline.value, headline.unit, currency)


def _signed_money(amount: int, currency: str) -> str:
    return ("-" if amount < 0 else "+") + Money(abs(amount), currency).format()


def _local(micros: int, zone: ZoneInfo) -> str:
    return from_micros(micros).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _since(alert: FiringAlert, zone: ZoneInfo) -> str:
    return "" if alert.firing_since is None else _local(alert.firing_since, zone)


def subject(content: DigestContent) -> str:
    parts = []
    if content.headlines:
        first = content.headlines[0]
        figure = f"{first.title} {value_text(first, content.currency)}"
        percent = percent_change(first.value, first.previous, first.unit)
        parts.append(f"{figure} ({percent})" if percent else figure)
    count = len(content.alerts)
    parts.append(
        f"{count} alert{'' if count == 1 else 's'} firing" if count else "no alerts firing"
    )
    return f"{content.cadence} digest: {', '.join(parts)}"[:200]


def _heading(content: DigestContent) -> str:
    moment = from_micros(content.now_us).astimezone(content.zone)
    when = f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M %Z}"
    return f"{content.cadence} digest for {content.recipient}, {when}"


def _kpi_lines(headline: Headline, currency: str) -> list[str]:
    lines = [
        f"- {headline.title} ({headline.period}): {value_text(headline, currency)}",
        f"  change: {change_text(headline, currency)}",
        f"  target: {target_text(headline, currency)}",
    ]
    if headline.band is not None:
        lines.append(f"  benchmark: {band_text(headline, currency)}")
    return lines


def _alert_line(alert: FiringAlert, zone: ZoneInfo) -> str:
    where = f" on {alert.kpi}" if alert.kpi else ""
    since = _since(alert, zone)
    when = f" (firing since {since})" if since else ""
    return f"- [{alert.severity}] {alert.rule}{where}: {alert.summary}{when}"


def _movement_line(movement: Movement, content: DigestContent) -> str:
    amount = _signed_money(movement.amount, content.currency)
    day = from_micros(movement.occurred_at).astimezone(content.zone).date().isoformat()
    return f"- {movement.customer}: {movement.kind} {amount} on {day}"


def _alerts_heading(alerts: Sequence[FiringAlert]) -> str:
    return f"Alerts firing ({len(alerts)})" if alerts else "No alerts firing"


def _links(context: AlertContext, content: DigestContent) -> list[tuple[str, str]]:
    base = context.public_url.rstrip("/")
    links = [("Open dashboard", f"{base}/")]
    if content.alerts:
        links.append(("Open alerts", f"{base}/alerts"))
    return links


def digest_text(content: DigestContent, links: Sequence[tuple[str, str]]) -> str:
    """The plain-text part: everything the HTML says, without the charts."""
    lines = [_heading(content), "", "Headline KPIs"]
    for headline in content.headlines:
        lines.extend(_kpi_lines(headline, content.currency))
    if not content.headlines:
        lines.append("- no KPI has a value yet")
    lines.extend(["", _alerts_heading(content.alerts)])
    lines.extend(_alert_line(alert, content.zone) for alert in content.alerts[:ALERT_LIMIT])
    if len(content.alerts) > ALERT_LIMIT:
        lines.append(f"- and {len(content.alerts) - ALERT_LIMIT} more")
    if content.movements is not None:
        lines.extend(["", "Biggest MRR movements, last 7 days"])
        lines.extend(_movement_line(movement, content) for movement in content.movements)
        if not content.movements:
            lines.append("- none")
    lines.append("")
    lines.extend(f"{title}: {url}" for title, url in links)
    return "\n".join(lines)


def content_id(headline: Headline) -> str:
    return f"kpi-{headline.name}"


def _html_kpi_rows(headline: Headline, currency: str) -> str:
    """The KPI's figures in one row and its chart, at full size, in the row below."""
    cells = [
        f"<strong>{escape(headline.title)}</strong><br><small>{escape(headline.period)}</small>",
        f"<strong>{escape(value_text(headline, currency))}</strong>",
        escape(change_text(headline, currency)),
        escape(target_text(headline, currency)),
        escape(band_text(headline, currency)),
    ]
    figures = "".join(f"<td valign='top'>{cell}</td>" for cell in cells)
    chart = (
        f"<img src='cid:{escape(content_id(headline))}' width='480' height='120' "
        f"alt='{escape(_chart_alt(headline))}'>"
    )
    return f"<tr>{figures}</tr><tr><td colspan='{len(cells)}'>{chart}</td></tr>"


def _html_kpis(content: DigestContent) -> str:
    if not content.headlines:
        return "<p>No KPI has a value yet.</p>"
    head = "".join(
        f"<th align='left'>{name}</th>"
        for name in ("KPI", "Value", "Change", "Target", "Benchmark")
    )
    rows = "".join(_html_kpi_rows(headline, content.currency) for headline in content.headlines)
    return f"<table cellpadding='6'><tr>{head}</tr>{rows}</table>"


def _html_alert(alert: FiringAlert, zone: ZoneInfo) -> str:
    where = f" on {alert.kpi}" if alert.kpi else ""
    since = _since(alert, zone)
    when = f" (firing since {since})" if since else ""
    return (
        f"<li><strong>[{escape(alert.severity)}] {escape(alert.rule)}</strong>"
        f"{escape(where)}: {escape(alert.summary)}{escape(when)}</li>"
    )


def _html_alerts(content: DigestContent) -> str:
    items = "".join(_html_alert(alert, content.zone) for alert in content.alerts[:ALERT_LIMIT])
    more = len(content.alerts) - ALERT_LIMIT
    extra = f"<li>and {more} more</li>" if more > 0 else ""
    body = f"<ul>{items}{extra}</ul>" if content.alerts else ""
    return f"<h2>{escape(_alerts_heading(content.alerts))}</h2>{body}"


def _html_movements(content: DigestContent) -> str:
    if content.movements is None:
        return ""
    if not content.movements:
        return "<h2>Biggest MRR movements, last 7 days</h2><p>None.</p>"
    rows = "".join(
        f"<tr><td>{escape(m.customer)}</td><td>{escape(m.kind)}</td>"
        f"<td align='right'>{escape(_signed_money(m.amount, content.currency))}</td>"
        f"<td>{escape(from_micros(m.occurred_at).astimezone(content.zone).date().isoformat())}"
        "</td></tr>"
        for m in content.movements
    )
    return f"<h2>Biggest MRR movements, last 7 days</h2><table cellpadding='4'>{rows}</table>"


def digest_html(content: DigestContent, links: Sequence[tuple[str, str]]) -> str:
    """The HTML part: the KPI table with a chart in each row (cid: images), the alerts and
    the movements."""
    buttons = " · ".join(f"<a href='{escape(url)}'>{escape(title)}</a>" for title, url in links)
    return (
        f"<p><strong>{escape(_heading(content))}</strong></p><h2>Headline KPIs</h2>"
        f"{_html_kpis(content)}{_html_alerts(content)}{_html_movements(content)}"
        f"<p>{buttons}</p>"
    )


def _facts(content: DigestContent) -> tuple[tuple[str, str], ...]:
    """Label and value pairs for channels that show a list (Slack): each KPI and its change."""
    facts = [
        (h.title, f"{value_text(h, content.currency)} · {change_text(h, content.currency)}")
        for h in content.headlines
    ]
    facts.append(("Alerts firing", str(len(content.alerts))))
    return tuple(facts)


def _chart_alt(headline: Headline) -> str:
    return f"{headline.title}, last {len(headline.recent)} periods"


def _chart(headline: Headline) -> InlineImage:
    target = None if headline.goal is None else float(headline.goal)
    png = sparkline_png(headline.recent, title=headline.title, target=target)
    return InlineImage(content_id(headline), png, _chart_alt(headline))


@dataclass(frozen=True)
class HeadlineCharts:
    """The headline KPIs and their charts: the same in every digest composed at one time."""

    headlines: list[Headline]
    images: tuple[InlineImage, ...]


def headline_charts(connection: Connection, bands: list[Band]) -> HeadlineCharts:
    headlines = headline_kpis(connection, bands)
    return HeadlineCharts(headlines, tuple(_chart(headline) for headline in headlines))


def digest_message(
    connection: Connection,
    context: AlertContext,
    user_email: str,
    prefs: Preferences,
    now_us: int,
    *,
    key: str,
    bands: list[Band] | None = None,
    charts: HeadlineCharts | None = None,
) -> Message:
    """The digest for one user as of `now_us`, with `key` as its idempotency key. `bands`
    defaults to the shipped benchmark bands; `charts` are the headlines already drawn for
    another digest of the same time."""
    schedule = prefs.digest.schedule if prefs.digest else DEFAULT_DIGEST_SCHEDULE
    if charts is None:
        charts = headline_charts(connection, load_bands() if bands is None else bands)
    content = DigestContent(
        cadence=cadence(schedule),
        recipient=user_email,
        zone=time_zone(prefs.time_zone),
        now_us=now_us,
        currency=reporting_currency(connection),
        headlines=charts.headlines,
        alerts=firing_alerts(connection),
        movements=biggest_movements(connection, now_us)
        if sees_customers(connection, user_email)
        else None,
    )
    links = _links(context, content)
    return Message(
        idempotency_key=key,
        event="digest",
        severity=Severity.INFO,
        subject=subject(content),
        text=digest_text(content, links),
        html=digest_html(content, links),
        facts=_facts(content),
        links=tuple(links),
        images=charts.images,
    )


# When it goes out.


def latest_scheduled(schedule: str, zone_name: str, now_us: int) -> datetime | None:
    """The latest time the cron `schedule` names, read as wall-clock time in the zone, at or
    before `now_us`, in UTC; None when that was more than 24 hours ago."""
    now = from_micros(now_us)
    # Reverse iteration starts one tick before its start: a second after now finds now.
    start = (now.replace(microsecond=0) + timedelta(seconds=1)).astimezone(time_zone(zone_name))
    try:
        scheduled = next(CronSim(schedule, start, reverse=True)).astimezone(UTC)
    except StopIteration:
        return None
    return scheduled if now - scheduled <= CATCH_UP else None


def digest_key(email: str, scheduled: datetime) -> str:
    """The idempotency key of one user's digest for one scheduled time: queued once."""
    return f"digest:{email.lower()}:{scheduled.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def _already_queued(connection: Connection, key: str) -> bool:
    n = notifications.c
    return connection.execute(select(n.id).where(n.idempotency_key == key)).first() is not None


def _disabled_users(connection: Connection) -> set[str]:
    rows = connection.execute(select(users.c.email).where(users.c.disabled_at.is_not(None)))
    return {row.email.lower() for row in rows}


def queue_due_digests(
    connection: Connection, context: AlertContext, now_us: int, *, bands: list[Band] | None = None
) -> int:
    """Queue the digest of each user whose schedule came due in the last 24 hours and whose
    digest for that time is not queued yet; the number queued. Cheap when nothing is due:
    a digest is composed (charts drawn) only when its key is new."""
    disabled = _disabled_users(connection)
    charts: HeadlineCharts | None = None  # drawn for the first digest due, shared by the rest
    queued = 0
    for email, prefs in sorted(all_preferences(connection).items()):
        if prefs.digest is None or email in disabled:
            continue
        scheduled = latest_scheduled(prefs.digest.schedule, prefs.time_zone, now_us)
        if scheduled is None:
            continue
        key = digest_key(email, scheduled)
        if _already_queued(connection, key):
            continue
        if charts is None:
            charts = headline_charts(connection, load_bands() if bands is None else bands)
        message = digest_message(connection, context, email, prefs, now_us, key=key, charts=charts)
        queued += enqueue(connection, message, prefs.digest.channel, recipient=email)
    return queued

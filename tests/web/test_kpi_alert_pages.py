"""The KPIs, alerts and notifications pages in a real browser, with real data: a small company
ingested, its KPIs evaluated, alert rules applied as code and evaluated until they fire, and
notifications delivered by the dispatcher.

`execmetrics serve` runs on SQLite, and on PostgreSQL as the application role, so row-level
security applies to every page as it does in production. Chromium is driven with Playwright.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select
from tests.builders import cancel, ingest, start
from tests.notify.servers import Reply, http_recorder
from tests.web.browsing import (
    ANALYST,
    DATABASES,
    PAGE_SETTINGS,
    PASSWORD,
    SECRET,
    VIEWER,
    Site,
    Tab,
    free_port,
    fresh_database,
    local_url,
    open_tab,
    serving,
    sign_in,
)

from execmetrics import render
from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_user
from execmetrics.alerts.engine import evaluate_rules
from execmetrics.alerts.escalation import EscalationPolicy
from execmetrics.alerts.messages import AlertContext, acknowledge_token
from execmetrics.alerts.service import list_instances
from execmetrics.analytics.quality_store import refresh_quality
from execmetrics.as_code import apply_declared, parse_declared
from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.evaluation import current_values, record_evaluations
from execmetrics.notify.channels import parse_channel
from execmetrics.notify.message import Message, Severity
from execmetrics.notify.outbox import IN_APP, dispatch_due, enqueue
from execmetrics.notify.registry import Sealer
from execmetrics.store.tables import silences
from execmetrics.timeutil import now_micros
from execmetrics.web.alert_pages import (
    EscalationStepKey,
    SilenceForm,
    check_silence_form,
    escalation_progress,
    link_problem,
    parse_escalation_key,
    parse_hours,
    parse_matchers,
)
from execmetrics.web.kpi_pages import kpi_status

CEO, CFO = "ceo@example.com", "cfo@example.com"
USERS = {CEO: Role.EXECUTIVE, CFO: Role.EXECUTIVE, VIEWER: Role.VIEWER, ANALYST: Role.ANALYST}
EVALUATED_ON = date(2025, 3, 15)
RECURLY = "https://recurly.com/research/annual-subscription-billling-metrics-report"
CHURNZERO = "https://churnzero.com/blog/saas-customer-retention-benchmarks/"

# Two KPIs get targets (one met, one missed); two rules fire on MRR and ARR, the first with a
# webhook, the chief executive's in-app list and an escalation policy, the second in-app only.
DECLARED = """\
kpis:
  - name: customers
    title: Paying customers
    metric: customers_end
    category: customer
    unit: count
    direction: higher_is_better
    period: month_to_date
    targets:
      - {kind: threshold, at_least: 5}
  - name: new_customers
    title: New customers
    metric: new_customers
    category: customer
    unit: count
    direction: higher_is_better
    targets:
      - {kind: recurring, every: month, value: 10}
channels:
  - name: finance-hook
    kind: webhook
    url: https://hooks.example/finance
    secret: "0123456789abcdef0123"
policies:
  - name: revenue-oncall
    levels:
      - delay_minutes: 0
        recipients: [user:cfo@example.com]
      - delay_minutes: 30
        recipients: [user:ceo@example.com]
rules:
  - name: mrr-floor
    kpi: mrr
    severity: critical
    condition: {kind: threshold, below: "50000000", recover_above: "60000000"}
    notify: [channel:finance-hook, user:ceo@example.com]
    policy: revenue-oncall
  - name: arr-floor
    kpi: arr
    severity: warning
    condition: {kind: threshold, below: "600000000"}
    notify: [user:ceo@example.com]
"""


def company() -> list[dict[str, str | None]]:
    """A customer a month from January 2024, each paying a little more; two leave."""
    events = []
    for n in range(1, 15):
        month = f"{2024 + (n - 1) // 12}-{(n - 1) % 12 + 1:02d}"
        events.append(start(f"e{n}", f"c{n}", f"s{n}", f"{month}-05T09:00:00Z", 10_000 + 1_000 * n))
    events.append(cancel("x3", "c3", "s3", "2024-11-10T09:00:00Z"))
    events.append(cancel("x1", "c1", "s1", "2025-02-10T09:00:00Z"))
    return events


def prepare(engine: Engine, context: AlertContext) -> None:
    """Users, KPI targets, a channel, a policy and rules; the company; KPIs evaluated for 13
    periods; the rules evaluated (both fire); and one round of delivery, in which the in-app
    notifications arrive and the webhook refuses its message for good."""
    with engine.begin() as connection:
        for email, role in USERS.items():
            create_user(connection, email, PASSWORD, role)
        declared = parse_declared(DECLARED, "dashboard.yaml")
        apply_declared(connection, declared, "test", Sealer.from_secret(SECRET))
    ingest(engine, events=company())
    with engine.begin() as connection:
        refresh_quality(connection, now_micros())  # as the analytics job does
        record_evaluations(connection, EVALUATED_ON, periods=13)
        assert evaluate_rules(connection, context, now_micros()).fired == 2
    with http_recorder(Reply(400, b"no such hook")) as hook:
        webhook = parse_channel({"kind": "webhook", "url": hook.url, "secret": "s" * 32})
        dispatch_due(engine, {"finance-hook": webhook}.get, ("127.0.0.1/32",))


@dataclass(frozen=True)
class AlertSite(Site):
    engine: Engine
    context: AlertContext

    def alert(self, rule: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            [found] = [row for row in list_instances(connection) if row["rule"] == rule]
        return found

    def kpi(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            [found] = [row for row in current_values(connection) if row["name"] == name]
        return found


@pytest.fixture(scope="module", params=DATABASES)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AlertSite]:
    folder = tmp_path_factory.mktemp("pages")
    port = free_port()
    context = AlertContext(local_url(port), SECRET)
    with fresh_database(request, folder) as database:
        prepare(database.engine, context)
        settings = PAGE_SETTINGS | {"EXECMETRICS_PUBLIC_URL": context.public_url}
        with serving(database.server_url, folder, settings, port) as base_url:
            yield AlertSite(base_url, database.engine, context)


def session_csrf(page: Page) -> str:
    value = page.get_attribute("form[action='/sign-out'] input[name=csrf]", "value")
    assert value
    return value


def card(page: Page, name: str) -> Any:
    return page.locator(f"article.kpi-card[data-kpi='{name}']")


# KPIs ------------------------------------------------------------------------------------------


def test_the_kpis_page_shows_values_targets_bands_and_trends(tab: Tab, site: AlertSite) -> None:
    page = tab.page
    sign_in(page, site, VIEWER)
    with page.expect_navigation():
        page.click("nav.pages a[href='/kpis']")
    page.wait_for_selector("body[data-charts-ready='true']")

    mrr = site.kpi("mrr")
    assert mrr["value"] is not None and mrr["value"] > 0
    expected = render.format_kpi_value(mrr["value"], "money", "GBP")
    assert card(page, "mrr").locator(".value").inner_text() == expected
    assert card(page, "mrr").locator(".period").inner_text() == "2025-03 · month to date"
    # A firing alert names MRR: amber, whatever its target says.
    assert "status-alert" in (card(page, "mrr").get_attribute("class") or "")
    assert card(page, "mrr").locator(".status").inner_text() == "Alert firing"

    customers = card(page, "customers")
    assert "status-met" in (customers.get_attribute("class") or "")
    assert customers.locator(".target").inner_text() == "Target: at least 5 · met"
    new_customers = card(page, "new_customers")
    assert "status-missed" in (new_customers.get_attribute("class") or "")
    assert new_customers.locator(".target").inner_text() == "Target: goal 10 · missed"
    assert "status-none" in (card(page, "arpa").get_attribute("class") or "")
    assert card(page, "arpa").locator(".status").inner_text() == "No target"

    # The monthly churn band beside a monthly churn rate, with its source.
    churn = card(page, "customer_churn_rate").locator(".band")
    assert churn.locator("[data-figure=typical]").inner_text() == "typical 0.0515"
    source = churn.locator("a.source")
    assert source.inner_text() == "Recurly, 2019"
    assert source.get_attribute("href") == RECURLY
    # An annual band beside a 12-month metric, though the KPI's period is a month.
    retention = card(page, "nrr_12m").locator(".band a.source")
    assert retention.inner_text() == "ChurnZero, 2023"
    assert retention.get_attribute("href") == CHURNZERO
    assert card(page, "mrr").locator(".band").count() == 0  # no band for MRR

    drawn = page.evaluate(
        """() => [...document.querySelectorAll("canvas.trend")].map((c) => !!Chart.getChart(c))"""
    )
    assert all(drawn) and len(drawn) == page.locator("article.kpi-card").count() - 1
    # No marketing spend was ingested: LTV to CAC has no value in any period.
    assert card(page, "ltv_to_cac").locator(".trend-box").inner_text() == "No history yet."
    labels = page.evaluate(
        """() => Chart.getChart(document.querySelector("[data-kpi=mrr] canvas")).data.labels"""
    )
    assert labels == [f"2024-{m:02d}" for m in range(4, 13)] + ["2025-01", "2025-02", "2025-03"]
    assert tab.errors == []


def test_filtering_by_category_works_without_javascript(browser: Browser, site: AlertSite) -> None:
    with open_tab(browser, javascript=False) as tab:
        page = tab.page
        sign_in(page, site, VIEWER)
        page.goto(site.url("/kpis"))
        assert card(page, "mrr").count() == 1
        with page.expect_navigation():
            page.click(".filter a:text-is('Customer')")
        assert page.url == site.url("/kpis?category=customer")
        categories = page.locator("article.kpi-card").evaluate_all(
            "(cards) => cards.map((c) => c.dataset.category)"
        )
        assert categories and set(categories) == {"customer"}
        assert card(page, "customers").count() == 1
        assert card(page, "mrr").count() == 0
        assert (
            page.get_attribute(".filter a[aria-current=page]", "href") == "/kpis?category=customer"
        )


# The layout, for people to look at -------------------------------------------------------------


def test_screenshots_of_each_page(tab: Tab, site: AlertSite, tmp_path: Path) -> None:
    page = tab.page
    sign_in(page, site, CEO)
    for name, path in [
        ("kpis", "/kpis"),
        ("alerts", "/alerts"),
        ("notifications", "/notifications"),
    ]:
        page.goto(site.url(path))
        if name == "kpis":
            page.wait_for_selector("body[data-charts-ready='true']")
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    found = site.alert("mrr-floor")
    token = acknowledge_token(site.context, found["id"], found["episode"])
    page.goto(site.url(f"/alerts/acknowledge/{token}"))
    page.screenshot(path=str(tmp_path / "acknowledge-link.png"), full_page=True)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "acknowledge-link.png", "alerts.png", "kpis.png", "notifications.png",
    ]  # fmt: skip
    assert tab.errors == []


# Alerts ----------------------------------------------------------------------------------------


def test_the_alerts_page_shows_the_firing_alert_its_escalation_and_deliveries(
    tab: Tab, site: AlertSite
) -> None:
    page = tab.page
    sign_in(page, site, VIEWER)
    page.goto(site.url("/alerts"))
    alert = page.locator(f"#alert-{site.alert('mrr-floor')['id']}")
    assert alert.locator("h3").inner_text() == "mrr-floor"
    assert alert.locator(".kpi").inner_text() == "KPI mrr"
    assert alert.locator(".badge.severity-critical").inner_text() == "critical"
    assert "GBP" in alert.locator(".summary").inner_text()

    hook = alert.locator("tr[data-channel=finance-hook]")
    assert hook.locator(".badge").inner_text() == "dead"
    assert "HTTP 400" in hook.locator(".error-text").inner_text()
    in_app = alert.locator("tr[data-channel=in_app]")
    assert in_app.count() == 2  # the chief executive's, and the policy's first level
    assert in_app.locator(".badge").all_inner_texts() == ["delivered", "delivered"]

    first, second = alert.locator(".escalation li").all()
    assert first.get_attribute("class") == "level reached"
    assert "cfo@example.com via in_app" in first.inner_text()
    assert first.locator(".badge").inner_text() == "delivered"
    assert "not reached" in second.inner_text()
    assert "after 30 min" in second.inner_text()
    assert page.locator("#transitions tbody tr").count() == 2
    assert tab.errors == []


def test_a_viewer_sees_no_forms_and_may_not_post_them(tab: Tab, site: AlertSite) -> None:
    page = tab.page
    sign_in(page, site, VIEWER)
    page.goto(site.url("/alerts"))
    assert page.locator("main form").count() == 0
    alert_id = site.alert("mrr-floor")["id"]
    csrf = session_csrf(page)  # the viewer's own valid token: refused for the role alone
    for path, form in [
        (f"/alerts/{alert_id}/acknowledge", {"csrf": csrf}),
        ("/alerts/silences", {"csrf": csrf, "hours": "1", "reason": "mine"}),
        ("/alerts/silences/1/end", {"csrf": csrf}),
    ]:
        response = page.request.post(site.url(path), form=form, max_redirects=0)
        assert response.status == 403, path
        assert "needs the executive role" in response.text()
    assert site.alert("mrr-floor")["acknowledged_by"] is None


def test_a_form_without_the_session_csrf_token_is_refused(tab: Tab, site: AlertSite) -> None:
    page = tab.page
    sign_in(page, site, CEO)
    alert_id = site.alert("mrr-floor")["id"]
    response = page.request.post(
        site.url(f"/alerts/{alert_id}/acknowledge"), form={"csrf": "forged"}, max_redirects=0
    )
    assert response.status == 403
    assert "expired" in response.text()


def test_an_executive_acknowledges_through_the_form(tab: Tab, site: AlertSite) -> None:
    page = tab.page
    sign_in(page, site, CEO)
    page.goto(site.url("/alerts"))
    alert_id = site.alert("mrr-floor")["id"]
    alert = page.locator(f"#alert-{alert_id}")
    assert alert.locator(".acknowledged").inner_text() == "not yet"
    with page.expect_navigation():
        alert.locator("form.acknowledge button").click()
    assert page.url == site.url(f"/alerts#alert-{alert_id}")
    shown = alert.locator(".acknowledged").inner_text()
    assert re.fullmatch(r"by user:ceo@example\.com at \d{4}-\d\d-\d\d \d\d:\d\d UTC", shown)
    assert alert.locator("form.acknowledge").count() == 0
    assert "stopped by the acknowledgement" in alert.locator(".escalation").inner_text()
    assert site.alert("mrr-floor")["acknowledged_by"] == "user:ceo@example.com"
    assert tab.errors == []


def test_silences_are_created_listed_and_ended_and_bad_input_is_refused(
    tab: Tab, site: AlertSite
) -> None:
    page = tab.page
    sign_in(page, site, CEO)
    page.goto(site.url("/alerts"))
    form = page.locator("form.silence-form")
    form.locator("select[name=rule]").select_option("mrr-floor")
    form.locator("input[name=matchers]").fill("kpi=mrr")
    form.locator("input[name=hours]").fill("2")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator(".problems").inner_text() == "Reason: say why the alerts are silenced."
    assert page.get_attribute("input[name=reason]", "aria-invalid") == "true"
    # What was entered is kept, to correct.
    assert page.input_value("input[name=matchers]") == "kpi=mrr"
    assert page.input_value("select[name=rule]") == "mrr-floor"
    assert page.locator("#silences tbody tr").count() == 0

    page.fill("input[name=reason]", "Billing system migration")
    with page.expect_navigation():
        page.click("form.silence-form button[type=submit]")
    [row] = page.locator("#silences tbody tr").all()
    assert row.locator("td").nth(0).inner_text() == "mrr-floor"
    assert row.locator("td").nth(1).inner_text() == "kpi=mrr"
    assert row.locator("td").nth(2).inner_text() == "user:ceo@example.com"
    assert row.locator(".reason").inner_text() == "Billing system migration"

    csrf = session_csrf(page)
    for fields, message in [
        ({"hours": "0", "reason": "r"}, "Duration (hours): give a number of hours above 0"),
        ({"hours": "8785", "reason": "r"}, "at most 8784 (366 days)"),
        ({"hours": "1", "reason": "r", "matchers": "kpi"}, "Matchers: 'kpi' is not label=value"),
        ({"hours": "1", "reason": "r", "rule": "nope"}, "Rule: there is no rule named 'nope'"),
    ]:
        response = page.request.post(site.url("/alerts/silences"), form={"csrf": csrf, **fields})
        assert response.status == 422
        assert message in html.unescape(response.text()), fields

    with page.expect_navigation():
        row.locator("button").click()
    assert page.locator("#silences tbody tr").count() == 0
    with site.engine.connect() as connection:
        [stored] = connection.execute(select(silences)).all()
    assert stored.author == "user:ceo@example.com" and stored.ends_at <= now_micros()
    # The refused form came back with status 422, which the browser reports; nothing else.
    assert [error for error in tab.errors if "status of 422" not in error] == []


# The signed acknowledge link -------------------------------------------------------------------


def test_the_signed_link_confirms_then_acknowledges_once(tab: Tab, site: AlertSite) -> None:
    page = tab.page  # not signed in: the link is the credential
    found = site.alert("arr-floor")
    token = acknowledge_token(site.context, found["id"], found["episode"])
    page.goto(site.url(f"/alerts/acknowledge/{token}"))
    assert page.locator("h1").inner_text() == "Acknowledge alert"
    assert "arr-floor" in page.locator(".facts").inner_text()
    assert site.alert("arr-floor")["acknowledged_by"] is None  # opening the link changes nothing

    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert (
        page.locator(".notice.success")
        .inner_text()
        .startswith(f"Acknowledged by link:{found['id']}.")
    )
    assert site.alert("arr-floor")["acknowledged_by"] == f"link:{found['id']}"

    again = page.goto(site.url(f"/alerts/acknowledge/{token}"))
    assert again is not None and again.status == 200
    assert f"already acknowledged by link:{found['id']}" in page.locator(".notice").inner_text()
    assert page.locator("form button").count() == 0
    repeated = page.request.post(site.url(f"/alerts/acknowledge/{token}"), form={"token": token})
    assert repeated.status == 409

    later = acknowledge_token(site.context, found["id"], found["episode"] + 1)
    page.goto(site.url(f"/alerts/acknowledge/{later}"))
    assert "has fired again since this link was sent" in page.locator(".notice").inner_text()
    assert tab.errors == []


def test_a_tampered_link_is_refused(tab: Tab, site: AlertSite) -> None:
    found = site.alert("mrr-floor")
    token = acknowledge_token(site.context, found["id"], found["episode"])
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = tab.page.goto(site.url(f"/alerts/acknowledge/{tampered}"))
    assert response is not None and response.status == 401
    assert "not valid or has expired" in tab.page.locator(".notice").inner_text()
    posted = tab.page.request.post(
        site.url(f"/alerts/acknowledge/{tampered}"), form={"token": tampered}
    )
    assert posted.status == 401
    # A valid token must come with the form too: the path alone does not acknowledge.
    bare = tab.page.request.post(site.url(f"/alerts/acknowledge/{token}"))
    assert bare.status == 401


# Notifications ---------------------------------------------------------------------------------


def _notify_analyst(engine: Engine) -> None:
    message = Message(
        idempotency_key="dashboard-test:analyst",
        event="firing",
        severity=Severity.WARNING,
        subject="[FIRING] churn-watch: customer_churn_rate - above 5%",
        text="Customer churn is 7.14%, above 5%.",
        html="<p>Customer churn is 7.14%, above 5%.</p>",
        facts=(("KPI", "customer_churn_rate"),),
        links=(("Open alerts", "http://127.0.0.1/alerts"),),
    )
    with engine.begin() as connection:
        assert enqueue(connection, message, IN_APP, ANALYST)


def test_in_app_notifications_are_listed_once_delivered_and_marked_read(
    tab: Tab, site: AlertSite
) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    with page.expect_navigation():
        page.click("nav.pages a[href='/notifications']")
    assert page.locator(".empty").inner_text() == "No notifications yet."
    _notify_analyst(site.engine)
    page.reload()
    assert page.locator(".inbox-item").count() == 0  # queued, not yet delivered
    assert dispatch_due(site.engine, {}.get).delivered == 1
    page.reload()
    [item] = page.locator(".inbox-item").all()
    assert item.get_attribute("class") == "inbox-item unread"
    assert item.locator(".subject").inner_text().startswith("[FIRING] churn-watch")
    with page.expect_navigation():
        page.click("form[action='/notifications/read-all'] button")
    assert page.url == site.url("/notifications")
    assert page.locator(".inbox-item.unread").count() == 0
    assert page.locator(".inbox-item.read").count() == 1
    assert page.locator("form[action='/notifications/read-all']").count() == 0
    assert tab.errors == []


def test_each_user_sees_only_their_own_notifications(tab: Tab, site: AlertSite) -> None:
    page = tab.page
    sign_in(page, site, CEO)
    page.goto(site.url("/notifications"))
    subjects = page.locator(".inbox-item .subject").all_inner_texts()
    assert sorted(s.split(":")[0] for s in subjects) == ["[FIRING] arr-floor", "[FIRING] mrr-floor"]
    assert not any("churn-watch" in subject for subject in subjects)


# The presentation logic on its own -------------------------------------------------------------


def _kpi(name: str, metric: str, period: str) -> KpiDefinition:
    return KpiDefinition.model_validate(
        {"name": name, "title": name, "metric": metric, "category": "customer",
         "unit": "ratio", "direction": "lower_is_better", "period": period}
    )  # fmt: skip


def test_the_status_colour_puts_a_firing_alert_first() -> None:
    assert kpi_status(True, alerting=False) == "met"
    assert kpi_status(False, alerting=False) == "missed"
    assert kpi_status(None, alerting=False) == "none"
    assert kpi_status(True, alerting=True) == "alert"


def test_escalation_keys_are_parsed_whatever_their_recipients_hold() -> None:
    key = "alert:12:3:escalated:arm1.round2.level0.user:cfo@example.com:in_app:cfo@example.com"
    assert parse_escalation_key(key, "in_app", "cfo@example.com") == EscalationStepKey(
        alert=12, episode=3, arm=1, round=2, level=0, step_recipient="user:cfo@example.com"
    )
    to_channel = "alert:5:1:escalated:arm0.round0.level4.channel:ops-pager:ops-pager:"
    assert parse_escalation_key(to_channel, "ops-pager", "") == EscalationStepKey(
        5, 1, 0, 0, 4, "channel:ops-pager"
    )
    odd = "alert:7:2:escalated:arm0.round0.level1.user:a@b.example:sms:+44:20"
    assert parse_escalation_key(odd, "sms", "+44:20") == EscalationStepKey(
        7, 2, 0, 0, 1, "user:a@b.example"
    )
    for other, channel, recipient in [
        ("alert:12:3:firing:finance-hook:", "finance-hook", ""),
        ("alert:12:3:resolved:in_app:cfo@example.com", "in_app", "cfo@example.com"),
        ("alert:12:3:escalated:arm1.round2.level0.user:x@y.z:in_app:x@y.z", "email", "x@y.z"),
        ("alert:x:3:escalated:arm1.round2.level0.user:x@y.z:in_app:x@y.z", "in_app", "x@y.z"),
        ("alert:1:1:escalated:armA.round0.level0.user:x@y.z:in_app:x@y.z", "in_app", "x@y.z"),
        ("digest:2025-W10:ceo@example.com", "in_app", "ceo@example.com"),
        ("", "in_app", ""),
    ]:
        assert parse_escalation_key(other, channel, recipient) is None, other


def test_escalation_progress_follows_the_policy_levels() -> None:
    policy = EscalationPolicy.model_validate(
        {"name": "p", "levels": [{"delay_minutes": 0, "recipients": ["user:a@x.example"]},
                                 {"delay_minutes": 30, "recipients": ["channel:ops"]}]}
    )  # fmt: skip
    first = {"step": EscalationStepKey(1, 1, 0, 0, 0, "user:a@x.example"), "status": "delivered"}
    firing = {"step": None, "status": "queued"}
    levels = escalation_progress(policy, [firing, first])
    assert [(level["number"], level["delay_minutes"]) for level in levels] == [(1, 0), (2, 30)]
    assert levels[0]["deliveries"] == [first] and levels[1]["deliveries"] == []


def test_matchers_hours_and_the_silence_form_are_checked_field_by_field() -> None:
    assert parse_matchers("") == {}
    assert parse_matchers(" kpi = mrr ,\nteam=finance ops ") == {
        "kpi": "mrr",
        "team": "finance ops",
    }
    for bad in ("kpi", "=mrr", "kpi=", "Kpi=mrr", "kpi=mrr,kpi=arr", "1kpi=mrr"):
        with pytest.raises(ValueError):
            parse_matchers(bad)
    assert parse_hours("1.5") == 5_400_000_000
    assert parse_hours("8784") == 8784 * 3_600_000_000
    for bad in ("0", "-1", "8784.01", "", "soon", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            parse_hours(bad)
    wanted, problems = check_silence_form(SilenceForm("", "kpi=mrr", "4", " planned "), ["r"])
    assert problems == {} and wanted is not None
    assert (wanted.rule, wanted.matchers, wanted.reason) == (None, {"kpi": "mrr"}, "planned")
    wanted, problems = check_silence_form(SilenceForm("nope", "x", "0", " "), ["r"])
    assert wanted is None
    assert sorted(problems) == ["hours", "matchers", "reason", "rule"]
    assert all(message.split(":")[0] in ("Rule", "Matchers", "Duration (hours)", "Reason")
               for message in problems.values())  # fmt: skip


def test_a_link_explains_why_it_cannot_acknowledge() -> None:
    firing = {"phase": "firing", "episode": 2, "acknowledged_by": None, "acknowledgements": []}
    assert link_problem(firing, 2) is None
    assert link_problem(None, 2) == "This alert no longer exists."
    assert "not firing" in str(link_problem(firing | {"phase": "normal"}, 2))
    assert "fired again" in str(link_problem(firing, 1))
    done = firing | {"acknowledged_by": "user:ceo@example.com", "acknowledgements": [0]}
    assert link_problem(done, 2) == (
        "This alert was already acknowledged by user:ceo@example.com 1970-01-01 00:00 UTC"
    )

"""The Forecast and Data quality pages in a real browser, on a small company whose history ends
last month and whose data holds deliberate flaws: two customers without a country, a start at
a hundredth of its plan's price, and a ticket closed before it was opened.

`execmetrics serve` runs on SQLite, and on PostgreSQL as the application role, so row-level
security applies as in production. Chromium is driven with Playwright. Each page is compared
with the API document it shows (GET /api/v1/forecast and /api/v1/quality).

The Churn risk page runs on a server of its own, on a demo company of 500 customers over two
years, compared with GET /api/v1/churn/model and /api/v1/churn/risk. Its tests run in order:
the first sees the database before any scoring run, the last after a run by the weighted risk
score.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine
from tests.builders import cancel, customer, ingest, start
from tests.web.browsing import (
    ANALYST,
    DATABASES,
    PAGE_SETTINGS,
    VIEWER,
    ApiSite,
    Tab,
    add_users,
    fresh_database,
    nav_paths,
    open_tab,
    serving,
    sign_in,
)
from typer.testing import CliRunner

from execmetrics import render
from execmetrics.accounts.roles import Role
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import run_daily_analytics
from execmetrics.cli import app as cli
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.ingest.service import ingest_files
from execmetrics.metrics.periods import label, shift_periods
from execmetrics.timeutil import date_to_micros, parse_timestamp
from execmetrics.web.pages import moment

HISTORY_MONTHS = 30
# A forecast fits and backtests every candidate model as the page is asked for: seconds.
NAVIGATION_TIMEOUT_MS = 90_000
DATASETS = ("History", "Forecast", "95% lower", "95% interval", "80% lower", "80% interval")


@dataclass(frozen=True)
class Subscription:
    customer_id: str
    started: datetime
    amount: int  # pence a month
    cancelled: datetime | None = None


def company(now: datetime) -> list[Subscription]:
    """A customer a month for the 30 months before this one, each paying a little more; every
    sixth leaves four months after starting. One starts at a hundredth of the plan's price a
    year ago, and one yesterday, so the newest event is fresh."""
    this_month = date(now.year, now.month, 1)
    found = []
    for n in range(HISTORY_MONTHS):
        month = shift_periods(this_month, "month", HISTORY_MONTHS - n)
        started = datetime(month.year, month.month, 5, 9, tzinfo=UTC)
        cancelled = None
        if n % 6 == 5 and n + 4 < HISTORY_MONTHS:
            left = shift_periods(month, "month", -4)
            cancelled = datetime(left.year, left.month, 20, 9, tzinfo=UTC)
        found.append(Subscription(f"c{n:02d}", started, 10_000 + 400 * n, cancelled))
    year_ago = shift_periods(this_month, "month", 12)
    odd_start = datetime(year_ago.year, year_ago.month, 12, tzinfo=UTC)
    found.append(Subscription("c-odd", odd_start, 160))
    found.append(Subscription("c-new", now - timedelta(days=1), 12_000))
    return found


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ingest_company(engine: Engine, now: datetime) -> None:
    subscriptions = company(now)
    customers = [
        customer(s.customer_id, segment="smb", acquisition_source="referral",
                 country=None if s.customer_id in ("c02", "c09") else "GB")
        for s in subscriptions
    ]  # fmt: skip
    events = []
    for s in subscriptions:
        event_id = "e-odd" if s.customer_id == "c-odd" else f"e-{s.customer_id}"
        events.append(start(event_id, s.customer_id, f"s-{s.customer_id}", stamp(s.started),
                            s.amount, tier="standard"))  # fmt: skip
        if s.cancelled is not None:
            events.append(cancel(f"x-{s.customer_id}", s.customer_id, f"s-{s.customer_id}",
                                 stamp(s.cancelled)))  # fmt: skip
    tickets = [
        {"ticket_id": "t-ok", "customer_id": "c01", "opened_at": stamp(now - timedelta(hours=3)),
         "closed_at": stamp(now - timedelta(hours=2)), "priority": "normal", "category": "billing"},
        {"ticket_id": "t-backwards", "customer_id": "c04",
         "opened_at": stamp(now - timedelta(hours=3)), "closed_at": stamp(now - timedelta(hours=4)),
         "priority": "high", "category": "bug"},
    ]  # fmt: skip
    ingest(engine, customers=customers, events=events, tickets=tickets)


def at_month_end(subscriptions: list[Subscription], month: date) -> list[Subscription]:
    """The subscriptions in force at the end of a month (UTC)."""
    following = shift_periods(month, "month", -1)
    end = datetime(following.year, following.month, 1, tzinfo=UTC)
    return [
        s for s in subscriptions
        if s.started < end and (s.cancelled is None or s.cancelled >= end)
    ]  # fmt: skip


@dataclass(frozen=True)
class CompanySite(ApiSite):
    now: datetime  # when the company was ingested: its history ends the month before

    @property
    def last_month(self) -> date:
        return shift_periods(date(self.now.year, self.now.month, 1), "month", 1)


@pytest.fixture(scope="module", params=DATABASES)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CompanySite]:
    folder = tmp_path_factory.mktemp("analytics-pages")
    now = datetime.now(UTC).replace(microsecond=0)
    with fresh_database(request, folder) as database:
        users = {ANALYST: Role.ANALYST, VIEWER: Role.VIEWER}
        token = add_users(database.engine, users, Role.ANALYST)
        ingest_company(database.engine, now)
        with serving(database.server_url, folder, PAGE_SETTINGS) as base_url:
            yield CompanySite(base_url, token, now)


@pytest.fixture
def navigation_timeout_ms() -> int:
    return NAVIGATION_TIMEOUT_MS


def fan_chart(page: Page) -> dict[str, Any]:
    """What Chart.js holds for the fan chart: its labels, and each dataset's label, data and
    fill."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
            const chart = Chart.getChart("fan");
            return {
                labels: chart.data.labels,
                datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data,
                                                           fill: d.fill})),
                drawn: [chart.canvas.width, chart.canvas.height],
            };
        }"""
    )


def months(first: date, count: int) -> list[str]:
    return [label(shift_periods(first, "month", -i), "month") for i in range(count)]


# Forecast --------------------------------------------------------------------------------------


def test_the_forecast_page_draws_the_fan_chart_of_the_mrr_forecast(
    tab: Tab, site: CompanySite
) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    with page.expect_navigation():
        page.click("nav.pages a[href='/forecast']")
    page.wait_for_selector("body[data-charts-ready='true']")
    document = site.api("/api/v1/forecast?series=mrr&horizon=12")
    backtest = document["backtest"]

    assert page.locator("h1 small").inner_text() == "MRR, 12 months ahead · GBP"
    chosen, baseline = page.locator(".figure-card.chosen"), page.locator(".figure-card.baseline")
    assert chosen.locator(".value").inner_text() == document["model"]
    assert chosen.locator(".mase").inner_text() == str(backtest["mase"])
    assert baseline.locator(".value").inner_text() == backtest["baseline"] == "seasonal_naive"
    assert baseline.locator(".mase").inner_text() == str(backtest["baseline_mase"])
    candidates = page.locator("table.candidates tbody tr")
    assert candidates.evaluate_all("(rows) => rows.map((r) => r.dataset.candidate)") == list(
        backtest["candidates"]
    )
    assert page.locator("tr.chosen").get_attribute("data-candidate") == document["model"]
    assert page.locator(".notes li").all_inner_texts() == document["notes"]

    chart = fan_chart(page)
    first = shift_periods(site.last_month, "month", HISTORY_MONTHS - 1)
    assert chart["labels"] == months(first, HISTORY_MONTHS + 12)
    datasets = {dataset["label"]: dataset for dataset in chart["datasets"]}
    assert list(datasets) == list(DATASETS)
    assert chart["drawn"][0] > 0 and chart["drawn"][1] > 0
    # Each band's upper edge is shaded down to its lower edge, the dataset before it.
    assert [datasets[name]["fill"] for name in DATASETS] == [False, False, False, "-1", False, "-1"]

    history = datasets["History"]["data"]
    assert history[HISTORY_MONTHS:] == [None] * 12
    expected_mrr = sum(s.amount for s in at_month_end(company(site.now), site.last_month))
    assert history[HISTORY_MONTHS - 1] == expected_mrr / 100  # pounds
    assert history[0] == 100.0  # the first customer, £100 a month
    for key, name in [("forecast", "Forecast"), ("upper_95", "95% interval"),
                      ("lower_95", "95% lower"), ("upper_80", "80% interval"),
                      ("lower_80", "80% lower")]:  # fmt: skip
        data = datasets[name]["data"]
        # The fan opens from the last month seen.
        assert data[: HISTORY_MONTHS - 1] == [None] * (HISTORY_MONTHS - 1)
        assert data[HISTORY_MONTHS - 1] == expected_mrr / 100
        assert data[HISTORY_MONTHS:] == [point[key] / 100 for point in document["forecast"]]

    rows = page.locator("table.forecast-points tbody tr")
    assert rows.count() == 12
    first_point = document["forecast"][0]
    assert rows.first.get_attribute("data-period") == first_point["period"]
    assert rows.first.locator(".forecast-value").inner_text() == render.format_kpi_value(
        Fraction(first_point["forecast"]), "money", "GBP"
    )
    assert tab.errors == []


def test_another_series_and_horizon_are_chosen_with_the_form(tab: Tab, site: CompanySite) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    page.goto(site.url("/forecast"))
    page.select_option("select[name=series]", "customers")
    page.fill("input[name=horizon]", "6")
    with page.expect_navigation():
        page.click("form.choice button[type=submit]")
    assert page.url == site.url("/forecast?series=customers&horizon=6")
    page.wait_for_selector("body[data-charts-ready='true']")
    assert page.locator("h1 small").inner_text() == "Paying customers, 6 months ahead"
    assert page.input_value("select[name=series]") == "customers"

    document = site.api("/api/v1/forecast?series=customers&horizon=6")
    chart = fan_chart(page)
    datasets = {dataset["label"]: dataset["data"] for dataset in chart["datasets"]}
    assert list(datasets) == list(DATASETS)
    paying = len(at_month_end(company(site.now), site.last_month))
    assert datasets["History"][HISTORY_MONTHS - 1] == paying  # a count: not scaled
    assert datasets["Forecast"][HISTORY_MONTHS:] == [p["forecast"] for p in document["forecast"]]
    assert page.locator("table.forecast-points tbody tr").count() == 6
    assert page.locator(".figure-card.chosen .value").inner_text() == document["model"]
    assert tab.errors == []


def test_a_bad_series_or_horizon_is_explained_on_the_page(tab: Tab, site: CompanySite) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    for query, message in [
        ("?horizon=0", "Horizon: give a whole number of periods from 1 to 120."),
        ("?horizon=121", "Horizon: give a whole number of periods from 1 to 120."),
        ("?horizon=six", "Horizon: give a whole number of periods from 1 to 120."),
        ("?series=revenue", "Series: expected one of mrr, arr, customers, new_mrr, net_new_mrr, "
                            "churned_mrr or kpi:NAME, got 'revenue'."),
        ("?series=kpi:mrr", "Series: the KPI 'mrr' has no stored value yet."),
    ]:  # fmt: skip
        response = page.goto(site.url(f"/forecast{query}"))
        assert response is not None and response.status == 422, query
        assert page.locator(".notice").inner_text() == message
        assert page.locator("canvas#fan").count() == 0
        # The form is there to correct the choice.
        assert page.locator("form.choice select[name=series] option").count() > 6
    assert [e for e in tab.errors if "status of 422" not in e] == []


def test_the_forecast_table_needs_no_javascript(browser: Browser, site: CompanySite) -> None:
    opened = open_tab(browser, javascript=False, navigation_timeout_ms=NAVIGATION_TIMEOUT_MS)
    with opened as tab:
        page = tab.page
        sign_in(page, site, ANALYST)
        page.goto(site.url("/forecast?series=arr&horizon=3"))
        periods = page.locator("table.forecast-points tbody tr").evaluate_all(
            "(rows) => rows.map((r) => r.dataset.period)"
        )
        assert periods == months(shift_periods(site.last_month, "month", -1), 3)
        assert page.locator(".figure-card.chosen .value").inner_text() != ""


# Data quality ----------------------------------------------------------------------------------


def test_the_quality_page_shows_the_scores_and_the_deliberate_flaws(
    tab: Tab, site: CompanySite
) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    with page.expect_navigation():
        page.click("nav.pages a[href='/quality']")
    document = site.api("/api/v1/quality")

    # Measured when asked (no report is stored here), the page a moment before the API.
    api_moment = parse_timestamp(document["measured_at"])
    shown = page.locator(".measured-at").inner_text()
    assert shown in {moment(api_moment), moment(api_moment - 60_000_000)}
    assert document["overall"] is not None and document["overall"] < 100
    assert page.locator("#overall .value").inner_text() == f"{document['overall']:.2f}"
    for name, found in document["datasets"].items():
        row = page.locator(f"tr[data-dataset='{name}']")
        assert row.locator("[data-dimension=score]").inner_text() == f"{found['score']:.2f}"
        for dimension in ("completeness", "validity", "consistency", "timeliness"):
            value = found["dimensions"].get(dimension)
            shown = "-" if value is None else f"{value:.2f}"
            assert row.locator(f"[data-dimension={dimension}]").inner_text() == shown, dimension
    assert page.locator("tr[data-dataset]").count() == 4

    failing = page.locator("#failing tbody tr")
    assert failing.evaluate_all("(rows) => rows.map((r) => r.dataset.check)") == [
        "customers/country given",
        "subscription_events/amount within its plan's norm",
        "support_tickets/closed after opened",
    ]
    backwards = page.locator("#failing tr[data-check='support_tickets/closed after opened']")
    assert backwards.locator(".failing").inner_text() == "1 of 2"
    assert backwards.locator(".score").inner_text() == "50.00"
    assert backwards.locator(".examples code").all_inner_texts() == ["t-backwards"]
    odd_amount = "subscription_events/amount within its plan's norm"
    odd = page.locator(f'#failing tr[data-check="{odd_amount}"]')
    assert odd.locator(".failing").inner_text() == "1 of 32"
    assert odd.locator(".examples code").all_inner_texts() == ["e-odd"]
    country = page.locator("#failing tr[data-check='customers/country given']")
    assert country.locator(".failing").inner_text() == "2 of 32"
    assert country.locator(".examples code").all_inner_texts() == ["c02", "c09"]
    # Everything else passes: the ledger reconciles and the newest rows are fresh.
    passing = page.locator("#passing tbody tr").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.check)"
    )
    assert len(passing) == len(document["checks"]) - 3
    assert {"ledger/movements chain", "ledger/MRR agrees with the subscriptions",
            "subscription_events/fresh", "support_tickets/fresh"} <= set(passing)  # fmt: skip
    assert tab.errors == []


def test_the_freshness_limit_is_chosen_and_checked(tab: Tab, site: CompanySite) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    page.goto(site.url("/quality"))
    page.fill("input[name=freshness]", "soon")
    with page.expect_navigation():
        page.click("form.choice button[type=submit]")
    assert page.url == site.url("/quality?freshness=soon")
    assert page.locator(".notice").inner_text() == (
        "Freshness: expected a duration such as 90d, 12h or 30m, got 'soon'."
    )
    assert page.get_attribute("input[name=freshness]", "aria-invalid") == "true"
    assert page.locator("#overall").count() == 0

    # A minute: the event of yesterday and the tickets of hours ago are more than twice as old.
    response = page.goto(site.url("/quality?freshness=1m"))
    assert response is not None and response.status == 200
    for dataset in ("subscription_events", "support_tickets"):
        stale = page.locator(f"#failing tr[data-check='{dataset}/fresh']")
        assert stale.locator(".score").inner_text() == "0.00"
        assert "the limit is 0.000694444 days" in stale.locator(".description").inner_text()
    assert page.input_value("input[name=freshness]") == "1m"
    assert [e for e in tab.errors if "status of 422" not in e] == []


# Roles -----------------------------------------------------------------------------------------


def test_a_viewer_is_refused_both_pages_and_not_offered_them(tab: Tab, site: CompanySite) -> None:
    page = tab.page
    sign_in(page, site, VIEWER)
    assert nav_paths(page) == ["/", "/kpis", "/alerts", "/notifications"]
    for path in ("/forecast", "/quality", "/forecast?series=customers&horizon=3"):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Not allowed"
        assert page.locator(".notice").inner_text() == (
            "This needs the analyst role or above; you are viewer."
        )
        assert page.locator("canvas").count() == 0


def test_an_analyst_is_offered_both_pages(tab: Tab, site: CompanySite) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    assert nav_paths(page) == [
        "/", "/kpis", "/forecast", "/quality", "/segments", "/alerts", "/notifications",
    ]  # fmt: skip
    assert page.locator("nav.pages a[href='/quality']").inner_text() == "Data quality"


# Churn risk ------------------------------------------------------------------------------------

EXECUTIVE = "executive@example.com"
CHURN_AS_OF = date(2025, 6, 1)
CHURN_SCORED_AT = date_to_micros(CHURN_AS_OF) + 6 * 3600 * 10**6  # 06:00 UTC on the day
# Too early in the demo's history for a model: the weighted risk score is used.
EARLY_AS_OF = "2024-03-01"
CHURN_PAGE_SIZE = 50
METHOD_TITLES = {
    "gradient_boosting": "Gradient boosting",
    "logistic_regression": "Logistic regression",
    "weighted_score": "Weighted risk score",
}


@pytest.fixture(scope="module", params=DATABASES)
def churn_served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiSite, Engine]]:
    """The demo company served with an executive's API token, and its database as its owner
    (to score it)."""
    folder = tmp_path_factory.mktemp("churn-page")
    with fresh_database(request, folder) as database:
        users = {EXECUTIVE: Role.EXECUTIVE, ANALYST: Role.ANALYST, VIEWER: Role.VIEWER}
        token = add_users(database.engine, users, Role.EXECUTIVE)
        write_demo(DemoSpec(customers=500, months=24, seed=5, end_month="2025-05"), folder / "demo")
        ingest_files(database.engine, [folder / "demo"])
        with serving(database.server_url, folder, PAGE_SETTINGS) as base_url:
            yield ApiSite(base_url, token), database.engine


@pytest.fixture
def churn_site(churn_served: tuple[ApiSite, Engine]) -> ApiSite:
    return churn_served[0]


@pytest.fixture
def churn_scored(churn_served: tuple[ApiSite, Engine]) -> ApiSite:
    """The site once the daily job has trained a model and scored every paying customer as of
    CHURN_AS_OF (once: the job does nothing more that day)."""
    site, engine = churn_served
    with engine.begin() as connection:
        run_daily_analytics(connection, CHURN_AS_OF, CHURN_SCORED_AT, 60, DEFAULT_WEIGHTS)
    return site


def shown_rows(page: Page) -> list[dict[str, Any]]:
    """The risk table's rows as the page shows them."""
    return page.locator("table.risk tbody tr").evaluate_all(  # type: ignore[no-any-return]
        """(rows) => rows.map((r) => ({
            rank: r.cells[0].innerText,
            customer_id: r.querySelector(".customer-id").innerText,
            name: r.querySelector(".customer-name")?.innerText ?? null,
            risk: r.querySelector("[data-field=risk]").innerText,
            mrr: r.querySelector("[data-field=mrr]").innerText,
            factors: [...r.querySelectorAll(".factor")].map((f) => f.innerText),
        }))"""
    )


def expected_rows(items: list[dict[str, Any]], first_rank: int) -> list[dict[str, Any]]:
    """The API's items as the page should show them: risk as a percent, MRR in whole pounds."""
    return [
        {"rank": str(first_rank + i), "customer_id": item["customer_id"], "name": item["name"],
         "risk": f"{item['probability']:.1%}",
         "mrr": render.format_value("mrr", item["mrr"], "GBP"), "factors": item["factors"]}
        for i, item in enumerate(items)
    ]  # fmt: skip


def test_before_any_scoring_the_churn_page_says_so(tab: Tab, churn_site: ApiSite) -> None:
    page = tab.page
    sign_in(page, churn_site, EXECUTIVE)
    paths = nav_paths(page)
    assert paths[paths.index("/segments") + 1] == "/churn"
    assert page.locator("nav.pages a[href='/churn']").inner_text() == "Churn risk"
    with page.expect_navigation():
        page.click("nav.pages a[href='/churn']")
    assert page.locator("h1").inner_text() == "Churn risk"
    assert page.locator(".empty").inner_text() == (
        "No churn scores yet: the daily analytics job stores them (or run execmetrics churn score)."
    )
    assert page.locator("table.risk").count() == 0
    assert tab.errors == []


def test_the_churn_page_shows_the_model_and_the_riskiest_customers(
    tab: Tab, churn_scored: ApiSite
) -> None:
    site = churn_scored
    page = tab.page
    sign_in(page, site, EXECUTIVE)
    response = page.goto(site.url("/churn"))
    assert response is not None and response.status == 200
    model = site.api("/api/v1/churn/model")
    risk = site.api(f"/api/v1/churn/risk?limit={CHURN_PAGE_SIZE}")

    assert page.locator("h1 small").inner_text() == "within 60 days of 2025-06-01 · GBP"
    # The demo's two years are enough history for a model to beat the weighted score.
    assert model["method"] in ("gradient_boosting", "logistic_regression")
    assert page.locator(".method").inner_text() == METHOD_TITLES[model["method"]]
    assert page.locator(".version").inner_text() == str(model["version"]) == "1"
    assert page.locator(".reason").inner_text() == model["reason"]
    assert page.locator(".notice.weighted").count() == 0
    assert page.locator(".horizon").inner_text() == "60 days"
    assert page.locator(".customers").inner_text() == f"{risk['customers']:,}"
    assert page.locator(".scored-at").inner_text() == "2025-06-01 06:00 UTC"
    # Each method's test figures, the model in use marked, beside the weighted score's.
    judged = model["evaluation"]["test"]
    figures = page.locator("table.figures-table tbody tr")
    assert figures.evaluate_all("(rows) => rows.map((r) => r.dataset.candidate)") == list(judged)
    assert "weighted_score" in judged
    assert page.locator("tr.chosen").get_attribute("data-candidate") == model["method"]
    for name, scores in judged.items():
        row = page.locator(f"tr[data-candidate='{name}']")
        for measure in ("roc_auc", "pr_auc", "brier"):
            shown = row.locator(f"[data-measure={measure}]").inner_text()
            assert shown == f"{scores[measure]:.3f}", (name, measure)

    assert page.locator("table.risk th").nth(2).inner_text().lower() == "probability"
    rows = shown_rows(page)
    assert rows == expected_rows(risk["items"], 1)
    assert len(rows) == CHURN_PAGE_SIZE
    probabilities = [item["probability"] for item in risk["items"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(row["name"] for row in rows)  # the demo names every customer
    # The riskiest customers show warning signs in words.
    assert all(row["factors"] for row in rows[:10])
    assert tab.errors == []


def test_the_churn_table_is_paged(tab: Tab, churn_scored: ApiSite) -> None:
    site = churn_scored
    page = tab.page
    sign_in(page, site, EXECUTIVE)
    page.goto(site.url("/churn"))
    assert page.locator("a[rel=prev]").count() == 0
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert page.url == site.url("/churn?page=2")
    second = site.api(f"/api/v1/churn/risk?limit={CHURN_PAGE_SIZE}&offset={CHURN_PAGE_SIZE}")
    customers = second["customers"]
    assert shown_rows(page) == expected_rows(second["items"], CHURN_PAGE_SIZE + 1)
    assert page.locator("#customers-heading small").inner_text() == f"51 to 100 of {customers}"

    pages = -(-customers // CHURN_PAGE_SIZE)
    assert pages >= 3
    page.goto(site.url(f"/churn?page={pages}"))
    offset = (pages - 1) * CHURN_PAGE_SIZE
    last = site.api(f"/api/v1/churn/risk?limit={CHURN_PAGE_SIZE}&offset={offset}")
    assert shown_rows(page) == expected_rows(last["items"], offset + 1)
    assert len(last["items"]) == customers - offset
    assert page.locator("a[rel=next]").count() == 0
    assert page.locator(".paging").inner_text().split("\n")[-1] == f"page {pages} of {pages}"
    with page.expect_navigation():
        page.click("a[rel=prev]")
    assert page.url == site.url(f"/churn?page={pages - 1}")
    assert tab.errors == []


def test_a_bad_churn_page_number_is_explained_on_the_page(tab: Tab, churn_scored: ApiSite) -> None:
    site = churn_scored
    page = tab.page
    sign_in(page, site, EXECUTIVE)
    pages = -(-site.api("/api/v1/churn/risk?limit=1")["customers"] // CHURN_PAGE_SIZE)
    for query in ("0", "two", "-1", "1.5", str(pages + 1)):
        response = page.goto(site.url(f"/churn?page={query}"))
        assert response is not None and response.status == 422, query
        assert page.locator(".notice").inner_text() == (
            f"Page: give a whole number from 1 to {pages}."
        )
        assert page.locator("table.risk").count() == 0
    with page.expect_navigation():
        page.click("main a[href='/churn']")
    assert page.locator("table.risk tbody tr").count() == CHURN_PAGE_SIZE
    assert [e for e in tab.errors if "status of 422" not in e] == []


@pytest.mark.parametrize(
    ("email", "role"), [(ANALYST, "analyst"), (VIEWER, "viewer")], ids=["analyst", "viewer"]
)
def test_analysts_and_viewers_are_refused_the_churn_page_and_not_offered_it(
    tab: Tab, churn_scored: ApiSite, email: str, role: str
) -> None:
    site = churn_scored
    page = tab.page
    sign_in(page, site, email)
    assert "/churn" not in nav_paths(page)
    response = page.goto(site.url("/churn"))
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.locator(".notice").inner_text() == (
        f"This needs the executive role or above; you are {role}."
    )
    assert page.locator("table.risk").count() == 0


def test_the_churn_page_labels_the_weighted_risk_score_as_such(
    tab: Tab, churn_scored: ApiSite, churn_served: tuple[ApiSite, Engine]
) -> None:
    """After the daily job's model (version 1, whichever worker runs this), a model trained
    and a run scored as of a date early in the demo's history, as `execmetrics churn train`
    and `churn score` do, become the newest."""
    site, engine = churn_served
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    for command in ("train", "score"):
        done = runner.invoke(cli, ["churn", command, "--db", url, "--as-of", EARLY_AS_OF])
        assert done.exit_code == 0, done.output
    page = tab.page
    sign_in(page, site, EXECUTIVE)
    page.goto(site.url("/churn"))
    model = site.api("/api/v1/churn/model")
    risk = site.api(f"/api/v1/churn/risk?limit={CHURN_PAGE_SIZE}")

    assert page.locator("h1 small").inner_text() == f"within 60 days of {EARLY_AS_OF} · GBP"
    assert page.locator(".method").inner_text() == "Weighted risk score"
    assert page.locator(".version").inner_text() == str(model["version"]) == "2"
    assert "transparent weighted risk score" in page.locator(".notice.weighted").inner_text()
    assert page.locator(".reason").inner_text() == model["reason"]
    assert model["reason"].startswith("too little labelled history for a model")
    assert page.locator("table.figures-table").count() == 0  # nothing was judged
    assert page.locator("table.risk th").nth(2).inner_text().lower() == "risk score"
    assert shown_rows(page) == expected_rows(risk["items"], 1)
    assert tab.errors == []

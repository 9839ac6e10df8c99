"""The Segments page in a real browser, on the population of five kinds of customer that
tests/analytics/test_segments_company.py builds, before and after the daily analytics job
stores its segmentation.

`execmetrics serve` runs on SQLite, and on PostgreSQL as the application role, so row-level
security applies as in production; its scheduler is off, so the test runs the job itself. The
page is compared with GET /api/v1/segments. The tests run in order: the first sees the
database before the job has run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from tests.analytics.test_segments_company import AS_OF, population
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
    serving,
    sign_in,
)

from execmetrics import render
from execmetrics.accounts.roles import Role
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import run_daily_analytics
from execmetrics.timeutil import date_to_micros

COMPUTED_AT = date_to_micros(AS_OF) + 6 * 3600 * 10**6  # 06:00 UTC on the day
COLUMNS = ("size", "share", "mrr", "centre_mrr", "tenure_days", "logins_30d",
           "feature_breadth_90d", "tickets_90d")  # fmt: skip


@pytest.fixture(scope="module", params=DATABASES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiSite, Engine]]:
    """The server, and the database as its owner (to run the daily job)."""
    folder = tmp_path_factory.mktemp("segment-pages")
    with fresh_database(request, folder) as database:
        users = {ANALYST: Role.ANALYST, VIEWER: Role.VIEWER}
        token = add_users(database.engine, users, Role.ANALYST)
        population(database.engine)
        with serving(database.server_url, folder, PAGE_SETTINGS) as base_url:
            yield ApiSite(base_url, token), database.engine


@pytest.fixture
def site(served: tuple[ApiSite, Engine]) -> ApiSite:
    return served[0]


@pytest.fixture
def segmented(served: tuple[ApiSite, Engine]) -> ApiSite:
    """The site once the daily job has stored the segmentation as of AS_OF (once: the job
    does nothing more that day)."""
    site, engine = served
    with engine.begin() as connection:
        run_daily_analytics(connection, AS_OF, COMPUTED_AT, 60, DEFAULT_WEIGHTS)
    return site


def test_before_the_job_has_run_the_page_says_so(tab: Tab, site: ApiSite) -> None:
    page = tab.page
    sign_in(page, site, ANALYST)
    with page.expect_navigation():
        page.click("nav.pages a[href='/segments']")
    assert page.locator("h1").inner_text() == "Customer segments"
    assert page.locator(".empty").inner_text() == (
        "No customer segments yet: the daily analytics job stores them once a day."
    )
    assert page.locator("table.segments").count() == 0
    assert tab.errors == []


def test_the_page_shows_the_newest_segmentation(tab: Tab, segmented: ApiSite) -> None:
    site = segmented
    page = tab.page
    sign_in(page, site, ANALYST)
    response = page.goto(site.url("/segments"))
    assert response is not None and response.status == 200
    document = site.api("/api/v1/segments")

    assert page.locator("h1 small").inner_text() == "as of 2025-06-01 · GBP"
    assert page.locator(".k").inner_text() == "5"
    assert page.locator(".how-k").inner_text() == "the default"
    assert page.locator(".silhouette").inner_text() == f"{document['silhouette']:.4f}"
    assert page.locator(".rows").inner_text() == "30"
    assert "computed 2025-06-01 06:00 UTC" in page.locator("#fit").inner_text()
    rows = page.locator("table.segments tbody tr")
    assert rows.evaluate_all("(rows) => rows.map((r) => r.dataset.segment)") == [
        "1", "2", "3", "4", "5",
    ]  # fmt: skip
    assert page.locator("table.segments .name").all_inner_texts() == [
        s["name"] for s in document["segments"]
    ]
    # 4 power users: GBP 806 of MRR in all, the median member's GBP 201.50 shown as 202.
    power = page.locator("tr[data-segment='5']")
    assert [power.locator(f"[data-field={name}]").inner_text() for name in COLUMNS] == [
        "4", "13.3%", "806", "202", "702", "20.0", "6.0", "1.0",
    ]  # fmt: skip
    for found in document["segments"]:
        row = page.locator(f"tr[data-segment='{found['segment']}']")
        assert row.locator("[data-field=mrr]").inner_text() == render.format_value(
            "mrr", found["mrr"], "GBP"
        )
        assert row.locator("[data-field=tickets_90d]").inner_text() == (
            f"{found['centre']['tickets_90d']:.1f}"
        )
    assert page.locator(".notes").count() == 0
    assert tab.errors == []


def test_a_viewer_is_refused_the_page_and_not_offered_it(tab: Tab, site: ApiSite) -> None:
    page = tab.page
    sign_in(page, site, VIEWER)
    assert "/segments" not in nav_paths(tab.page)
    response = page.goto(site.url("/segments"))
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.locator(".notice").inner_text() == (
        "This needs the analyst role or above; you are viewer."
    )
    assert page.locator("table.segments").count() == 0


def test_an_analyst_is_offered_the_page_after_data_quality(tab: Tab, site: ApiSite) -> None:
    sign_in(tab.page, site, ANALYST)
    links = nav_paths(tab.page)
    assert links[links.index("/quality") + 1] == "/segments"
    assert tab.page.locator("nav.pages a[href='/segments']").inner_text() == "Segments"

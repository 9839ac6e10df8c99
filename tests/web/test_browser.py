"""The dashboard in a real browser: sign-in, the overview's figures and charts, sign-out.

Runs `execmetrics serve` on a demo database and drives Debian's Chromium with Playwright
(installed by .ci/run; without it these tests fail rather than skip).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page
from tests.web.browsing import (
    EXECMETRICS,
    PASSWORD,
    ApiSite,
    Tab,
    environment,
    serving,
    sign_in,
    submit_sign_in,
)

from execmetrics import render

EMAIL = "ceo@example.com"


def _cli(*args: str, cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(EXECMETRICS), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"execmetrics {' '.join(args)} failed ({result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiSite]:
    """`execmetrics serve` on a demo database with an executive user and an admin token."""
    folder = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{folder / 'execmetrics.db'}"
    _cli("demo", "--customers", "300", "--db", db_url, cwd=folder)
    _cli(
        "users", "create", "--email", EMAIL, "--role", "executive", "--password-stdin",
        "--db", db_url, cwd=folder, stdin=PASSWORD + "\n",
    )  # fmt: skip
    token = _cli(
        "tokens", "create", "--name", "browser-test", "--role", "admin", "--db", db_url, cwd=folder
    ).strip()  # fmt: skip
    assert token and "\n" not in token
    with serving(db_url, folder, {}) as base_url:  # as installed: the scheduler runs
        yield ApiSite(base_url, token)


def _path(page: Page) -> str:
    return urlsplit(page.url).path


class _ScriptTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def _script_tags(html: str) -> list[dict[str, str | None]]:
    parser = _ScriptTags()
    parser.feed(html)
    parser.close()
    return parser.scripts


def test_unauthenticated_overview_redirects_to_sign_in(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"
    assert page.locator("input[name=password]").count() == 1


def test_wrong_password_shows_error_and_does_not_sign_in(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    submit_sign_in(page, server, EMAIL, "not the right password")
    assert _path(page) == "/sign-in"
    assert page.locator(".error").inner_text() == "Wrong email or password."
    assert not any(c["name"] == "execmetrics_session" for c in page.context.cookies())
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"


def test_sign_in_shows_overview_matching_the_api(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    summary = server.api("/api/v1/summary")
    latest = summary["latest_complete"]
    assert isinstance(latest, dict)
    mrr = latest["metrics"]["mrr"]["value"]
    customers = latest["metrics"]["customers"]["value"]
    assert isinstance(mrr, int) and mrr > 0
    expected_mrr = render.format_value("mrr_end", mrr, "GBP")
    # Whole pounds with thousands separators; the page names the currency in its heading.
    assert re.fullmatch(r"-?[0-9]{1,3}(,[0-9]{3})*", expected_mrr), expected_mrr

    sign_in(page, server, EMAIL)
    assert _path(page) == "/"
    page.wait_for_selector("body[data-charts-ready='true']")

    assert page.locator("[data-metric=mrr] .value").inner_text().strip() == expected_mrr
    assert page.locator("[data-metric=customers] .value").inner_text().strip() == str(customers)

    movements = page.locator("canvas#movements")
    assert movements.count() == 1
    box = movements.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    drawn = page.evaluate(
        "() => { const c = document.getElementById('movements'); return [c.width, c.height]; }"
    )
    assert drawn[0] > 0 and drawn[1] > 0
    assert page.evaluate("() => typeof Chart !== 'undefined' && !!Chart.getChart('movements')")
    assert page.get_attribute("body", "data-charts-ready") == "true"
    assert tab.errors == []


def test_sign_out_returns_to_sign_in(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    sign_in(page, server, EMAIL)
    assert _path(page) == "/"
    with page.expect_navigation():
        page.click("form[action='/sign-out'] button[type=submit]")
    assert _path(page) == "/sign-in"
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"
    assert tab.errors == []


def test_pages_have_no_inline_scripts(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    response = page.goto(server.url("/sign-in"))
    assert response is not None and response.ok
    sign_in_html = response.text()
    sign_in(page, server, EMAIL)
    assert _path(page) == "/"
    overview = page.request.get(server.url("/"))
    assert overview.ok
    overview_html = overview.text()
    assert 'data-metric="mrr"' in overview_html

    sign_in_scripts = _script_tags(sign_in_html)
    overview_scripts = _script_tags(overview_html)
    assert overview_scripts, "the overview loads its chart scripts"
    for name, scripts in (("sign-in", sign_in_scripts), ("overview", overview_scripts)):
        inline = [s for s in scripts if not s.get("src")]
        assert inline == [], f"inline <script> on the {name} page"


def test_error_collector_sees_csp_violations(tab: Tab, server: ApiSite) -> None:
    """The check behind 'no console errors': an injected inline script is refused by the
    Content-Security-Policy, and the refusal reaches the collected errors."""
    page = tab.page
    page.goto(server.url("/sign-in"))
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineScriptRan = true;";
            document.body.appendChild(script);
        }"""
    )
    for _ in range(50):  # console events arrive asynchronously
        if tab.errors:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.inlineScriptRan === undefined")
    assert any("Content Security Policy" in error for error in tab.errors), tab.errors


def test_an_executive_opens_churn_risk_from_the_bar(tab: Tab, server: ApiSite) -> None:
    page = tab.page
    sign_in(page, server, EMAIL)
    with page.expect_navigation():
        page.click("nav.pages a[href='/churn']")
    assert _path(page) == "/churn"
    assert page.get_attribute("nav.pages a[href='/churn']", "aria-current") == "page"
    assert page.locator("h1").inner_text().startswith("Churn risk")
    # The server's daily job may or may not have scored the demo yet: either is a whole page.
    assert page.locator("table.risk").count() + page.locator("p.empty").count() == 1
    assert tab.errors == []

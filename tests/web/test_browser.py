"""The dashboard in a real browser: sign-in, the overview's figures and charts, sign-out.

Runs `execmetrics serve` on a demo database and drives Debian's Chromium with Playwright.
Skipped when Chromium or Playwright is not installed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from execmetrics import render

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

from playwright import sync_api

# Debian's chromium package, which .ci/run installs: browser downloads are impossible here.
CHROMIUM = Path(os.environ.get("EXECMETRICS_TEST_CHROMIUM", "/usr/bin/chromium"))

EXECMETRICS = Path(sys.executable).parent / "execmetrics"
EMAIL = "ceo@example.com"
PASSWORD = "correct horse battery staple"
# Importing the server and its analytics libraries takes about ten seconds, several times
# that on a busy two-core machine.
SERVER_START_SECONDS = 90
TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Server:
    base_url: str
    db_url: str
    admin_token: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def api(self, path: str) -> dict[str, object]:
        request = urllib.request.Request(
            self.url(path), headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


def _environment() -> dict[str, str]:
    """The caller's environment without any EXECMETRICS_ setting that could change the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECMETRICS_")}
    env["EXECMETRICS_ENVIRONMENT"] = "development"
    return env


def _cli(*args: str, cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(EXECMETRICS), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_environment(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"execmetrics {' '.join(args)} failed ({result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(process: subprocess.Popen[str], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"execmetrics serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"execmetrics serve did not answer /healthz in time:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
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

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(EXECMETRICS), "serve", "--port", str(port), "--db", db_url],
            cwd=folder,
            env=_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        yield Server(base_url=base_url, db_url=db_url, admin_token=token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def browser_errors(page: Page) -> list[str]:
    """Console errors (CSP violations among them) and uncaught exceptions on the page."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: found.append(f"pageerror: {error}"))
    return found


def _path(page: Page) -> str:
    return urlsplit(page.url).path


def _sign_in(page: Page, server: Server, password: str) -> None:
    page.goto(server.url("/sign-in"))
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


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


def test_unauthenticated_overview_redirects_to_sign_in(page: Page, server: Server) -> None:
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"
    assert page.locator("input[name=password]").count() == 1


def test_wrong_password_shows_error_and_does_not_sign_in(page: Page, server: Server) -> None:
    _sign_in(page, server, "not the right password")
    assert _path(page) == "/sign-in"
    assert page.locator(".error").inner_text() == "Wrong email or password."
    assert not any(c["name"] == "execmetrics_session" for c in page.context.cookies())
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"


def test_sign_in_shows_overview_matching_the_api(
    page: Page, server: Server, browser_errors: list[str]
) -> None:
    summary = server.api("/api/v1/summary")
    latest = summary["latest_complete"]
    assert isinstance(latest, dict)
    mrr = latest["metrics"]["mrr"]["value"]
    customers = latest["metrics"]["customers"]["value"]
    assert isinstance(mrr, int) and mrr > 0
    expected_mrr = render.format_value("mrr_end", mrr, "GBP")
    # Whole pounds with thousands separators; the page names the currency in its heading.
    assert re.fullmatch(r"-?[0-9]{1,3}(,[0-9]{3})*", expected_mrr), expected_mrr

    _sign_in(page, server, PASSWORD)
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
    assert browser_errors == []


def test_sign_out_returns_to_sign_in(page: Page, server: Server, browser_errors: list[str]) -> None:
    _sign_in(page, server, PASSWORD)
    assert _path(page) == "/"
    with page.expect_navigation():
        page.click("form[action='/sign-out'] button[type=submit]")
    assert _path(page) == "/sign-in"
    page.goto(server.url("/"))
    assert _path(page) == "/sign-in"
    assert browser_errors == []


def test_pages_have_no_inline_scripts(page: Page, server: Server) -> None:
    response = page.goto(server.url("/sign-in"))
    assert response is not None and response.ok
    sign_in_html = response.text()
    _sign_in(page, server, PASSWORD)
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


def test_error_collector_sees_csp_violations(
    page: Page, server: Server, browser_errors: list[str]
) -> None:
    """The check behind 'no console errors': an injected inline script is refused by the
    Content-Security-Policy, and the refusal reaches the collected errors."""
    page.goto(server.url("/sign-in"))
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineScriptRan = true;";
            document.body.appendChild(script);
        }"""
    )
    for _ in range(50):  # console events arrive asynchronously
        if browser_errors:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.inlineScriptRan === undefined")
    assert any("Content Security Policy" in error for error in browser_errors), browser_errors


def test_an_executive_opens_churn_risk_from_the_bar(
    page: Page, server: Server, browser_errors: list[str]
) -> None:
    _sign_in(page, server, PASSWORD)
    with page.expect_navigation():
        page.click("nav.pages a[href='/churn']")
    assert _path(page) == "/churn"
    assert page.get_attribute("nav.pages a[href='/churn']", "aria-current") == "page"
    assert page.locator("h1").inner_text().startswith("Churn risk")
    # The server's daily job may or may not have scored the demo yet: either is a whole page.
    assert page.locator("table.risk").count() + page.locator("p.empty").count() == 1
    assert browser_errors == []

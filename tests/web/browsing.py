"""Serving a database with `execmetrics serve` and driving its pages in Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from tests.database import truncate_all

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token, create_user
from execmetrics.store.database import open_database

# Debian's chromium package, which .ci/run installs: browser downloads are impossible here.
CHROMIUM = Path(os.environ.get("EXECMETRICS_TEST_CHROMIUM", "/usr/bin/chromium"))
EXECMETRICS = Path(sys.executable).parent / "execmetrics"
DATABASES = ["sqlite", "postgresql"]
APP_ROLE = "execmetrics_app"
SECRET = "a-test-secret-key-for-the-dashboard-pages-0123456789"
# The secret the tests sign and seal with, and no scheduler: the tests run the jobs themselves.
PAGE_SETTINGS = {"EXECMETRICS_SECRET_KEY": SECRET, "EXECMETRICS_SCHEDULER": "false"}
PASSWORD = "correct horse battery staple"
ANALYST, VIEWER = "analyst@example.com", "viewer@example.com"
DAY_US = 86_400 * 10**6
# Importing the server and its analytics libraries takes about ten seconds, several times
# that on a busy two-core machine.
SERVER_START_SECONDS = 90
TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Database:
    engine: Engine  # as its owner, to prepare and inspect what the pages show
    server_url: str  # what `execmetrics serve` connects with


@contextmanager
def fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[Database]:
    """A migrated, empty database of the kind `request.param` names: a SQLite file in the
    folder, or the session's PostgreSQL database, which the server uses as the application
    role so that row-level security applies as in production."""
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'execmetrics.db'}"
        engine = open_database(url)
        try:
            yield Database(engine, url)
        finally:
            engine.dispose()
        return
    postgres: Engine = request.getfixturevalue("postgres_engine")
    truncate_all(postgres)
    postgres_url: str = request.getfixturevalue("postgres_url")
    as_app = make_url(postgres_url).set(username=APP_ROLE, password=None)
    try:
        yield Database(postgres, as_app.render_as_string(hide_password=False))
    finally:
        truncate_all(postgres)


def add_users(engine: Engine, users: Mapping[str, Role], token_role: Role) -> str:
    """Users who sign in with PASSWORD, and an API token of the role for a day."""
    with engine.begin() as connection:
        for email, role in users.items():
            create_user(connection, email, PASSWORD, role)
        token, _ = create_token(connection, "browser-tests", token_role, DAY_US)
    return token


def environment() -> dict[str, str]:
    """The caller's environment without any EXECMETRICS_ setting that could change the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECMETRICS_")}
    env["EXECMETRICS_ENVIRONMENT"] = "development"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


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


@contextmanager
def serving(
    db_url: str, folder: Path, settings: Mapping[str, str], port: int | None = None
) -> Iterator[str]:
    """`execmetrics serve` on the database with the settings, on the port (a free one unless
    given), logging into the folder; yields its base URL once it answers."""
    port = free_port() if port is None else port
    base_url = local_url(port)
    log = folder / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(EXECMETRICS), "serve", "--port", str(port), "--db", db_url],
            cwd=folder, env=environment() | dict(settings), stdout=output,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class Site:
    """A running `execmetrics serve`."""

    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@dataclass(frozen=True)
class ApiSite(Site):
    token: str  # an API token, to compare the pages with the API

    def api(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url(path), headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


@dataclass
class Tab:
    page: Page
    errors: list[str]  # console errors (CSP violations among them) and uncaught exceptions


@contextmanager
def open_tab(
    browser: Browser, *, javascript: bool = True, navigation_timeout_ms: int = TIMEOUT_MS
) -> Iterator[Tab]:
    """A fresh browser context (no cookies) and its page, with the errors its pages report."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, java_script_enabled=javascript
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(navigation_timeout_ms)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    try:
        yield Tab(page, errors)
    finally:
        context.close()


def submit_sign_in(page: Page, site: Site, email: str, password: str) -> None:
    page.goto(site.url("/sign-in"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def sign_in(page: Page, site: Site, email: str) -> None:
    """Signs in with PASSWORD, which leads to the overview."""
    submit_sign_in(page, site, email, PASSWORD)
    assert page.url == site.url("/")


def nav_paths(page: Page) -> list[str]:
    """The paths the page's bar offers, in order."""
    paths: list[str] = page.locator("nav.pages a").evaluate_all(
        "(links) => links.map((a) => a.pathname)"
    )
    return paths

"""Fixtures for the browser tests: Chromium, and a fresh tab in it per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright
from tests.web.browsing import CHROMIUM, TIMEOUT_MS, Tab, open_tab


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def navigation_timeout_ms() -> int:
    """How long a page may take to load; a module whose pages take longer overrides it."""
    return TIMEOUT_MS


@pytest.fixture
def tab(browser: Browser, navigation_timeout_ms: int) -> Iterator[Tab]:
    with open_tab(browser, navigation_timeout_ms=navigation_timeout_ms) as opened:
        yield opened

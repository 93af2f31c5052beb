"""Pages in headless Chromium for the browser tests (the `browser` fixture is in tests/conftest.py)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Screenshots go to the ignored tests/artifacts/ so a test run leaves the tree clean;
# `make screenshots` points this at docs/screenshots to refresh the README's pictures.
SCREENSHOTS = Path(os.environ.get("TUNELOOP_SCREENSHOTS")
                   or Path(__file__).resolve().parents[2] / "tests" / "artifacts" / "screenshots")


def _open(browser, live_server, **options) -> Iterator:
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860},
                                  color_scheme="light", **options)
    tab = context.new_page()
    tab.script_errors = []
    tab.on("pageerror", lambda error: tab.script_errors.append(str(error)))
    yield tab
    context.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A fresh browser context (no cookies), under the app's real CSP."""
    yield from _open(browser, live_server)


@pytest.fixture
def page_without_csp(browser, live_server) -> Iterator:
    """CSP off: proves the escaping alone keeps hostile text inert."""
    yield from _open(browser, live_server, bypass_csp=True)


def log_in(page, name: str, password: str) -> None:
    """Through the login form, keyboard only."""
    page.goto("/rate")
    page.wait_for_url("**/login?next=%2Frate")
    from playwright.sync_api import expect

    # The name field has autofocus; typing before it lands would go to the page.
    expect(page.locator('input[name="name"]')).to_be_focused()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/rate")


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

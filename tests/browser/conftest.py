"""Browser tests: Debian's headless Chromium driven by Playwright against pytest-django's live server.

Playwright's sync API runs an event loop in the test thread, so Django's async-safety check must be relaxed for
database access from tests. The browser is never downloaded: without /usr/bin/chromium the tests skip (and fail
in CI, where a skip would hide a regression).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.factories import ensure_roles

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-tests-only"


@pytest.fixture(autouse=True)
def staff_roles(transactional_db: None) -> None:
    """The role groups, as migration 0002 defines them.

    Transactional tests (these, and others in the suite) flush the database when they finish, and with it the
    groups the data migration created; rebuild them from the migration's own table so each test starts whole.
    """
    ensure_roles()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, live_server: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the live server, laptop-sized."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def screenshot(artifacts_dir: str, request: pytest.FixtureRequest) -> Callable[[Any, str], str]:
    """`screenshot(page, "step")` saves test-artifacts/browser/<test>-<nn>-<step>.png."""
    folder = os.path.join(artifacts_dir, "browser")
    os.makedirs(folder, exist_ok=True)
    test_name = re.sub(r"[^\w.-]+", "_", request.node.name)
    counter = iter(range(1, 1000))

    def take(tab: Any, step: str) -> str:
        safe_step = re.sub(r"[^\w.-]+", "_", step)
        path = os.path.join(folder, f"{test_name}-{next(counter):02d}-{safe_step}.png")
        tab.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def login(screenshot: Callable[[Any, str], str]) -> Callable[[Any, str], None]:
    """Sign in through the real login form, as a person would."""

    def sign_in(tab: Any, username: str, password: str = PASSWORD) -> None:
        tab.goto("/login/")
        tab.get_by_label("Username").fill(username)
        tab.get_by_label("Password").fill(password)
        screenshot(tab, f"login-{username}")
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_load_state("domcontentloaded")

    return sign_in

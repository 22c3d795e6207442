"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the
end-to-end stack (both sandboxes and our web app over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness.stack import stack  # noqa: F401  (fixture, by name)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@contextmanager
def chromium_context() -> Iterator[Any]:
    """Headless Debian Chromium with a fresh profile (no cookies): a browser context.

    Missing Chromium FAILS the test: the pages' behaviour in a real browser is part of what
    the suite proves (scripts/test.sh installs Debian's chromium)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh, which installs Debian's "
                    "chromium for the browser tests.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            context.set_default_timeout(10_000)
            yield context
        finally:
            browser.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A fresh Chromium context, for tests that need no in-process stack."""
    with chromium_context() as context:
        yield context


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The first tab of a fresh Chromium, after the in-process `stack` is up.

    Started after the stack: Playwright's sync API keeps an event loop on this thread, and
    the stack's set-up runs its own with asyncio.run."""
    request.getfixturevalue("stack")
    with chromium_context() as context:
        yield context.new_page()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Any:
    """`screenshot(page, "step")` keeps test-artifacts/screenshots/<test>__<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name.replace("[", "_").replace("]", "")

    def take(page: Any, step: str) -> Path:
        path = SCREENSHOTS / f"{test}__{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

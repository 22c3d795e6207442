"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the
end-to-end stack (both sandboxes and our web app over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness.browser import (
    chromium_context,
    shared_chromium,  # noqa: F401  (fixture, by name)
)
from harness.stack import stack  # noqa: F401  (fixture, by name)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@contextmanager
def _context() -> Iterator[Any]:
    """A fresh context (no cookies, no storage) of the process's one headless Chromium
    (tests/harness/browser.py)."""
    with chromium_context(viewport={"width": 1360, "height": 900}) as context:
        context.set_default_timeout(10_000)
        yield context


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh Chromium context, for tests that need no in-process stack."""
    request.getfixturevalue("shared_chromium")
    with _context() as context:
        yield context


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The first tab of a fresh Chromium context, after the in-process `stack` is up.

    The stack's set-up runs asyncio on this thread: it runs while Playwright is parked
    (tests/harness/browser.py), and the test's flows of the stack run on another thread."""
    request.getfixturevalue("shared_chromium")
    request.getfixturevalue("stack")
    with _context() as context:
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

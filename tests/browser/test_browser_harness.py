"""The browser tests' harness (tests/harness/browser.py): one Chromium per test process, a
fresh context per test, and asyncio usable on the thread between browser tests (the next
test's stack set-up, pytest's async tests)."""

from __future__ import annotations

import asyncio

import pytest
from harness.browser import chromium_context

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("shared_chromium")]


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_one_chromium_a_fresh_context_each_and_asyncio_in_between() -> None:
    with chromium_context() as first:
        page = first.new_page()
        page.set_content("<p>one</p>")
        first.add_cookies([{"name": "seen", "value": "1", "url": "http://127.0.0.1/"}])
        assert page.text_content("p") == "one"
        browser = first.browser

    # As the stack's set-up does on this thread (harness/stack.py: asyncio.run).
    assert asyncio.run(_answer()) == 42

    with chromium_context() as second:
        assert second.browser is browser  # the same Chromium, not launched again
        assert second.cookies() == []  # nothing of the other context's
        page = second.new_page()
        page.set_content("<p>two</p>")
        assert page.text_content("p") == "two"
    assert asyncio.run(_answer()) == 42

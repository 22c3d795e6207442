"""The browser tests' harness (tests/harness/browser.py): one Chromium per test process, a
fresh context per test, and asyncio usable on the thread between browser tests (the next
test's stack set-up, pytest's async tests)."""

from __future__ import annotations

import asyncio

import pytest
from harness.browser import chromium_context, soon

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


def test_soon_brings_a_pages_own_refresh_forward_and_fails_as_the_expect_does() -> None:
    from playwright.sync_api import expect

    with chromium_context() as context:
        context.clock.install()
        page = context.new_page()
        # A page that refreshes itself every 6 s: later than `soon`'s 5 s below, in real time.
        page.set_content('<p id="p">old</p><script>setInterval(() => {'
                         'document.getElementById("p").textContent = "refreshed"}, 6000)'
                         '</script>')
        soon(page, lambda ms: expect(page.locator("#p")).to_have_text("refreshed", timeout=ms),
             timeout=5)

        with pytest.raises(AssertionError):
            soon(page, lambda ms: expect(page.locator("#p")).to_have_text("never", timeout=ms),
                 timeout=1)

"""Issue 16 (R52, replacing R26): "reply on Monday" in Chromium. The number is connected,
the admin chooses its re-engagement template on the dashboard, the customer writes on
Friday, the clocks jump past 24 h, the agent replies from the ticket: the template goes
instead of a FAILED, the ticket says so, and the customer's phone shows it.

Screenshots go to test-artifacts/screenshots/; the README shows them (copied to
docs/screenshots/ by scripts/update-screenshots.sh, kept in step by tests/docs)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from harness.browser import soon
from harness.pacing import fast_aircall_bucket
from test_browser_full_story import _customer_writes, _message, _reply_from_ticket

from whatsapp_helpdesk.domain import reengagement

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    # The template's send waited ~14 s for the install's Aircall calls to be paced out
    # (tests/harness/pacing.py).
    fast_aircall_bucket,
]

CUSTOMER = "+33612345678"
TEMPLATE_TEXT = "Hello, we have answered your request: "


# The page's message after an action; not the numbers refresh's line, which says since the
# install when the numbers were last read from Aircall.
FLASH = "[role=status]:not(#numbers-refresh)"

def _off_the_browser_thread(work: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=60)


def _move_all_clocks(stack: Any, seconds: float) -> None:
    """As tests/e2e/test_e2e_reply.py does: the service's clock first (the web app's cached
    offset moves at once, bootstrap.StoredClockOffset), then both sandboxes'."""
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": seconds})
    stack.hubspot.post("/_sandbox/clock", json={"advance_seconds": seconds})
    stack.aircall.post("/_sandbox/clock", json={"advance_seconds": seconds})


def _settle(stack: Any) -> None:
    stack.wait_deliveries()
    stack.drain()
    stack.wait_deliveries()
    stack.drain()


def test_R52_reply_on_monday(stack, browser_page, screenshot) -> None:
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: stack.connect(1001))
    page = browser_page
    page.context.set_default_timeout(20_000)
    # The pages' timers under Playwright's clock, which `soon` brings forward.
    page.context.clock.install()

    # The admin lists the number's templates and chooses one, the agent's reply as {{1}}.
    page.goto(f"{stack.bridge.base_url}/dashboard")
    card = page.locator("#templates article").filter(has_text="Support France")
    card.get_by_role("button", name="List templates from Aircall").click()
    expect(page.locator(FLASH)).to_contain_text("3 approved")
    card.get_by_label("Template").select_option(label="reply_waiting · en · utility")
    card.get_by_label("Filled with").select_option(value="text")
    card.get_by_role("button", name="Save").click()
    expect(card).to_contain_text("Re-engagement template: reply_waiting (en)")
    card.scroll_into_view_if_needed()
    screenshot(page, "14-choose-re-engagement-template")

    # Friday: the customer writes.
    phone = page.context.new_page()
    phone.goto(f"{stack.aircall.base_url}/phone?phone={quote(CUSTOMER)}&number_id=1001")
    _customer_writes(phone, "Hello, can I change my delivery address?")
    _off_the_browser_thread(lambda: _settle(stack))

    # Monday, more than 24 h later: the agent replies from the ticket.
    _off_the_browser_thread(lambda: _move_all_clocks(stack, 3 * 24 * 3600))
    tickets = page.context.new_page()
    tickets.goto(f"{stack.hubspot.base_url}/help-desk/4242/tickets")
    tickets.locator("tbody tr").first.get_by_role("link").first.click()
    _reply_from_ticket(tickets, "Yes, your new address is saved.")
    expect(_message(tickets, "your new address is saved")).to_be_visible()
    _off_the_browser_thread(lambda: _settle(stack))

    soon(tickets, lambda ms: expect(_message(tickets, "your new address is saved")
                                    ).to_contain_text("Sent", timeout=ms))
    note = reengagement.ticket_note("reply_waiting", cut=False, fills_text=True)
    expect(tickets.locator("li.msg").filter(has_text="WhatsApp template")).to_contain_text(
        note)
    screenshot(tickets, "15-reply-on-monday-sends-the-template")

    soon(phone, lambda ms: expect(phone.locator("#thread")).to_contain_text(
        TEMPLATE_TEXT + "Yes, your new address is saved.", timeout=ms))
    screenshot(phone, "16-template-on-the-phone")

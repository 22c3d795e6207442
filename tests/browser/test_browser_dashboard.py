"""The dashboard in a real browser (R7, R8, R36): the re-authentication banner and the
button that fixes it, a switch worked from the keyboard, "Help Desk rules apply".
Screenshots are kept under test-artifacts/screenshots/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness.pacing import fast_aircall_bucket
from sqlalchemy import update

from whatsapp_helpdesk.db.models import Installation

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    # The install's Aircall calls booked the workers' Aircall bucket (60 / min): a reply
    # claimed after them waited ~7 s for its slot (tests/harness/pacing.py).
    fast_aircall_bucket,
]


# The page's message after an action; not the numbers refresh's line, which says since the
# install when the numbers were last read from Aircall.
FLASH = "[role=status]:not(#numbers-refresh)"

def _off_the_browser_thread(work: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=30)


def test_R8_dashboard_banner_and_the_button_that_reauthorises(stack, browser_page, screenshot
                                                              ) -> None:
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: stack.connect(1001))
    with stack.services.sessions.begin() as session:
        session.execute(update(Installation).values(
            reauth_required="HubSpot refused to refresh the access token. Reconnect HubSpot."))
    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")  # signs in through HubSpot on the way
    expect(page.get_by_role("heading", name="Integration dashboard")).to_be_visible()
    banner = page.get_by_role("region", name="Action needed")
    expect(banner).to_contain_text("HubSpot refused to refresh the access token")
    expect(page.get_by_role("row", name="Support France")).to_contain_text(
        "Help Desk rules apply")
    screenshot(page, "1-dashboard-with-banner")
    banner.get_by_role("link", name="Reconnect HubSpot and Aircall").click()
    page.wait_for_url(f"{stack.bridge.base_url}/dashboard")
    page.goto(f"{stack.bridge.base_url}/dashboard")
    expect(page.get_by_role("region", name="Action needed")).to_have_count(0)
    screenshot(page, "2-dashboard-after-reauthorising")


def test_R7_a_switch_works_from_the_keyboard(stack, browser_page, screenshot) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    switch = page.get_by_role("switch", name="Native ticketing for Sales UK")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.focus()
    page.keyboard.press("Enter")
    expect(page.locator(FLASH)).to_contain_text("Native ticketing is now on for Sales UK")
    expect(page.get_by_role("switch", name="Native ticketing for Sales UK")).to_have_attribute(
        "aria-checked", "true")
    screenshot(page, "switch-turned-on")


def test_issue6_dashboard_follows_the_traffic_without_a_reload(stack, browser_page, screenshot
                                                               ) -> None:
    """Its live sections are refreshed in place (static/live.js); one the admin is reading
    (an opened "why" panel) is left as it is."""
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: stack.connect(1001))
    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    card = page.locator("#health .card").filter(has_text="Support France")
    expect(card).to_contain_text("Last message in")
    expect(card.locator("dd").first).to_have_text("never")
    why = page.get_by_role("row", name="Madrid").locator("details")
    why.locator("summary").click()
    expect(why).to_have_attribute("open", "")

    def customer_writes() -> None:
        stack.customer_says("Hello, anyone there?")
        stack.wait_deliveries()
        stack.drain()

    _off_the_browser_thread(customer_writes)
    # No reload: the health card changes by itself within a few seconds…
    expect(card.locator("dd").first).not_to_have_text("never", timeout=15_000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    # …while the numbers section, where the panel is open, was left alone.
    expect(why).to_have_attribute("open", "")
    screenshot(page, "live-health")


def _a_reply_refused_for_its_attachment(stack: Any) -> None:
    """The customer writes; the agent answers with an attachment, which WhatsApp can't
    carry: the reply is FAILED in the ticket (R25), its outbox job itself is done."""
    import time

    from sqlalchemy import func, select

    from whatsapp_helpdesk.db.models import Message

    stack.connect(1001)
    stack.customer_says("Where is my parcel?")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    answer = stack.hubspot.post(
        f"/_sandbox/portals/4242/threads/{ticket['threadId']}/replies",
        json={"text": "Here is the invoice", "attachments": [
            {"type": "FILE", "name": "invoice.pdf", "url": "https://files.example/i.pdf"}]})
    assert answer.status_code == 201, answer.text
    deadline = time.monotonic() + 10
    while True:  # HubSpot's webhook reaches us over HTTP
        with stack.services.sessions() as session:
            if session.scalar(select(func.count()).select_from(Message).where(
                    Message.direction == "outbound")):
                break
        assert time.monotonic() < deadline, "the reply never reached the service"
        time.sleep(0.05)
    stack.drain()


def test_issue15_failed_count_agrees_with_the_failed_replies_listed(stack, browser_page,
                                                                    screenshot) -> None:
    """Issue 15 item 4 (R9): the card said "Failed 0" while the installation had failed
    replies. Every failure counted is listed, and every one listed is counted."""
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: _a_reply_refused_for_its_attachment(stack))
    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    card = page.get_by_role("article", name="Support France")
    expect(card.locator("div", has=page.locator("dt", has_text="Failed")).locator("dd")
           ).to_have_text("1")
    failures = card.locator(".failures > li")
    expect(failures).to_have_count(1)
    expect(failures.first).to_contain_text("Agent reply to WhatsApp")
    expect(failures.first).to_contain_text("Attachments can't be sent")
    expect(failures.first).to_contain_text("The agent can send it again from the ticket")
    screenshot(page, "failed-reply-counted-and-listed")


def test_issue15_company_whatsapp_setting_says_what_to_do(stack, browser_page) -> None:
    """Issue 15 item 4: the company-level WhatsApp setting is worded as what to do."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    section = page.get_by_role("region", name="WhatsApp for this Aircall company")
    expect(section).to_contain_text("You normally have nothing to do here")
    expect(section).to_contain_text("Connect a channel")
    expect(section.get_by_label("Does your Aircall company have WhatsApp?")).to_be_visible()


def test_issue15_disconnect_asks_first_and_reconnect_reuses_the_channel_account(
    stack, browser_page, screenshot
) -> None:
    """Issue 15 item 2 (R6): disconnecting asks for confirmation; reconnecting from the
    dashboard re-authorises the same HubSpot channel account (no stale "Not authorized" row
    in HubSpot), so the customer's next message continues the same ticket."""
    from harness.pages import hubspot_accounts
    from playwright.sync_api import expect

    def first_message() -> None:
        stack.connect(1001)
        stack.customer_says("Where is my parcel?")
        stack.wait_deliveries()
        stack.drain()

    _off_the_browser_thread(first_message)
    [before] = hubspot_accounts(stack)
    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    row = page.get_by_role("row", name="Support France")
    row.get_by_role("link", name="Disconnect Support France from the Help Desk").click()
    expect(page.get_by_role("heading", name="Disconnect Support France?")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("continue in the same tickets")
    screenshot(page, "1-disconnect-confirmation")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Integration dashboard")).to_be_visible()
    assert hubspot_accounts(stack)[0]["authorized"] is True  # nothing happened

    row.get_by_role("link", name="Disconnect Support France from the Help Desk").click()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(FLASH)).to_contain_text("Support France is disconnected")
    assert hubspot_accounts(stack)[0]["authorized"] is False

    row = page.get_by_role("row", name="Support France")
    row.get_by_role("link", name="Reconnect Support France to the Help Desk").click()
    expect(page.get_by_role("heading", name="Reconnect Support France?")).to_be_visible()
    screenshot(page, "2-reconnect-confirmation")
    page.get_by_role("button", name="Reconnect").click()
    expect(page.locator(FLASH)).to_contain_text("Support France is connected again")
    [after] = hubspot_accounts(stack)
    assert after["id"] == before["id"] and after["authorized"] is True

    def next_message() -> None:
        stack.customer_says("Any news?")
        stack.wait_deliveries()
        stack.drain()

    _off_the_browser_thread(next_message)
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["Where is my parcel?", "Any news?"]
    page.goto(f"{stack.hubspot.base_url}/help-desk/4242/settings/channels")
    expect(page.get_by_text("Not authorized")).to_have_count(0)


def test_issue15_when_the_account_is_gone_the_dashboard_says_new_tickets_first(
    stack, browser_page
) -> None:
    """Issue 15 item 2: HubSpot archived the account, so it can't be re-used: the dashboard
    says, before anything is done, that connecting the number again starts new tickets."""
    from harness.pages import hubspot_accounts, live_accounts, wait_for
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: stack.connect(1001))
    [account] = hubspot_accounts(stack)
    stack.hubspot.patch(f"/_sandbox/portals/4242/channel-accounts/{account['id']}",
                        json={"archived": True})
    wait_for(lambda: live_accounts(stack) == [])
    page = browser_page
    page.goto(f"{stack.bridge.base_url}/dashboard")
    row = page.get_by_role("row", name="Support France")
    row.get_by_role("link", name="Reconnect Support France to the Help Desk").click()
    expect(page.get_by_role("heading", name="Reconnecting Support France starts new tickets")
           ).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Connect a channel")
    expect(page.get_by_role("button", name="Reconnect")).to_have_count(0)
    assert live_accounts(stack) == []  # nothing was done

"""R2–R5 in a real browser: HubSpot's Settings › Help Desk › Channels › Connect a channel ›
WhatsApp with Aircall opens our pop-up, which signs the admin in through HubSpot, lists the
eligible numbers, connects the one picked and goes back to HubSpot, where the channel is
listed; each of R5's three errors shows on the pop-up in words. Screenshots are kept under
test-artifacts/screenshots/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from harness.browser import soon
from harness.pages import PORTAL, hubspot_accounts, live_accounts, number_row

from whatsapp_helpdesk.connect.popup import connect_number

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # The browser checks the pages; both databases are covered by the HTTP page tests.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    # The install goes on (the pop-up, the connect pages): the stacks install for real rather
    # than from the process's snapshot (tests/harness/stack.py).
    pytest.mark.stack(fresh_install=True),
]

SUPPORT_FR, BERLIN = 1001, 1003


def _off_the_browser_thread(work: Any) -> Any:
    """Playwright's sync API keeps an event loop on this thread; the stack's helpers start
    their own with asyncio.run, so they run on another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=30)


def _open_connection_popup(stack: Any, page: Any) -> Any:
    """HubSpot: Settings › Help Desk › Channels › Connect a channel › WhatsApp with Aircall."""
    from playwright.sync_api import expect

    page.goto(f"{stack.hubspot.base_url}/help-desk/{PORTAL}/settings/channels")
    expect(page.get_by_role("heading", name="Channels", exact=True)).to_be_visible()
    page.get_by_text("Connect a channel", exact=True).last.click()
    with page.expect_popup() as popup_info:
        page.get_by_role("button", name="Connect WhatsApp with Aircall").click()
    popup = popup_info.value
    # Not signed in to our service yet: the pop-up goes through the HubSpot sign-in and
    # comes back to the number picker.
    popup.wait_for_url("**/connect?**")
    expect(popup.get_by_role("heading", name="Connect a WhatsApp number")).to_be_visible()
    return popup


def test_R2_R4_connect_a_channel_from_the_help_desk_settings(stack, browser_page, screenshot
                                                             ) -> None:
    from playwright.sync_api import expect

    page = browser_page
    popup = _open_connection_popup(stack, page)
    picker = popup.get_by_role("group", name="WhatsApp numbers ready to connect")
    expect(picker.get_by_role("radio")).to_have_count(2)
    expect(popup.get_by_label("Sales UK")).to_have_count(0)
    screenshot(popup, "1-number-picker")
    popup.get_by_label("Support France").check()
    popup.get_by_role("button", name="Connect").click()
    # Back in HubSpot inside the pop-up; it reloads the settings page and closes itself.
    popup.wait_for_event("close", timeout=15_000)
    expect(page.locator("[data-live]")).to_contain_text("WhatsApp · Support France")
    expect(page.locator("[data-live]")).to_contain_text("+33176360695")
    screenshot(page, "2-channel-listed-in-hubspot")
    assert [a["deliveryIdentifier"]["value"] for a in hubspot_accounts(stack)] == [
        "+33176360695"]
    assert len(live_accounts(stack)) == 1


def test_R5_account_token_not_found_in_the_browser(stack, browser_page, screenshot) -> None:
    from playwright.sync_api import expect

    popup = _open_connection_popup(stack, browser_page)
    stack.hubspot.post("/_sandbox/clock", json={"advance_seconds": 11 * 60})
    popup.get_by_label("Support France").check()
    popup.get_by_role("button", name="Connect").click()
    expect(popup.locator("main")).to_contain_text("Account token not found")
    expect(popup.locator("main")).to_contain_text("stayed open too long")
    screenshot(popup, "account-token-not-found")
    assert live_accounts(stack) == []


def test_R3_connected_numbers_are_shown_as_connected_not_offered(stack, browser_page,
                                                                 screenshot) -> None:
    """Issue 15 item 3: a number already connected is not a choice that fails later with
    "Number already exists": the pop-up shows it as connected, and where."""
    from playwright.sync_api import expect

    _off_the_browser_thread(lambda: stack.connect(SUPPORT_FR))
    popup = _open_connection_popup(stack, browser_page)
    picker = popup.get_by_role("group", name="WhatsApp numbers ready to connect")
    expect(picker.get_by_role("radio")).to_have_count(1)
    expect(popup.get_by_role("radio", name="Support France")).to_have_count(0)
    connected = popup.get_by_role("region", name="Already connected")
    expect(connected).to_contain_text("Support France")
    expect(connected).to_contain_text("+33 1 76 36 06 95")
    expect(connected).to_contain_text("as “WhatsApp · Support France”")
    expect(connected).to_contain_text("Settings › Help Desk › Channels")
    screenshot(popup, "connected-number-not-offered")


def test_R5_number_already_exists_in_the_browser(stack, browser_page, screenshot) -> None:
    from playwright.sync_api import expect

    popup = _open_connection_popup(stack, browser_page)
    # Connected from another window while this pop-up was open: HubSpot refuses the second.
    _off_the_browser_thread(lambda: stack.connect(SUPPORT_FR))
    popup.get_by_label("Support France").check()
    popup.get_by_role("button", name="Connect").click()
    expect(popup.get_by_role("alert").filter(has_text="Number already exists")).to_be_visible()
    screenshot(popup, "number-already-exists")
    assert len(live_accounts(stack)) == 1


def test_R5_same_token_created_by_another_user_in_the_browser(stack, browser_page, screenshot
                                                              ) -> None:
    from playwright.sync_api import expect

    popup = _open_connection_popup(stack, browser_page)
    token = parse_qs(urlparse(popup.url).query)["accountToken"][0]
    # Another admin of the same HubSpot account uses the same request first.
    _off_the_browser_thread(lambda: stack.run(lambda services: connect_number(
        services, installation_id=stack.installation_id,
        number_id=number_row(stack, BERLIN), account_token=token)))
    popup.get_by_label("Support France").check()
    popup.get_by_role("button", name="Connect").click()
    expect(popup.locator("main")).to_contain_text("Same token created by another user")
    screenshot(popup, "same-token-created-by-another-user")
    assert live_accounts(stack) == [(number_row(stack, BERLIN),
                                     hubspot_accounts(stack)[0]["id"])]


# The read's pacing is not what this test shows (test_e2e_numbers_at_scale.py): at 60 / min
# the added numbers would take half a minute behind the demo install's calls.
@pytest.mark.stack(aircall_rate_limit=6000)
def test_issue17_right_after_the_install_the_popup_says_the_numbers_are_being_read(
        stack, browser_page, screenshot) -> None:
    """Issue 17 item 7: the install queues the read of the numbers. A pop-up opened before
    it ends says so, with how far it is, and fills in as the numbers arrive, never an empty
    list without a word."""
    from playwright.sync_api import expect

    from whatsapp_helpdesk.connect.numbers_refresh import request_refresh

    added = stack.aircall.post("/_sandbox/companies/1/numbers",
                               json={"count": 3, "notify": False}).json()["number_ids"]
    # What the Aircall authorisation leaves queued (connect/install.py), no worker running.
    request_refresh(stack.services, stack.installation_id, after_install=True,
                    numbers_count=5 + len(added))
    browser_page.context.clock.install()  # live.js's timer, which `soon` brings forward
    popup = _open_connection_popup(stack, browser_page)
    reading = popup.locator("#numbers-reading")
    expect(reading).to_contain_text("Reading your Aircall numbers: 0 of 8.")
    expect(reading).to_contain_text("appear below as they are read")
    numbers = popup.locator("#connect-numbers")
    expect(numbers).not_to_contain_text(f"Line {added[-1]}")
    screenshot(popup, "numbers-being-read")

    _off_the_browser_thread(stack.drain)

    # The pop-up keeps itself up to date (static/live.js, every 3 s): no reload.
    # (Under "Why are other numbers not listed?": switched off for now, R3.)
    soon(popup, lambda ms: expect(numbers).to_contain_text(f"Line {added[-1]}", timeout=ms),
         timeout=15)
    expect(reading).to_be_empty()
    screenshot(popup, "numbers-read")

"""The dashboard in a real browser (R7, R8, R36): the re-authentication banner and the
button that fixes it, a switch worked from the keyboard, "Help Desk rules apply".
Screenshots are kept under test-artifacts/screenshots/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import update

from whatsapp_helpdesk.db.models import Installation

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


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
    page.wait_for_url(f"{stack.bridge.base_url}/")
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
    expect(page.get_by_role("status")).to_contain_text("Native ticketing is now on for Sales UK")
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

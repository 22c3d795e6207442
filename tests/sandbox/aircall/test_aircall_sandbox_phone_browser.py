"""The customer phone in a real browser: 2-second auto-refresh and keyboard use."""

from __future__ import annotations

import shutil

import pytest
from aircall_sandbox_harness import CUSTOMER, Receiver, Sandbox, subscribe, wait_for
from harness.browser import (
    chromium_context,
    shared_chromium,  # noqa: F401  (fixture, by name)
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("shared_chromium")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_phone_refreshes_by_itself_and_works_from_the_keyboard(aircall: Sandbox) -> None:
    from playwright.sync_api import expect

    with chromium_context() as context:  # the process's one Chromium (harness/browser.py)
        page = context.new_page()
        page.goto(f"{aircall.url}/phone?phone=%2B33612345678&number_id=1001")
        thread = page.locator("#thread")
        expect(thread).to_contain_text("No messages yet")

        aircall.customer_says("Typed elsewhere")  # appears without reloading
        expect(thread).to_contain_text("Typed elsewhere", timeout=5000)

        page.get_by_label("Message", exact=True).focus()
        page.keyboard.type("Sent with the keyboard")
        page.keyboard.press("Tab")  # message type
        page.keyboard.press("Tab")  # Send
        page.keyboard.press("Enter")
        expect(thread).to_contain_text("Sent with the keyboard")
        bodies = [
            m["body"]
            for m in aircall.http.get(
                "/_sandbox/customer/conversation", params={"phone": CUSTOMER}
            ).json()["messages"]
        ]
        assert bodies == ["Typed elsewhere", "Sent with the keyboard"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_home_delivery_log_shows_each_copy_number_not_a_python_method(
    aircall: Sandbox, receiver: Receiver
) -> None:
    """Issue 15 item 5 (R40, the sandbox's screens): the delivery log named a duplicate as
    `<built-in method copy of dict …>`; it names the event, and a duplicate's copy number."""
    from playwright.sync_api import expect

    subscribe(aircall.basic, receiver, ["message.received"])
    aircall.configure(duplicate_deliveries=1)
    aircall.customer_says("Twice")
    wait_for(lambda: len(receiver.bodies("message.received")) == 2)
    with chromium_context() as context:  # the process's one Chromium (harness/browser.py)
        page = context.new_page()
        page.goto(f"{aircall.url}/")
        events = page.locator(
            "section[aria-labelledby=deliveries-title] tbody tr td:nth-child(2)")
        expect(events).to_have_count(2)
        assert sorted(events.all_inner_texts()) == ["message.received",
                                                    "message.received (copy 2, a duplicate)"]
        expect(page.locator("body")).not_to_contain_text("built-in method")

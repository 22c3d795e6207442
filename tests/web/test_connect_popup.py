"""The connection pop-up over real HTTP (R2–R4): HubSpot's staging token → our /connect →
only the eligible numbers, the others explained → pick one → back to HubSpot, channel listed.
"""

from __future__ import annotations

import pytest
from harness.pages import (
    confirm,
    hubspot_accounts,
    live_accounts,
    number_row,
    radios,
    signed_in_popup,
    text_of,
)
from sqlalchemy import update

from whatsapp_helpdesk.db.models import Installation, Number

# What this file tests goes through the install (OAuth, the pop-up, the connect pages): its
# stacks install for real rather than from the process's snapshot (tests/harness/stack.py).
pytestmark = pytest.mark.stack(fresh_install=True)

SUPPORT_FR, SALES_UK, BERLIN, US_SUPPORT = 1001, 1002, 1003, 1005


def test_R2_R3_popup_lists_only_eligible_numbers_and_says_why_the_others_are_not(stack) -> None:
    _, _, page = signed_in_popup(stack)
    # Support France and Berlin Service have WhatsApp and both switches on (the demo's
    # setup); Sales UK and Madrid have no WhatsApp; US Support's WhatsApp is pending.
    assert radios(page.text) == {str(number_row(stack, SUPPORT_FR)),
                                 str(number_row(stack, BERLIN))}
    sales_uk = text_of(page.text, f"why-{number_row(stack, SALES_UK)}")
    assert "Sales UK" in sales_uk
    assert "The number is not enabled for WhatsApp at Aircall." in sales_uk
    assert "The number's WhatsApp line is not ready at Aircall yet (status PENDING)." in text_of(
        page.text, f"why-{number_row(stack, US_SUPPORT)}")


def test_R3_no_eligible_number_names_the_missing_conditions_per_number(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).values(helpdesk_enabled=False))
        session.execute(update(Number).where(
            Number.aircall_number_id == str(BERLIN)).values(connected_to_hubspot=False))
        session.execute(update(Installation).values(
            hubspot_scopes="crm.objects.contacts.read tickets"))
    _, _, page = signed_in_popup(stack)
    assert radios(page.text) == set()
    assert "No number can be connected yet" in page.text
    berlin = text_of(page.text, f"why-{number_row(stack, BERLIN)}")
    for text in ("The Help Desk setting is off for the number",
                 "The number is not connected to the HubSpot integration",
                 "The service was not granted HubSpot's conversation scopes"):
        assert text in berlin
    assert "not enabled for WhatsApp" not in berlin
    # The missing scope is also a banner with the button that fixes it (R8).
    assert 'href="/oauth/hubspot/install"' in page.text


def test_R3b_a_company_stated_without_whatsapp_has_nothing_to_offer(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Installation).values(company_whatsapp_override=False))
    _, _, page = signed_in_popup(stack)
    assert radios(page.text) == set()
    assert "The Aircall company does not have WhatsApp enabled" in text_of(
        page.text, f"why-{number_row(stack, SUPPORT_FR)}")


def test_R4_picking_a_number_connects_it_and_returns_to_hubspot(stack) -> None:
    client, popup, page = signed_in_popup(stack)
    answer = confirm(client, popup, page.text, number_row(stack, SUPPORT_FR))
    assert answer.status_code == 303
    assert answer.headers["location"] == popup["returnUrl"]
    [account] = hubspot_accounts(stack)
    assert account["deliveryIdentifier"]["value"] == "+33176360695"
    assert account["inboxId"] == popup["inboxId"]  # the help desk's inbox
    assert live_accounts(stack) == [(number_row(stack, SUPPORT_FR), account["id"])]
    # Back in HubSpot the channel is listed.
    channels = stack.hubspot.get(answer.headers["location"]).text
    assert "WhatsApp · Support France" in channels


def test_R4_a_connected_number_gets_customer_messages_into_the_help_desk(stack) -> None:
    client, popup, page = signed_in_popup(stack)
    confirm(client, popup, page.text, number_row(stack, SUPPORT_FR))
    stack.customer_says("Hello from WhatsApp")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["Hello from WhatsApp"]


def test_no_open_redirect_a_foreign_return_address_is_not_followed(stack) -> None:
    client, popup, page = signed_in_popup(stack)
    answer = confirm(client, popup, page.text, number_row(stack, SUPPORT_FR),
                     redirectUrl="https://evil.example/steal")
    assert answer.status_code == 200
    assert "evil.example" not in answer.headers.get("location", "")
    assert "Connected — you can close this window." in answer.text
    # The page closes itself: its script is a file now (no inline script under the CSP).
    assert '<script src="/static/close_popup.js"' in answer.text
    assert "window.close()" in client.get("/static/close_popup.js").text
    assert len(live_accounts(stack)) == 1

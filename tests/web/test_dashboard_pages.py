"""The integration dashboard over real HTTP (R7, R36): every number with Calls / SMS /
WhatsApp, its switches, its Help Desk channel, native ticketing or "Help Desk rules apply";
the company's WhatsApp statement (R3 b); the static files."""

from __future__ import annotations

from harness.pages import (
    number_row,
    number_settings,
    post_form,
    signed_in,
    text_of,
)
from sqlalchemy import select

from whatsapp_helpdesk.db.models import Installation

SUPPORT_FR, SALES_UK, BERLIN, US_SUPPORT = 1001, 1002, 1003, 1005


def test_R7_every_number_with_calls_sms_whatsapp_and_its_settings(stack) -> None:
    stack.connect(SUPPORT_FR)
    _, page = signed_in(stack)
    rows = {n: text_of(page, f"number-{number_row(stack, n)}")
            for n in (SUPPORT_FR, SALES_UK, BERLIN, 1004, US_SUPPORT)}
    # Calls / SMS / WhatsApp, in the table's column order.
    assert "Support France +33 1 76 36 06 95 ✓ Yes ✓ Yes ✓ Yes" in rows[SUPPORT_FR]
    assert "Sales UK +44 20 7946 0958 ✓ Yes ✓ Yes – No" in rows[SALES_UK]
    assert "Berlin Service +49 30 901820 ✓ Yes – No ✓ Yes" in rows[BERLIN]
    assert "– WhatsApp pending" in rows[US_SUPPORT]
    # The Help Desk channel and its channel account; R36 instead of the native switch.
    assert "Connected WhatsApp · Support France HubSpot channel account 33074" in rows[SUPPORT_FR]
    assert "Help Desk rules apply" in rows[SUPPORT_FR]
    assert "Help Desk rules apply" not in rows[BERLIN]
    assert 'aria-label="Native ticketing for Berlin Service"' in page
    assert "Ready" in rows[BERLIN] and "Not connected" in rows[SALES_UK]
    assert "The number is not enabled for WhatsApp at Aircall" in rows[SALES_UK]


def test_R7_switches_turn_settings_on_and_off(stack) -> None:
    client, _ = signed_in(stack)
    sales = number_row(stack, SALES_UK)
    answer = post_form(client, f"/dashboard/numbers/{sales}/settings",
                       setting="connected_to_hubspot", value="on")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    post_form(client, f"/dashboard/numbers/{sales}/settings", setting="native_ticketing",
              value="on")
    number = number_settings(stack, SALES_UK)
    assert number.connected_to_hubspot and number.native_ticketing
    page = client.get("/dashboard").text
    assert "Native ticketing is now on for Sales UK." in page
    assert 'aria-label="Native ticketing for Sales UK"' in page
    row = page.split(f'id="number-{sales}"')[1]
    assert row.index('aria-checked="true"') < row.index("</tr>")
    post_form(client, f"/dashboard/numbers/{sales}/settings", setting="native_ticketing",
              value="off")
    assert not number_settings(stack, SALES_UK).native_ticketing


def test_R7_a_help_desk_channel_keeps_its_switches_until_disconnected(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, page = signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    assert "Locked while this is the Help Desk channel." in text_of(page, f"number-{support}")
    post_form(client, f"/dashboard/numbers/{support}/settings", setting="helpdesk_enabled",
          value="off")
    assert number_settings(stack, SUPPORT_FR).helpdesk_enabled
    assert "Disconnect the channel first" in client.get("/dashboard").text


def test_R3b_an_admin_can_state_whether_the_company_has_whatsapp(stack) -> None:
    client, _ = signed_in(stack)
    post_form(client, "/dashboard/company-whatsapp", choice="no")
    with stack.services.sessions() as session:
        assert session.scalars(select(Installation.company_whatsapp_override)).one() is False
    page = client.get("/dashboard").text
    assert "The Aircall company does not have WhatsApp enabled" in page
    post_form(client, "/dashboard/company-whatsapp", choice="auto")
    with stack.services.sessions() as session:
        assert session.scalars(select(Installation.company_whatsapp_override)).one() is None


def test_static_files_are_served_and_nothing_else(stack) -> None:
    assert stack.bridge.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert stack.bridge.get("/static/logo.svg").headers["content-type"] == "image/svg+xml"
    assert stack.bridge.get("/static/..%2Fauth.py").status_code == 404
    assert stack.bridge.get("/static/pages.py").status_code == 404

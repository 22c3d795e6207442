"""Channel health and the actions on channels (R6, R7, R9, R44): failed deliveries with their
reason and a retry that sends them, disconnect here and from HubSpot, refresh from Aircall."""

from __future__ import annotations

import pytest
from harness.pages import (
    hubspot_accounts,
    live_accounts,
    number_row,
    number_settings,
    post_form,
    signed_in,
    text_of,
    wait_for,
)
from sqlalchemy import select, update

from whatsapp_helpdesk.db.models import Message, Number, OutboxEntry

SUPPORT_FR, SALES_UK, BERLIN, US_SUPPORT = 1001, 1002, 1003, 1005


def test_R9_health_shows_a_failed_delivery_with_its_reason_and_retry_sends_it(stack) -> None:
    stack.connect(SUPPORT_FR)
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/custom-channels/2026-03/", "method": "POST",
        "mode": "status", "status": 400, "times": 1})
    stack.customer_says("my parcel is late")
    stack.wait_deliveries()
    stack.drain()
    assert stack.tickets() == []
    client, page = signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    with stack.services.sessions() as session:
        failed = session.scalars(select(OutboxEntry).where(OutboxEntry.state == "failed")).one()
    delivery = text_of(page, f"delivery-{failed.id}")
    assert "Customer message to HubSpot “my parcel is late”" in delivery
    assert "HubSpot refused to publish the message (400" in delivery
    health = text_of(page, f"health-card-{support}")
    assert "Failed 1" in health and "Last message in" in health
    answer = post_form(client, f"/dashboard/deliveries/{failed.id}/retry")
    assert answer.status_code == 303
    assert "will be tried again" in client.get("/dashboard").text
    stack.drain()
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["my parcel is late"]
    page = client.get("/dashboard").text
    assert "Failed 0" in text_of(page, f"health-card-{support}")
    with stack.services.sessions() as session:
        assert session.scalars(select(Message.status)).one() == "published"


def test_R6_disconnect_stops_the_channel_here_and_in_hubspot(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    answer = post_form(client, f"/dashboard/numbers/{support}/disconnect")
    assert answer.status_code == 303
    assert live_accounts(stack) == []
    [account] = hubspot_accounts(stack)
    assert account["authorized"] is False
    page = client.get("/dashboard").text
    assert "Support France is disconnected from the Help Desk." in page
    assert "Help Desk rules apply" not in text_of(page, f"number-{support}")
    # Traffic stops: a new customer message is not published any more.
    stack.customer_says("still there?")
    stack.wait_deliveries()
    stack.drain()
    assert stack.tickets() == []


def test_R6_hubspot_archiving_the_account_shows_on_the_dashboard(stack) -> None:
    stack.connect(SUPPORT_FR)
    [account] = hubspot_accounts(stack)
    stack.hubspot.patch(f"/_sandbox/portals/4242/channel-accounts/{account['id']}",
                        json={"archived": True})
    wait_for(lambda: live_accounts(stack) == [])
    client, page = signed_in(stack)
    row = text_of(page, f"number-{number_row(stack, SUPPORT_FR)}")
    # No longer a channel; the way back (issue 15) first asks HubSpot whether the account
    # can be re-used: archived, it can't, and the page says new tickets would start.
    assert "Disconnected" in row and "Help Desk rules apply" not in row
    confirm = client.get(f"/dashboard/numbers/{number_row(stack, SUPPORT_FR)}/reconnect")
    assert "starts new tickets" in confirm.text


# Aircall's real limit would pace the refresh's reads over 20 s of wall time: what this test
# proves is the refresh, not the pacing (tests/e2e/test_e2e_numbers_at_scale.py).
@pytest.mark.stack(aircall_rate_limit=6000, aircall_rate_window_seconds=60)
def test_R7_refresh_numbers_from_aircall(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).values(sms_enabled=False, name="old name"))
    client, _ = signed_in(stack)
    assert post_form(client, "/dashboard/numbers/refresh").status_code == 303
    stack.drain()  # the worker refreshes them (issue 17 item 7)
    page = client.get("/dashboard").text
    assert "Numbers refreshed from Aircall at" in page
    sales = number_settings(stack, SALES_UK)
    assert sales.sms_enabled and sales.name == "Sales UK"

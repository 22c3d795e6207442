"""Who may use the pop-up (R10): sign-in through HubSpot on the way, CSRF on the form, and a
number freed by a disconnect (R6) can be connected again."""

from __future__ import annotations

import pytest
from harness.pages import (
    admin,
    confirm,
    csrf_of,
    finish_sign_in,
    hubspot_accounts,
    live_accounts,
    number_row,
    open_popup,
    popup_form,
    sign_in,
    signed_in_popup,
)
from sqlalchemy import select

from whatsapp_helpdesk.db.models import ChannelAccount

# What this file tests goes through the install (OAuth, the pop-up, the connect pages): its
# stacks install for real rather than from the process's snapshot (tests/harness/stack.py).
pytestmark = pytest.mark.stack(fresh_install=True)

SUPPORT_FR = 1001


def test_R10_a_visitor_signs_in_through_hubspot_and_comes_back_to_the_popup(stack) -> None:
    popup = open_popup(stack)
    visitor = admin(stack)
    first = visitor.get(popup["popupUrl"])
    assert first.status_code == 303 and first.headers["location"].startswith("/signin?next=")
    to_hubspot = visitor.get(first.headers["location"])
    page = finish_sign_in(visitor, to_hubspot.headers["location"])
    assert "Support France" in page and 'name="number_id"' in page
    assert popup["accountToken"] in page  # carried through the sign-in


def test_R10_a_form_posted_after_the_session_ended_is_refused(stack) -> None:
    _, popup, page = signed_in_popup(stack)
    stranger = admin(stack)
    answer = stranger.post("/connect", data={**popup_form(popup), "csrf_token": "x" * 43,
                                             "number_id": str(number_row(stack, SUPPORT_FR))})
    assert answer.status_code == 403
    assert live_accounts(stack) == [] and hubspot_accounts(stack) == []


def test_R10_posting_without_or_with_a_wrong_csrf_token_is_refused(stack) -> None:
    client, popup, page = signed_in_popup(stack)
    number = str(number_row(stack, SUPPORT_FR))
    missing = client.post("/connect", data={**popup_form(popup), "number_id": number})
    wrong = client.post("/connect", data={**popup_form(popup), "number_id": number,
                                          "csrf_token": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    assert live_accounts(stack) == [] and hubspot_accounts(stack) == []
    # The token was not spent: the real form still works.
    assert confirm(client, popup, page.text, int(number)).status_code == 303


def test_R6_after_a_dashboard_disconnect_the_number_can_be_connected_again(stack) -> None:
    client, popup, page = signed_in_popup(stack)
    number = number_row(stack, SUPPORT_FR)
    assert confirm(client, popup, page.text, number).status_code == 303
    dashboard = client.get("/dashboard")
    client.post(f"/dashboard/numbers/{number}/disconnect",
                data={"csrf_token": csrf_of(dashboard.text)})
    again = open_popup(stack)
    page = client.get(again["popupUrl"])
    assert "Already connected" not in page.text
    assert confirm(client, again, page.text, number).status_code == 303
    with stack.services.sessions() as session:
        rows = session.scalars(select(ChannelAccount).order_by(ChannelAccount.id)).all()
    assert [r.disconnected_at is None for r in rows] == [False, True]
    assert rows[0].hubspot_channel_account_id != rows[1].hubspot_channel_account_id
    assert [a["authorized"] for a in hubspot_accounts(stack)] == [False, True]


def test_the_page_says_what_to_do_when_opened_without_hubspot_or_for_an_unknown_account(
    stack,
) -> None:
    client = admin(stack)
    sign_in(client)
    bare = client.get("/connect")
    assert bare.status_code == 400 and "Connect a channel" in bare.text
    unknown = client.get("/connect", params={"accountToken": "t", "portalId": "999"})
    assert unknown.status_code == 404 and "not installed" in unknown.text

"""The connection pop-up over real HTTP (R2–R5, R10): HubSpot's staging token → our /connect
→ pick a number → back to HubSpot; the three errors of R5, each made by the sandbox; no open
redirect; CSRF; sign-in on the way.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update
from web_harness import (
    admin,
    csrf_of,
    finish_sign_in,
    hubspot_accounts,
    live_accounts,
    number_row,
    open_popup,
    popup_form,
    sign_in,
    text_of,
)

from whatsapp_helpdesk.db.models import ChannelAccount, Installation, Number

SUPPORT_FR, SALES_UK, BERLIN = 1001, 1002, 1003


def _radios(html: str) -> set[str]:
    return set(re.findall(r'type="radio" name="number_id" id="number-(\d+)"', html))


def _signed_in_popup(stack, client=None):  # type: ignore[no-untyped-def]
    client = client or admin(stack)
    sign_in(client)
    popup = open_popup(stack)
    page = client.get(popup["popupUrl"])
    assert page.status_code == 200, page.text
    return client, popup, page


def _confirm(client, popup, page_html: str, number_id: int, **override: str):  # type: ignore[no-untyped-def]
    form = {**popup_form(popup), "csrf_token": csrf_of(page_html), "number_id": str(number_id),
            **override}
    return client.post("/connect", data=form)


def test_R2_R3_popup_lists_only_eligible_numbers_and_says_why_the_others_are_not(stack) -> None:
    _, _, page = _signed_in_popup(stack)
    # Support France and Berlin Service have WhatsApp and both switches on (the demo's
    # setup); Sales UK and Madrid have no WhatsApp; US Support's WhatsApp is pending.
    assert _radios(page.text) == {str(number_row(stack, SUPPORT_FR)),
                                  str(number_row(stack, BERLIN))}
    assert "Sales UK" in text_of(page.text, f"why-{number_row(stack, SALES_UK)}")
    assert "The number is not enabled for WhatsApp at Aircall." in text_of(
        page.text, f"why-{number_row(stack, 1005)}")


def test_R3_no_eligible_number_names_the_missing_conditions_per_number(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).values(helpdesk_enabled=False))
        session.execute(update(Number).where(
            Number.aircall_number_id == str(BERLIN)).values(connected_to_hubspot=False))
        session.execute(update(Installation).values(
            hubspot_scopes="crm.objects.contacts.read tickets"))
    _, _, page = _signed_in_popup(stack)
    assert _radios(page.text) == set()
    assert "No number can be connected yet" in page.text
    berlin = text_of(page.text, f"why-{number_row(stack, BERLIN)}")
    for text in ("The Help Desk setting is off for the number",
                 "The number is not connected to the HubSpot integration",
                 "The service was not granted HubSpot's conversation scopes"):
        assert text in berlin
    assert "not enabled for WhatsApp" not in berlin
    # The missing scope is also a banner with the button that fixes it (R8).
    assert 'href="/oauth/hubspot/install"' in page.text


def test_R4_picking_a_number_connects_it_and_returns_to_hubspot(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    answer = _confirm(client, popup, page.text, number_row(stack, SUPPORT_FR))
    assert answer.status_code == 303
    assert answer.headers["location"] == popup["returnUrl"]
    [account] = hubspot_accounts(stack)
    assert account["deliveryIdentifier"]["value"] == "+33176360695"
    assert account["inboxId"] == popup["inboxId"]  # the help desk's inbox
    assert live_accounts(stack) == [(number_row(stack, SUPPORT_FR), account["id"])]
    # Back in HubSpot the channel is listed.
    channels = stack.hubspot.get(answer.headers["location"]).text
    assert "WhatsApp · Support France" in channels


def test_R5_account_token_not_found_when_the_page_stayed_open_too_long(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    stack.hubspot.post("/_sandbox/clock", json={"advance_seconds": 11 * 60})  # TTL is 10 min
    answer = _confirm(client, popup, page.text, number_row(stack, SUPPORT_FR))
    assert answer.status_code == 410
    assert "Account token not found" in answer.text
    assert "stayed open too long" in answer.text
    assert live_accounts(stack) == [] and hubspot_accounts(stack) == []


def test_R5_number_already_exists_on_a_second_connection_of_the_same_number(stack) -> None:
    client, first, page = _signed_in_popup(stack)
    assert _confirm(client, first, page.text, number_row(stack, SUPPORT_FR)).status_code == 303
    second = open_popup(stack)
    page = client.get(second["popupUrl"])
    assert "Already connected to the help desk as" in page.text
    answer = _confirm(client, second, page.text, number_row(stack, SUPPORT_FR))
    assert answer.status_code == 409
    assert "Number already exists" in answer.text
    assert "already connected to another HubSpot channel account" in answer.text
    # Nothing half-done: still the first account only, on both sides.
    assert len(live_accounts(stack)) == 1 and len(hubspot_accounts(stack)) == 1
    # The request is still good: another number can be picked on the same page.
    again = _confirm(client, second, answer.text, number_row(stack, BERLIN))
    assert again.status_code == 303
    assert len(live_accounts(stack)) == 2


def test_R5_same_token_created_by_another_user(stack) -> None:
    alice, popup, alice_page = _signed_in_popup(stack)
    bob = admin(stack)
    sign_in(bob)
    bob_page = bob.get(popup["popupUrl"])  # the same request, open in two windows
    assert _confirm(alice, popup, alice_page.text, number_row(stack, SUPPORT_FR)
                    ).status_code == 303
    answer = _confirm(bob, popup, bob_page.text, number_row(stack, BERLIN))
    assert answer.status_code == 409
    assert "Same token created by another user" in answer.text
    assert live_accounts(stack) == [(number_row(stack, SUPPORT_FR),
                                     hubspot_accounts(stack)[0]["id"])]


def test_R10_a_visitor_signs_in_through_hubspot_and_comes_back_to_the_popup(stack) -> None:
    popup = open_popup(stack)
    visitor = admin(stack)
    first = visitor.get(popup["popupUrl"])
    assert first.status_code == 303 and first.headers["location"].startswith("/signin?next=")
    to_hubspot = visitor.get(first.headers["location"])
    page = finish_sign_in(visitor, to_hubspot.headers["location"])
    assert "Support France" in page and 'name="number_id"' in page
    assert popup["accountToken"] in page  # carried through the sign-in


def test_no_open_redirect_a_foreign_return_address_is_not_followed(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    answer = _confirm(client, popup, page.text, number_row(stack, SUPPORT_FR),
                      redirectUrl="https://evil.example/steal")
    assert answer.status_code == 200
    assert "evil.example" not in answer.headers.get("location", "")
    assert "you can close this window" in answer.text
    assert len(live_accounts(stack)) == 1


def test_R10_posting_without_or_with_a_wrong_csrf_token_is_refused(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    number = str(number_row(stack, SUPPORT_FR))
    missing = client.post("/connect", data={**popup_form(popup), "number_id": number})
    wrong = client.post("/connect", data={**popup_form(popup), "number_id": number,
                                          "csrf_token": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    assert live_accounts(stack) == [] and hubspot_accounts(stack) == []
    # The token was not spent: the real form still works.
    assert _confirm(client, popup, page.text, int(number)).status_code == 303


def test_a_number_that_is_not_eligible_is_refused_even_if_posted(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    answer = _confirm(client, popup, page.text, number_row(stack, SALES_UK))
    assert answer.status_code == 400
    assert "can&#39;t be connected" in answer.text
    assert live_accounts(stack) == [] and hubspot_accounts(stack) == []


def test_the_page_says_what_to_do_when_opened_without_hubspot_or_for_an_unknown_account(
    stack,
) -> None:
    client = admin(stack)
    sign_in(client)
    bare = client.get("/connect")
    assert bare.status_code == 400 and "Connect a channel" in bare.text
    unknown = client.get("/connect", params={"accountToken": "t", "portalId": "999"})
    assert unknown.status_code == 404 and "not installed" in unknown.text


def test_after_a_dashboard_disconnect_the_number_can_be_connected_again(stack) -> None:
    client, popup, page = _signed_in_popup(stack)
    number = number_row(stack, SUPPORT_FR)
    assert _confirm(client, popup, page.text, number).status_code == 303
    dashboard = client.get("/dashboard")
    client.post(f"/dashboard/numbers/{number}/disconnect",
                data={"csrf_token": csrf_of(dashboard.text)})
    again = open_popup(stack)
    page = client.get(again["popupUrl"])
    assert _confirm(client, again, page.text, number).status_code == 303
    with stack.services.sessions() as session:
        rows = session.scalars(select(ChannelAccount).order_by(ChannelAccount.id)).all()
    assert [r.disconnected_at is None for r in rows] == [False, True]
    assert rows[0].hubspot_channel_account_id != rows[1].hubspot_channel_account_id

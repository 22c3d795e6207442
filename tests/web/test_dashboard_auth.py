"""The dashboard's guards and banner (R8, R10): re-authentication banner on every page with
the button that fixes it, sign-in required, CSRF on every action, sign-out."""

from __future__ import annotations

import httpx
from harness.pages import (
    admin,
    csrf_of,
    live_accounts,
    number_row,
    number_settings,
    signed_in,
)
from sqlalchemy import update

from whatsapp_helpdesk.db.models import Installation

SUPPORT_FR, SALES_UK, BERLIN, US_SUPPORT = 1001, 1002, 1003, 1005


def test_R8_banner_on_every_page_with_the_button_that_reauthorises(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Installation).values(
            reauth_required="HubSpot refused to refresh the access token. Reconnect HubSpot."))
    client, page = signed_in(stack)
    popup = stack.hubspot.post("/_sandbox/portals/4242/channel-connections", json={
        "channelId": stack.services.channel_id(), "userId": 1}).json()
    for html in (page, client.get(popup["popupUrl"]).text):
        assert "HubSpot refused to refresh the access token" in html
        assert 'href="/oauth/hubspot/install"' in html
    # The button works: a new authorisation clears the banner.
    with httpx.Client(base_url=str(stack.bridge.base_url), follow_redirects=True,
                      cookies=client.cookies, timeout=10) as browser:
        browser.get("/oauth/hubspot/install")
        assert "Action needed" not in browser.get("/dashboard").text


def test_R8_missing_scopes_are_named_in_the_banner(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Installation).values(
            hubspot_scopes="conversations.custom_channels.read conversations.custom_channels.write"
        ))
    _, page = signed_in(stack)
    assert "missing: conversations.read, conversations.write" in page
    assert "Re-authorise HubSpot" in page


def test_R10_pages_and_actions_need_a_signed_in_admin(stack) -> None:
    visitor = admin(stack)
    page = visitor.get("/dashboard")
    assert page.status_code == 303 and page.headers["location"] == "/signin?next=%2Fdashboard"
    sales = number_row(stack, SALES_UK)
    for path, fields in [
        (f"/dashboard/numbers/{sales}/settings", {"setting": "connected_to_hubspot",
                                                  "value": "on"}),
        ("/dashboard/numbers/refresh", {}),
        ("/dashboard/company-whatsapp", {"choice": "no"}),
    ]:
        assert visitor.post(path, data=fields).status_code == 403
    assert not number_settings(stack, SALES_UK).connected_to_hubspot


def test_R10_an_action_without_the_csrf_token_changes_nothing(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = signed_in(stack)
    sales, support = number_row(stack, SALES_UK), number_row(stack, SUPPORT_FR)
    attempts = [
        (f"/dashboard/numbers/{sales}/settings", {"setting": "connected_to_hubspot",
                                                  "value": "on"}),
        (f"/dashboard/numbers/{support}/disconnect", {}),
        ("/dashboard/company-whatsapp", {"choice": "no"}),
    ]
    for path, fields in attempts:
        for token in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**fields, **token})
            assert answer.status_code == 403 and "Nothing was changed" in answer.text
    assert not number_settings(stack, SALES_UK).connected_to_hubspot
    assert len(live_accounts(stack)) == 1


def test_sign_out_ends_the_session(stack) -> None:
    client, page = signed_in(stack)
    assert client.post("/signout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert client.get("/dashboard").status_code == 303

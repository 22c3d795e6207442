"""The integration dashboard over real HTTP (R6–R10, R36, R44): every number with its
capabilities and switches, disconnect, the re-authentication banner, channel health and
retry, refresh from Aircall; sign-in and CSRF on every action."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update
from web_harness import (
    admin,
    csrf_of,
    hubspot_accounts,
    live_accounts,
    number_row,
    sign_in,
    text_of,
    wait_for,
)

from whatsapp_helpdesk.db.models import Installation, Message, Number, OutboxEntry

SUPPORT_FR, SALES_UK, BERLIN, US_SUPPORT = 1001, 1002, 1003, 1005


def _signed_in(stack) -> tuple[httpx.Client, str]:  # type: ignore[no-untyped-def]
    client = admin(stack)
    page = sign_in(client)
    return client, page


def _number(stack, aircall_id: int) -> Number:  # type: ignore[no-untyped-def]
    with stack.services.sessions() as session:
        number = session.get(Number, number_row(stack, aircall_id))
        assert number is not None
        session.expunge(number)
        return number


def _post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = client.get("/dashboard")
    return client.post(path, data={"csrf_token": csrf_of(page.text), **fields})


def test_R7_every_number_with_calls_sms_whatsapp_and_its_settings(stack) -> None:
    stack.connect(SUPPORT_FR)
    _, page = _signed_in(stack)
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
    client, _ = _signed_in(stack)
    sales = number_row(stack, SALES_UK)
    answer = _post(client, f"/dashboard/numbers/{sales}/settings",
                   setting="connected_to_hubspot", value="on")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    _post(client, f"/dashboard/numbers/{sales}/settings", setting="native_ticketing", value="on")
    number = _number(stack, SALES_UK)
    assert number.connected_to_hubspot and number.native_ticketing
    page = client.get("/dashboard").text
    assert "Native ticketing is now on for Sales UK." in page
    assert 'aria-label="Native ticketing for Sales UK"' in page
    row = page.split(f'id="number-{sales}"')[1]
    assert row.index('aria-checked="true"') < row.index("</tr>")
    _post(client, f"/dashboard/numbers/{sales}/settings", setting="native_ticketing", value="off")
    assert not _number(stack, SALES_UK).native_ticketing


def test_R7_a_help_desk_channel_keeps_its_switches_until_disconnected(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, page = _signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    assert "Disconnect the channel to change it." in text_of(page, f"number-{support}")
    _post(client, f"/dashboard/numbers/{support}/settings", setting="helpdesk_enabled",
          value="off")
    assert _number(stack, SUPPORT_FR).helpdesk_enabled
    assert "Disconnect the channel first" in client.get("/dashboard").text


def test_R6_disconnect_stops_the_channel_here_and_in_hubspot(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = _signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    answer = _post(client, f"/dashboard/numbers/{support}/disconnect")
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
    _, page = _signed_in(stack)
    assert "Not connected" in text_of(page, f"number-{number_row(stack, SUPPORT_FR)}") or \
        "Ready" in text_of(page, f"number-{number_row(stack, SUPPORT_FR)}")


def test_R8_banner_on_every_page_with_the_button_that_reauthorises(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Installation).values(
            reauth_required="HubSpot refused to refresh the access token. Reconnect HubSpot."))
    client, page = _signed_in(stack)
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
    _, page = _signed_in(stack)
    assert "missing: conversations.read, conversations.write" in page
    assert "Re-authorise HubSpot" in page


def test_R9_health_shows_a_failed_delivery_with_its_reason_and_retry_sends_it(stack) -> None:
    stack.connect(SUPPORT_FR)
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/v3/custom-channels/", "method": "POST", "mode": "status",
        "status": 400, "times": 1})
    stack.customer_says("my parcel is late")
    stack.wait_deliveries()
    stack.drain()
    assert stack.tickets() == []
    client, page = _signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    with stack.services.sessions() as session:
        failed = session.scalars(select(OutboxEntry).where(OutboxEntry.state == "failed")).one()
    delivery = text_of(page, f"delivery-{failed.id}")
    assert "Customer message to HubSpot “my parcel is late”" in delivery
    assert "HubSpot refused to publish the message (400" in delivery
    health = text_of(page, f"health-card-{support}")
    assert "Failed 1" in health and "Last message in" in health
    answer = _post(client, f"/dashboard/deliveries/{failed.id}/retry")
    assert answer.status_code == 303
    assert "will be tried again" in client.get("/dashboard").text
    stack.drain()
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["my parcel is late"]
    page = client.get("/dashboard").text
    assert "Failed 0" in text_of(page, f"health-card-{support}")
    with stack.services.sessions() as session:
        assert session.scalars(select(Message.status)).one() == "published"


def test_R7_refresh_numbers_from_aircall(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).values(sms_enabled=False, name="old name"))
    client, _ = _signed_in(stack)
    assert _post(client, "/dashboard/numbers/refresh").status_code == 303
    page = client.get("/dashboard").text
    assert "Numbers refreshed from Aircall." in page
    assert _number(stack, SALES_UK).sms_enabled and _number(stack, SALES_UK).name == "Sales UK"


def test_R3b_an_admin_can_state_whether_the_company_has_whatsapp(stack) -> None:
    client, _ = _signed_in(stack)
    _post(client, "/dashboard/company-whatsapp", choice="no")
    with stack.services.sessions() as session:
        assert session.scalars(select(Installation.company_whatsapp_override)).one() is False
    page = client.get("/dashboard").text
    assert "The Aircall company does not have WhatsApp enabled" in page
    _post(client, "/dashboard/company-whatsapp", choice="auto")
    with stack.services.sessions() as session:
        assert session.scalars(select(Installation.company_whatsapp_override)).one() is None


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
    assert not _number(stack, SALES_UK).connected_to_hubspot


def test_R10_an_action_without_the_csrf_token_changes_nothing(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = _signed_in(stack)
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
    assert not _number(stack, SALES_UK).connected_to_hubspot
    assert len(live_accounts(stack)) == 1


def test_sign_out_ends_the_session(stack) -> None:
    client, page = _signed_in(stack)
    assert client.post("/signout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert client.get("/dashboard").status_code == 303


def test_static_files_are_served_and_nothing_else(stack) -> None:
    assert stack.bridge.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert stack.bridge.get("/static/logo.svg").headers["content-type"] == "image/svg+xml"
    assert stack.bridge.get("/static/..%2Fauth.py").status_code == 404
    assert stack.bridge.get("/static/pages.py").status_code == 404

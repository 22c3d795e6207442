"""Help-desk screens: the demo path an admin and an agent follow, and basic accessibility."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from hubspot_sandbox_harness import BUSINESS_NUMBER, Hub

pytestmark = pytest.mark.anyio


class FormAudit(HTMLParser):
    """Collects form controls and labels to check every control is labelled."""

    def __init__(self) -> None:
        super().__init__()
        self.labelled: set[str] = set()
        self.controls: list[str] = []
        self.has_main = False
        self.lang = ""
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang") or ""
        if tag == "main":
            self.has_main = True
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        if tag in ("select", "textarea") or (
            tag == "input" and found.get("type") not in ("hidden", "submit")
        ):
            self.controls.append(str(found.get("id")))

    def unlabelled(self) -> list[str]:
        return [c for c in self.controls if c not in self.labelled]


def audit(html: str) -> FormAudit:
    parser = FormAudit()
    parser.feed(html)
    assert parser.lang == "en"
    assert parser.has_main
    assert parser.unlabelled() == []
    return parser


async def _page(hub: Hub, path: str) -> str:
    response = await hub.http.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    audit(response.text)
    return response.text


async def test_home_links_to_each_portal(hub: Hub) -> None:
    page = await _page(hub, "/")
    assert "/help-desk/4242/settings/channels" in page
    assert "Other Company" in page


async def test_r2_settings_connect_a_channel_through_the_popup(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    settings = await _page(hub, "/help-desk/4242/settings/channels")
    assert "Connect a channel" in settings
    assert "WhatsApp with Aircall" in settings
    assert "window.open" in settings
    # Without JavaScript the form makes the staging token and offers the pop-up link.
    connect = await hub.http.post(
        "/help-desk/4242/settings/channels/connect", data={"channelId": channel["id"]}
    )
    assert connect.status_code == 200
    audit(connect.text)
    parser = audit(connect.text)
    [popup] = [link for link in parser.links if "accountToken=" in link]
    account_token = httpx.URL(popup).params["accountToken"]
    patched = await hub.patch_staging_token(channel["id"], account_token, token)
    assert patched.status_code == 200
    back = await _page(hub, f"/help-desk/4242/settings/channels?connected={account_token}")
    assert "Connected." in back
    assert BUSINESS_NUMBER in back


async def test_connect_form_reports_errors_in_words(hub: Hub) -> None:
    response = await hub.http.post(
        "/help-desk/4242/settings/channels/connect", data={"channelId": "999"}
    )
    assert response.status_code == 404
    assert "Channel 999 not found" in response.text


async def test_disconnect_button_archives_the_account(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    response = await hub.http.post(
        f"/help-desk/4242/settings/channels/{account_id}/disconnect"
    )
    assert response.status_code == 303
    await hub.drain()
    assert hub.webhooks.bodies("CHANNEL_ACCOUNT_UPDATED")[0]["channelAccount"]["archived"]
    settings = await _page(hub, "/help-desk/4242/settings/channels")
    assert "No channel is connected" in settings


async def test_r13_r21_r23_ticket_view_reply_and_statuses(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id, "Where is my order?"))
    [ticket] = await hub.tickets()
    listing = await _page(hub, "/help-desk/4242/tickets")
    assert "WhatsApp conversation with Jane Doe" in listing
    assert "Where is my order?" in listing
    view = await _page(hub, f"/help-desk/4242/tickets/{ticket['id']}")
    assert "Where is my order?" in view
    assert '<label for="channel">Channel</label>' in view
    assert f"WhatsApp with Aircall — WhatsApp {BUSINESS_NUMBER}" in view
    sent = await hub.http.post(
        f"/help-desk/4242/tickets/{ticket['id']}/reply",
        data={"text": "On its way!", "channelAccountId": account_id, "agentId": "2"},
    )
    assert sent.status_code == 303
    await hub.drain()
    [event] = hub.webhooks.bodies("OUTGOING_CHANNEL_MESSAGE_CREATED")
    assert event["message"]["text"] == "On its way!"
    assert event["message"]["senders"][0]["name"] == "Sam Support"
    view = await _page(hub, f"/help-desk/4242/tickets/{ticket['id']}")
    assert "Sending…" in view
    await hub.http.patch(
        f"/conversations/v3/custom-channels/{channel_id}/messages/{event['message']['id']}",
        headers=hub.bearer(token),
        json={"statusType": "FAILED", "errorMessage": "The 24 h window is closed."},
    )
    view = await _page(hub, f"/help-desk/4242/tickets/{ticket['id']}")
    assert "Not delivered: The 24 h window is closed." in view


async def test_empty_reply_is_refused_with_a_message(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    [ticket] = await hub.tickets()
    response = await hub.http.post(
        f"/help-desk/4242/tickets/{ticket['id']}/reply", data={"text": "  "}
    )
    assert response.status_code == 303
    page = await _page(hub, response.headers["location"])
    assert "A reply needs text" in page


async def test_r22_contact_record_shows_messages_and_company(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id, "Hello"))).json()
    await hub.reply(incoming["conversationsThreadId"], "Hi Jane")
    page = await _page(hub, "/help-desk/4242/contacts/501")
    assert "Doe Bakery" in page
    assert "Hello" in page and "Hi Jane" in page
    assert "WhatsApp conversation with Jane Doe" in page
    contacts = await _page(hub, "/help-desk/4242/contacts")
    assert "Jane Doe" in contacts


async def test_close_ticket_button(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    [ticket] = await hub.tickets()
    closed = await hub.http.post(f"/help-desk/4242/tickets/{ticket['id']}/close")
    assert closed.status_code == 303
    [ticket] = await hub.tickets()
    assert ticket["status"] == "CLOSED"
    assert ticket["stage"] == "Closed"


async def test_unknown_records_are_html_404(hub: Hub) -> None:
    for path in ("/help-desk/1/tickets", "/help-desk/4242/tickets/1",
                 "/help-desk/4242/contacts/1"):
        response = await hub.http.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text


async def test_pages_have_a_live_region_refreshed_every_two_seconds(hub: Hub) -> None:
    page = await _page(hub, "/help-desk/4242/tickets")
    assert "data-live" in page
    assert "2000" in page

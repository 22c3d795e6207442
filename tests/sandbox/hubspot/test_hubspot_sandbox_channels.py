"""Custom channels and channel accounts: paths, developer-key auth, filters, tenancy."""

from __future__ import annotations

import pytest
from hubspot_sandbox_harness import (
    BUSINESS_NUMBER,
    CAPABILITIES,
    CONNECT_URL,
    DEVELOPER_KEY,
    WEBHOOK_URL,
    Hub,
)

pytestmark = pytest.mark.anyio
CHANNELS = "/conversations/v3/custom-channels"


async def test_create_channel_returns_201_with_id_and_location(hub: Hub) -> None:
    channel = await hub.create_channel()
    assert channel["id"].isdigit()
    assert channel["name"] == "WhatsApp with Aircall"
    assert channel["webhookUrl"] == WEBHOOK_URL
    assert channel["channelAccountConnectionRedirectUrl"] == CONNECT_URL
    assert channel["capabilities"] == CAPABILITIES
    assert channel["createdAt"].endswith("Z")


async def test_channel_registration_needs_the_developer_key_and_app_id(hub: Hub) -> None:
    body = {"name": "x", "capabilities": {}}
    no_key = await hub.http.post(CHANNELS, params={"appId": "1001"}, json=body)
    assert no_key.status_code == 401
    assert no_key.json()["category"] == "INVALID_AUTHENTICATION"
    no_app = await hub.http.post(
        CHANNELS, params={"hapikey": DEVELOPER_KEY["hapikey"]}, json=body
    )
    assert no_app.status_code == 400
    other_app = await hub.http.post(CHANNELS, params={**DEVELOPER_KEY, "appId": "9"}, json=body)
    assert other_app.status_code == 403


async def test_identifier_types_must_be_strings(hub: Hub) -> None:
    body = {"name": "x", "capabilities": {
        "deliveryIdentifierTypes": [{"type": "HS_PHONE_NUMBER", "value": "+33"}]}}
    response = await hub.http.post(CHANNELS, params=DEVELOPER_KEY, json=body)
    assert response.status_code == 400
    assert response.json()["subCategory"] == (
        "CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES"
    )


async def test_list_read_patch_archive_channel(hub: Hub) -> None:
    channel = await hub.create_channel()
    for path in (CHANNELS, CHANNELS + "/", "/conversations/custom-channels/v3"):
        listed = await hub.http.get(path, params=DEVELOPER_KEY)
        assert listed.status_code == 200
        assert listed.json()["total"] == 1
        assert listed.json()["results"][0]["id"] == channel["id"]
    read = await hub.http.get(f"{CHANNELS}/{channel['id']}", params=DEVELOPER_KEY)
    assert read.json() == channel
    patch = {
        "name": "WhatsApp with Aircall", "webhookUrl": "http://bridge.test/v2/webhook",
        "channelAccountConnectionRedirectUrl": CONNECT_URL, "channelDescription": "d",
        "channelLogoUrl": "http://bridge.test/l.png", "capabilities": CAPABILITIES,
    }
    patched = await hub.http.patch(
        f"{CHANNELS}/{channel['id']}", params=DEVELOPER_KEY, json=patch
    )
    assert patched.status_code == 200
    assert patched.json()["webhookUrl"] == "http://bridge.test/v2/webhook"
    deleted = await hub.http.delete(f"{CHANNELS}/{channel['id']}", params=DEVELOPER_KEY)
    assert deleted.status_code == 204
    gone = await hub.http.get(f"{CHANNELS}/{channel['id']}", params=DEVELOPER_KEY)
    assert gone.status_code == 404
    assert gone.json()["category"] == "OBJECT_NOT_FOUND"


async def test_channel_list_pages_with_after(hub: Hub) -> None:
    for _ in range(3):
        await hub.create_channel()
    first = await hub.http.get(CHANNELS, params={**DEVELOPER_KEY, "limit": "2"})
    assert len(first.json()["results"]) == 2
    after = first.json()["paging"]["next"]["after"]
    second = await hub.http.get(CHANNELS, params={**DEVELOPER_KEY, "limit": "2", "after": after})
    assert len(second.json()["results"]) == 1
    assert "paging" not in second.json()


async def test_channel_account_create_read_list(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    account = await hub.create_account(channel["id"], token)
    assert account == {
        "id": account["id"], "channelId": channel["id"], "inboxId": "5001",
        "name": f"WhatsApp {BUSINESS_NUMBER}", "active": True, "archived": False,
        "authorized": True, "createdAt": account["createdAt"],
        "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS_NUMBER},
    }
    base = f"{CHANNELS}/{channel['id']}/channel-accounts"
    read = await hub.http.get(f"{base}/{account['id']}", headers=hub.bearer(token))
    assert read.json() == account
    await hub.create_account(channel["id"], token, number="+33999999999")
    filtered = await hub.http.get(
        base, headers=hub.bearer(token), params={"deliveryIdentifierValue": BUSINESS_NUMBER}
    )
    assert [a["id"] for a in filtered.json()["results"]] == [account["id"]]
    everything = await hub.http.get(base, headers=hub.bearer(token))
    assert everything.json()["total"] == 2


async def test_channel_account_identifier_is_validated_and_unique(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    base = f"{CHANNELS}/{channel['id']}/channel-accounts"
    bad = await hub.http.post(base, headers=hub.bearer(token), json={
        "inboxId": "5001", "name": "n", "authorized": True,
        "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "06 12 34 56 78"}})
    assert bad.status_code == 400
    assert bad.json()["category"] == "VALIDATION_ERROR"
    await hub.create_account(channel["id"], token)
    duplicate = await hub.http.post(base, headers=hub.bearer(token), json={
        "inboxId": "5001", "name": "n", "authorized": True,
        "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS_NUMBER}})
    assert duplicate.status_code == 409
    assert duplicate.json()["subCategory"] == (
        "CustomChannelsError.DELIVERY_IDENTIFIER_ALREADY_EXISTS"
    )
    unknown_inbox = await hub.http.post(base, headers=hub.bearer(token), json={
        "inboxId": "6001", "name": "n", "authorized": True})
    assert unknown_inbox.status_code == 400


async def test_patching_an_account_sends_channel_account_updated(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    account = await hub.create_account(channel["id"], token)
    url = f"{CHANNELS}/{channel['id']}/channel-accounts/{account['id']}"
    patched = await hub.http.patch(url, headers=hub.bearer(token), json={"authorized": False})
    assert patched.status_code == 200
    assert patched.json()["authorized"] is False
    assert patched.json()["active"] is False
    await hub.drain()
    [event] = hub.webhooks.bodies("CHANNEL_ACCOUNT_UPDATED")
    assert event["channelAccountId"] == account["id"]
    assert event["portalId"] == "4242"
    assert event["channelAccount"]["authorized"] is False
    unchanged = await hub.http.patch(url, headers=hub.bearer(token), json={"authorized": False})
    assert unchanged.status_code == 200
    await hub.drain()
    assert len(hub.webhooks.bodies("CHANNEL_ACCOUNT_UPDATED")) == 1


async def test_accounts_of_another_portal_do_not_exist(hub: Hub) -> None:
    token = await hub.token()
    other = await hub.token(portal_id=4343)
    channel = await hub.create_channel()
    account = await hub.create_account(channel["id"], token)
    base = f"{CHANNELS}/{channel['id']}/channel-accounts"
    read = await hub.http.get(f"{base}/{account['id']}", headers=hub.bearer(other))
    assert read.status_code == 404
    listed = await hub.http.get(base, headers=hub.bearer(other))
    assert listed.json()["total"] == 0
    patch = await hub.http.patch(
        f"{base}/{account['id']}", headers=hub.bearer(other), json={"name": "hijack"}
    )
    assert patch.status_code == 404


async def test_inboxes_list_and_read(hub: Hub) -> None:
    token = await hub.token()
    listed = await hub.http.get(
        "/conversations/v3/conversations/inboxes", headers=hub.bearer(token)
    )
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 2
    assert {(i["id"], i["type"], i["name"]) for i in body["results"]} == {
        ("5000", "INBOX", "Inbox"), ("5001", "HELP_DESK", "Help Desk")}
    one = await hub.http.get(
        "/conversations/v3/conversations/inboxes/5001", headers=hub.bearer(token)
    )
    assert one.json()["type"] == "HELP_DESK"
    other_portal = await hub.http.get(
        "/conversations/v3/conversations/inboxes/6001", headers=hub.bearer(token)
    )
    assert other_portal.status_code == 404

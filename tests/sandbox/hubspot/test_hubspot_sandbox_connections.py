"""The connection pop-up with staging tokens (SPEC R2–R6) and its three errors (R5)."""

from __future__ import annotations

import httpx
import pytest
from hubspot_sandbox_harness import BASE_URL, BUSINESS_NUMBER, CONNECT_URL, Hub

pytestmark = pytest.mark.anyio


async def test_r2_connect_a_channel_opens_the_popup_url_with_the_staging_token(hub: Hub) -> None:
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    popup = httpx.URL(started["popupUrl"])
    assert str(popup.copy_with(query=None)) == CONNECT_URL
    assert popup.params["accountToken"] == started["accountToken"]
    assert popup.params["channelId"] == channel["id"]
    assert popup.params["portalId"] == "4242"
    assert popup.params["inboxId"] == "5001"  # the portal's HELP_DESK inbox
    assert popup.params["redirectUrl"] == started["returnUrl"]
    assert started["returnUrl"].startswith(f"{BASE_URL}/help-desk/4242/settings/channels")


async def test_r4_patching_the_token_creates_the_account_and_announces_it(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    response = await hub.patch_staging_token(channel["id"], started["accountToken"], token)
    assert response.status_code == 200
    staged = response.json()
    assert staged["accountToken"] == started["accountToken"]
    assert staged["genericChannelId"] == int(channel["id"])
    assert staged["inboxId"] == 5001
    assert staged["userId"] == 1
    assert staged["accountName"] == f"WhatsApp {BUSINESS_NUMBER}"
    assert staged["deliveryIdentifier"] == {"type": "HS_PHONE_NUMBER", "value": BUSINESS_NUMBER}
    accounts = (await hub.http.get("/_sandbox/portals/4242/channel-accounts")).json()
    [account] = accounts["channelAccounts"]
    assert account["inboxId"] == "5001"
    assert account["name"] == f"WhatsApp {BUSINESS_NUMBER}"
    await hub.drain()
    [event] = hub.webhooks.bodies("CHANNEL_ACCOUNT_CREATED")
    assert event["portalId"] == "4242"
    assert event["channelId"] == channel["id"]
    assert event["channelAccountId"] == account["id"]
    assert event["channelAccount"]["deliveryIdentifier"]["value"] == BUSINESS_NUMBER
    assert event["eventTimestamp"].endswith("Z")


async def test_r5_account_token_not_found_when_the_page_stayed_idle_too_long(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    await hub.advance(601)  # default staging-token lifetime: 600 s
    response = await hub.patch_staging_token(channel["id"], started["accountToken"], token)
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == "Account token not found"
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert (await hub.http.get("/_sandbox/portals/4242/channel-accounts")).json() == {
        "channelAccounts": []}


async def test_r5_unknown_token_is_not_found(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    response = await hub.patch_staging_token(channel["id"], "no-such-token", token)
    assert response.status_code == 404
    assert response.json()["message"] == "Account token not found"


async def test_r5_staging_token_ttl_is_configurable(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    configured = await hub.http.post("/_sandbox/config", json={"staging_token_ttl_seconds": 30})
    assert configured.json()["staging_token_ttl_seconds"] == 30
    started = await hub.start_connection(channel["id"])
    await hub.advance(31)
    response = await hub.patch_staging_token(channel["id"], started["accountToken"], token)
    assert response.status_code == 404


async def test_r5_same_token_used_by_another_user(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    first = await hub.patch_staging_token(channel["id"], started["accountToken"], token)
    assert first.status_code == 200
    second = await hub.patch_staging_token(
        channel["id"], started["accountToken"], token, number="+33155555555"
    )
    assert second.status_code == 409
    body = second.json()
    assert body["category"] == "CONFLICT"
    assert body["subCategory"] == "CustomChannelsError.STAGING_TOKEN_ALREADY_USED"
    assert "already used by another user" in body["message"]


async def test_r5_number_already_exists(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    first = await hub.start_connection(channel["id"])
    assert (await hub.patch_staging_token(channel["id"], first["accountToken"], token)).is_success
    second = await hub.start_connection(channel["id"])
    response = await hub.patch_staging_token(channel["id"], second["accountToken"], token)
    assert response.status_code == 409
    body = response.json()
    assert body["subCategory"] == "CustomChannelsError.DELIVERY_IDENTIFIER_ALREADY_EXISTS"
    assert body["message"].startswith("Number already exists")
    # Nothing half-done: the token stays usable for another number.
    retry = await hub.patch_staging_token(
        channel["id"], second["accountToken"], token, number="+33155555555"
    )
    assert retry.status_code == 200


async def test_r6_archived_account_frees_the_number(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    first = await hub.start_connection(channel["id"])
    await hub.patch_staging_token(channel["id"], first["accountToken"], token)
    [account] = (await hub.http.get("/_sandbox/portals/4242/channel-accounts")).json()[
        "channelAccounts"]
    archived = await hub.http.patch(
        f"/_sandbox/portals/4242/channel-accounts/{account['id']}", json={"archived": True}
    )
    assert archived.json()["archived"] is True
    await hub.drain()
    [event] = hub.webhooks.bodies("CHANNEL_ACCOUNT_UPDATED")
    assert event["channelAccount"]["archived"] is True
    assert event["channelAccount"]["archivedAt"]
    again = await hub.start_connection(channel["id"])
    response = await hub.patch_staging_token(channel["id"], again["accountToken"], token)
    assert response.status_code == 200


async def test_r10_a_token_of_another_portal_is_not_found(hub: Hub) -> None:
    other = await hub.token(portal_id=4343)
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])  # portal 4242
    response = await hub.patch_staging_token(channel["id"], started["accountToken"], other)
    assert response.status_code == 404


async def test_staging_patch_needs_name_and_identifier(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    response = await hub.http.patch(
        f"/conversations/v3/custom-channels/{channel['id']}/channel-account-staging-tokens/"
        f"{started['accountToken']}",
        headers=hub.bearer(token),
        json={"accountName": "only a name"},
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


async def test_connection_needs_a_redirect_url_on_the_channel(hub: Hub) -> None:
    channel = await hub.create_channel(channelAccountConnectionRedirectUrl=None)
    response = await hub.http.post(
        "/_sandbox/portals/4242/channel-connections", json={"channelId": channel["id"]}
    )
    assert response.status_code == 400

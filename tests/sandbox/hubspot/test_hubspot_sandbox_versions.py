"""R50: the sandbox HubSpot serves both families of paths, v3 and 2026-03, with the same
state behind them, and every answer fits the published schema of the version asked (the
harness checks each exchange against the OpenAPI file its path names)."""

from __future__ import annotations

import pytest
from hubspot_sandbox_harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEVELOPER_KEY,
    JANE_PHONE,
    REDIRECT_URI,
    Hub,
)
from openapi_hubspot import spec_file_for

pytestmark = pytest.mark.anyio

# Per version, from HubSpot's OpenAPI files: (custom channels, CRM objects, OAuth) prefixes.
FAMILIES = {
    "2026-03": ("/conversations/custom-channels/2026-03", "/crm/objects/2026-03",
                "/oauth/2026-03"),
    "v3": ("/conversations/v3/custom-channels", "/crm/v3/objects", "/oauth/v3"),
}
VERSIONS = pytest.mark.parametrize("version", sorted(FAMILIES))


def _form(**fields: str) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **fields}


@VERSIONS
async def test_R50_oauth_token_refresh_and_introspection_of_each_version(
    hub: Hub, version: str
) -> None:
    oauth = FAMILIES[version][2]
    code = await hub.authorize()
    exchanged = await hub.http.post(f"{oauth}/token", data=_form(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI))
    assert exchanged.status_code == 200, exchanged.text
    assert spec_file_for(exchanged.request.url.path) == f"oauth-{version}.json"
    refreshed = await hub.http.post(f"{oauth}/token", data=_form(
        grant_type="refresh_token", refresh_token=exchanged.json()["refresh_token"]))
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    assert access != exchanged.json()["access_token"]

    info = await hub.http.post(f"{oauth}/token/introspect",
                               data=_form(token=access, token_type_hint="access_token"))
    assert info.status_code == 200, info.text
    body = info.json()
    assert (body["active"], body["token_use"], body["hub_id"]) == (True, "access_token", 4242)
    assert "conversations.custom_channels.write" in body["scopes"]
    assert 0 < body["expires_in"] <= 1800

    of_refresh = await hub.http.post(f"{oauth}/token/introspect",
                                     data=_form(token=exchanged.json()["refresh_token"]))
    assert (of_refresh.json()["active"], of_refresh.json()["token_use"]) == (
        True, "refresh_token")


@VERSIONS
async def test_R50_introspection_says_inactive_once_the_token_expired(
    hub: Hub, version: str
) -> None:
    token = await hub.token()
    await hub.advance(1801)
    info = await hub.http.post(f"{FAMILIES[version][2]}/token/introspect", data=_form(token=token))
    assert info.status_code == 200, info.text
    assert (info.json()["active"], info.json()["expires_in"]) == (False, 0)


@VERSIONS
async def test_R50_introspection_refuses_other_apps_and_unknown_tokens(
    hub: Hub, version: str
) -> None:
    oauth = FAMILIES[version][2]
    token = await hub.token()
    wrong = await hub.http.post(f"{oauth}/token/introspect",
                                data={**_form(token=token), "client_secret": "nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    unknown = await hub.http.post(f"{oauth}/token/introspect", data=_form(token="at-unknown"))
    assert unknown.status_code == 404


@VERSIONS
async def test_R50_channel_account_and_message_on_each_version_share_one_state(
    hub: Hub, version: str
) -> None:
    channels, crm, _ = FAMILIES[version]
    token = await hub.token()
    created = await hub.http.post(channels, params=DEVELOPER_KEY, json={
        "name": "WhatsApp with Aircall", "webhookUrl": "http://bridge.test/webhooks/hubspot",
        "channelAccountConnectionRedirectUrl": "http://bridge.test/connect",
        "channelDescription": "d", "channelLogoUrl": "http://bridge.test/logo.png",
        "capabilities": {"deliveryIdentifierTypes": ["HS_PHONE_NUMBER"],
                         "threadingModel": "INTEGRATION_THREAD_ID"}})
    assert created.status_code == 201, created.text
    assert spec_file_for(created.request.url.path).endswith(f"-{version}.json")
    channel_id = str(created.json()["id"])
    account = await hub.http.post(
        f"{channels}/{channel_id}/channel-accounts", headers=hub.bearer(token),
        json={"inboxId": "5001", "name": "WhatsApp", "authorized": True,
              "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+33123456789"}})
    assert account.status_code == 201, account.text
    published = await hub.http.post(
        f"{channels}/{channel_id}/messages", headers=hub.bearer(token),
        json=hub.message_egg(str(account.json()["id"]), idempotency_id=f"wamid-{version}"))
    assert published.status_code == 201, published.text
    message_id = published.json()["id"]

    # The same message, read and updated through the other family: one state behind both.
    other = FAMILIES["v3" if version == "2026-03" else "2026-03"][0]
    read = await hub.http.get(f"{other}/{channel_id}/messages/{message_id}",
                              headers=hub.bearer(token))
    assert (read.status_code, read.json()["text"]) == (200, "Hi, my order hasn't arrived")
    assert [t["subject"] for t in await hub.tickets()] != []

    found = await hub.http.post(f"{crm}/contacts/search", headers=hub.bearer(token), json={
        "filterGroups": [{"filters": [
            {"propertyName": "phone", "operator": "EQ", "value": JANE_PHONE}]}],
        "properties": ["phone"], "sorts": [], "limit": 1, "after": "0"})
    assert found.status_code == 200, found.text
    assert found.json()["total"] == 1
    ticket = await hub.http.post(f"{crm}/tickets", headers=hub.bearer(token), json={
        "properties": {"subject": "Broken part", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
        "associations": [{"to": {"id": found.json()["results"][0]["id"]}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}]})
    assert ticket.status_code == 201, ticket.text
    assert spec_file_for(ticket.request.url.path) == f"crm-tickets-{version}.json"



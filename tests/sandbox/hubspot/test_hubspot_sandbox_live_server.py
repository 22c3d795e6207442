"""The sandbox through real HTTP: uvicorn on free loopback ports.

Covers what the in-process transport cannot: webhook delivery to a real receiver over TCP
(signature recomputed from what arrived) and the `drop` fault, which must look to an httpx
client like a server that closed the connection without answering.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hubspot_sandbox_harness import (
    ALL_SCOPES,
    CAPABILITIES,
    CLIENT_ID,
    CLIENT_SECRET,
    DEVELOPER_KEY,
    REDIRECT_URI,
    expected_signature_v3,
)
from hubspot_sandbox_live import ServerThread, wait_for
from openapi_hubspot import check_exchange
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from whatsapp_helpdesk.sandbox.hubspot import create_app


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def app(self, _: str) -> Starlette:
        async def hook(request: Request) -> Response:
            self.requests.append((str(request.url), dict(request.headers), await request.body()))
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerThread, ServerThread, Receiver]]:
    receiver = Receiver()
    with (
        ServerThread(receiver.app) as hook_server,
        ServerThread(lambda url: create_app(public_base_url=url)) as hub_server,
    ):
        yield hub_server, hook_server, receiver


def _token(client: httpx.Client) -> str:
    authorize = client.get("/oauth/authorize", params={
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": ALL_SCOPES})
    code = httpx.URL(authorize.headers["location"]).params["code"]
    tokens = check_exchange(client.post("/oauth/v1/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    return str(tokens.json()["access_token"])


def test_webhook_reaches_a_real_receiver_with_a_valid_signature(
    servers: tuple[ServerThread, ServerThread, Receiver],
) -> None:
    hub_server, hook_server, receiver = servers
    with httpx.Client(base_url=hub_server.url, timeout=10) as client:
        assert client.post("/_sandbox/reset").status_code == 200
        token = _token(client)
        auth = {"Authorization": f"Bearer {token}"}
        hook_url = f"{hook_server.url}/hook?portal=4242"
        channel = check_exchange(client.post(
            "/conversations/v3/custom-channels", params=DEVELOPER_KEY,
            json={"name": "WhatsApp with Aircall", "webhookUrl": hook_url,
                  "channelAccountConnectionRedirectUrl": f"{hook_server.url}/connect",
                  "capabilities": CAPABILITIES})).json()
        started = client.post("/_sandbox/portals/4242/channel-connections",
                              json={"channelId": channel["id"]}).json()
        staged = check_exchange(client.patch(
            f"/conversations/v3/custom-channels/{channel['id']}/channel-account-staging-tokens/"
            f"{started['accountToken']}", headers=auth,
            json={"accountName": "WhatsApp", "deliveryIdentifier": {
                "type": "HS_PHONE_NUMBER", "value": "+33123456789"}}))
        assert staged.status_code == 200
        wait_for(lambda: len(receiver.requests) >= 1)
    url, headers, raw = receiver.requests[-1]
    assert url == hook_url
    assert headers["x-hubspot-signature-v3"] == expected_signature_v3(
        method="POST", url=url, body=raw, timestamp=headers["x-hubspot-request-timestamp"])
    assert b'"type":"CHANNEL_ACCOUNT_CREATED"' in raw


def test_drop_fault_closes_the_connection_without_a_response(
    servers: tuple[ServerThread, ServerThread, Receiver],
) -> None:
    hub_server, _, _ = servers
    with httpx.Client(base_url=hub_server.url, timeout=5) as client:
        assert client.post("/_sandbox/reset").status_code == 200
        token = _token(client)
        client.post("/_sandbox/faults", json={
            "path_prefix": "/conversations/v3/conversations/inboxes", "mode": "drop"})
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/conversations/v3/conversations/inboxes",
                       headers={"Authorization": f"Bearer {token}"})
        after = client.get("/conversations/v3/conversations/inboxes",
                           headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 200

"""Webhook fixtures in tests/fixtures/hubspot/ are real sandbox payloads, kept in sync.

Each fixture must have exactly the shape (keys and value types, recursively) of what the
sandbox sends today for the same scenario. To rewrite them after a deliberate change:
`REGENERATE_HUBSPOT_FIXTURES=1 .venv/bin/python -m pytest tests/sandbox/hubspot -k
"test_fixtures_match"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hubspot_sandbox_harness import BASE_URL, Hub

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot"
DELIVERY_THREADING = {
    "deliveryIdentifierTypes": ["HS_PHONE_NUMBER"], "threadingModel": "DELIVERY_IDENTIFIER",
    "allowOutgoingMessages": True,
}
# In the order the scenario below emits them.
FIXTURE_NAMES = (
    "channel_account_created__staging_token",
    "outgoing_channel_message_created__text",
    "outgoing_channel_message_created__attachment",
    "channel_account_updated__deauthorized",
    "channel_account_updated__archived",
    "outgoing_channel_message_created__delivery_identifier_threading",
)


async def _scenario(hub: Hub) -> list[dict[str, Any]]:
    token = await hub.token()
    channel = await hub.create_channel()
    started = await hub.start_connection(channel["id"])
    await hub.patch_staging_token(channel["id"], started["accountToken"], token)
    accounts = (await hub.http.get("/_sandbox/portals/4242/channel-accounts")).json()
    account_id = accounts["channelAccounts"][0]["id"]
    egg = hub.message_egg(account_id, idempotency_id="aircall-wa-1")
    thread_id = (await hub.publish(token, channel["id"], egg)).json()["conversationsThreadId"]
    await hub.reply(thread_id, "Sorry about that — checking now.")
    await hub.reply(thread_id, "Here is the invoice.", attachments=[{
        "type": "FILE", "name": "invoice.pdf", "url": f"{BASE_URL}/files/invoice.pdf",
        "fileUsageType": "OTHER"}])
    await hub.http.patch(
        f"/conversations/v3/custom-channels/{channel['id']}/channel-accounts/{account_id}",
        headers=hub.bearer(token), json={"authorized": False},
    )
    await hub.http.patch(
        f"/_sandbox/portals/4242/channel-accounts/{account_id}", json={"archived": True}
    )
    second = await hub.create_channel(capabilities=DELIVERY_THREADING)
    account = await hub.create_account(second["id"], token, number="+33155555555")
    egg = hub.message_egg(account["id"], thread=None)
    thread_id = (await hub.publish(token, second["id"], egg)).json()["conversationsThreadId"]
    await hub.reply(thread_id, "Hello from the help desk")
    await hub.drain()
    return hub.webhooks.bodies()


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


async def test_fixtures_match_what_the_sandbox_sends(hub: Hub) -> None:
    bodies = await _scenario(hub)
    assert len(bodies) == len(FIXTURE_NAMES)
    for name, body in zip(FIXTURE_NAMES, bodies, strict=True):
        assert body["type"].lower() == name.split("__")[0]
        path = FIXTURES / f"{name}.json"
        if os.environ.get("REGENERATE_HUBSPOT_FIXTURES"):
            path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        assert shape(json.loads(path.read_text())) == shape(body), name


def test_outgoing_fixture_carries_the_fields_the_bridge_reads() -> None:
    event = json.loads((FIXTURES / "outgoing_channel_message_created__text.json").read_text())
    assert event["type"] == "OUTGOING_CHANNEL_MESSAGE_CREATED"
    assert event["channelIntegrationThreadIds"] == ["conv-1"]
    message = event["message"]
    assert message["conversationsThreadId"]
    assert message["senders"][0]["actorId"].startswith("A-")
    assert message["recipients"][0]["actorId"].startswith("V-")
    assert message["recipients"][0]["deliveryIdentifier"]["type"] == "HS_PHONE_NUMBER"

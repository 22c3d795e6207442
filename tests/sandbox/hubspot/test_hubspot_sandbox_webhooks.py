"""Outgoing webhooks: signature v3 (recomputed here), timestamps, retries, delivery log."""

from __future__ import annotations

import time

import httpx
import pytest
from hubspot_sandbox_harness import WEBHOOK_URL, Hub, expected_signature_v3

pytestmark = pytest.mark.anyio


async def _reply_event(hub: Hub) -> str:
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    reply = await hub.reply(incoming["conversationsThreadId"], "Hello from the help desk")
    await hub.drain()
    return str(reply["id"])


async def test_r42_signature_v3_covers_method_full_url_raw_body_and_timestamp(hub: Hub) -> None:
    await _reply_event(hub)
    [received] = hub.webhooks.received
    assert received.url == WEBHOOK_URL
    assert received.headers["content-type"] == "application/json"
    timestamp = received.headers["x-hubspot-request-timestamp"]
    assert abs(int(timestamp) - time.time() * 1000) < 60_000
    expected = expected_signature_v3(
        method="POST", url=received.url, body=received.raw, timestamp=timestamp
    )
    assert received.headers["x-hubspot-signature-v3"] == expected
    tampered = expected_signature_v3(
        method="POST", url=received.url, body=received.raw + b" ", timestamp=timestamp
    )
    assert tampered != expected


async def test_webhook_body_is_one_json_object(hub: Hub) -> None:
    await _reply_event(hub)
    [received] = hub.webhooks.received
    assert isinstance(received.body, dict)
    assert received.body["type"] == "OUTGOING_CHANNEL_MESSAGE_CREATED"


async def test_timestamp_header_follows_the_sandbox_clock(hub: Hub) -> None:
    await hub.advance(3600)
    await _reply_event(hub)
    [received] = hub.webhooks.received
    shift = int(received.headers["x-hubspot-request-timestamp"]) - time.time() * 1000
    assert 3_500_000 < shift < 3_700_000


async def test_failed_deliveries_are_retried_then_logged(hub: Hub) -> None:
    hub.webhooks.answer(500, times=2)
    message_id = await _reply_event(hub)
    assert len(hub.webhooks.received) == 3
    bodies = [r.raw for r in hub.webhooks.received]
    assert bodies[0] == bodies[1] == bodies[2]  # same event, re-signed each time
    log = (await hub.http.get("/_sandbox/webhook-deliveries")).json()["deliveries"]
    [delivery] = log
    assert delivery["state"] == "delivered"
    assert delivery["eventType"] == "OUTGOING_CHANNEL_MESSAGE_CREATED"
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 500, 204]
    assert delivery["payload"]["message"]["id"] == message_id
    assert delivery["url"] == WEBHOOK_URL


async def test_delivery_gives_up_after_the_schedule(hub: Hub) -> None:
    hub.webhooks.answer(503, times=10)
    await _reply_event(hub)
    [delivery] = (await hub.http.get("/_sandbox/webhook-deliveries")).json()["deliveries"]
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 3  # first try + the two retries of the test schedule
    replayed = await hub.http.post(f"/_sandbox/webhook-deliveries/{delivery['id']}/replay")
    assert replayed.status_code == 202
    hub.webhooks.plan.clear()
    await hub.drain()
    [delivery] = (await hub.http.get("/_sandbox/webhook-deliveries")).json()["deliveries"]
    assert delivery["state"] == "delivered"


async def test_network_errors_count_as_failed_attempts(hub: Hub) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200)

    hub.sandbox.webhook_transport = httpx.MockTransport(flaky)
    await _reply_event(hub)
    [delivery] = (await hub.http.get("/_sandbox/webhook-deliveries")).json()["deliveries"]
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][0]["error"].startswith("ReadTimeout")


async def test_retry_schedule_is_configurable(hub: Hub) -> None:
    response = await hub.http.post("/_sandbox/config", json={"webhook_retry_schedule": []})
    assert response.json()["webhook_retry_schedule"] == []
    hub.webhooks.answer(500)
    await _reply_event(hub)
    assert len(hub.webhooks.received) == 1


async def test_channel_without_webhook_url_logs_a_skipped_delivery(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel(webhookUrl=None)
    account = await hub.create_account(channel["id"], token)
    incoming = (await hub.publish(token, channel["id"], hub.message_egg(account["id"]))).json()
    await hub.reply(incoming["conversationsThreadId"])
    [delivery] = (await hub.http.get("/_sandbox/webhook-deliveries")).json()["deliveries"]
    assert delivery["state"] == "skipped"
    assert hub.webhooks.received == []


async def test_delivery_log_filters(hub: Hub) -> None:
    await _reply_event(hub)
    only = await hub.http.get(
        "/_sandbox/webhook-deliveries", params={"event_type": "CHANNEL_ACCOUNT_CREATED"}
    )
    assert only.json()["deliveries"] == []
    portal = await hub.http.get("/_sandbox/webhook-deliveries", params={"portal_id": "4242"})
    assert len(portal.json()["deliveries"]) == 1

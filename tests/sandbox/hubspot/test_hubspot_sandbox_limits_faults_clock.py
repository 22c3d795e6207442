"""Rate limit (R44), injected faults, the sandbox clock, config and reset."""

from __future__ import annotations

import asyncio
import time

import pytest
from hubspot_sandbox_harness import Hub

pytestmark = pytest.mark.anyio
INBOXES = "/conversations/v3/conversations/inboxes"


async def test_rate_limit_headers_on_normal_responses(hub: Hub) -> None:
    token = await hub.token()
    response = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert response.headers["x-hubspot-ratelimit-max"] == "110"
    assert response.headers["x-hubspot-ratelimit-remaining"] == "109"
    assert response.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"


async def test_r44_over_the_limit_is_429_with_hubspot_body(hub: Hub) -> None:
    await hub.http.post("/_sandbox/config", json={"rate_limit_max": 3})
    token = await hub.token()
    for _ in range(3):
        assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200
    limited = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert limited.status_code == 429
    assert limited.headers["x-hubspot-ratelimit-remaining"] == "0"
    assert limited.headers["x-hubspot-ratelimit-max"] == "3"
    body = limited.json()
    assert body["status"] == "error"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["correlationId"] and body["groupName"]
    # Other portals have their own window; the window rolls with the sandbox clock.
    other = await hub.token(portal_id=4343)
    assert (await hub.http.get(INBOXES, headers=hub.bearer(other))).status_code == 200
    await hub.advance(10)
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200


async def test_R44_a_shortened_window_rolls_and_is_announced(hub: Hub) -> None:
    """Tests may shorten the 10 s window (`rate_limit_interval_ms`); the headers say so."""
    await hub.http.post("/_sandbox/config",
                        json={"rate_limit_max": 2, "rate_limit_interval_ms": 1000})
    token = await hub.token()
    for _ in range(2):
        assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200
    limited = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert limited.status_code == 429
    assert limited.headers["x-hubspot-ratelimit-interval-milliseconds"] == "1000"
    await hub.advance(0.5)
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 429
    await hub.advance(0.5)
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200


async def test_unauthenticated_calls_do_not_count(hub: Hub) -> None:
    await hub.http.post("/_sandbox/config", json={"rate_limit_max": 1})
    for _ in range(3):
        assert (await hub.http.get(INBOXES)).status_code == 401
    token = await hub.token()
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200


async def test_status_fault_applies_the_given_number_of_times(hub: Hub) -> None:
    token = await hub.token()
    added = await hub.http.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/v3/conversations", "mode": "status", "status": 503,
        "times": 2})
    assert added.status_code == 201
    assert added.json()["mode"] == "status"
    for _ in range(2):
        failed = await hub.http.get(INBOXES, headers=hub.bearer(token))
        assert failed.status_code == 503
        assert failed.json()["category"] == "INTERNAL_ERROR"
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200
    assert (await hub.http.get("/_sandbox/faults")).json() == {"faults": []}


async def test_fault_method_filter_and_rate_limit_mode(hub: Hub) -> None:
    token = await hub.token()
    await hub.http.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/v3/conversations", "method": "POST", "mode": "rate_limit"})
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200
    await hub.http.delete("/_sandbox/faults")
    await hub.http.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/v3/conversations", "mode": "rate_limit"})
    limited = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert limited.status_code == 429
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert limited.headers["x-hubspot-ratelimit-remaining"] == "0"


async def test_slow_fault_delays_then_serves(hub: Hub) -> None:
    token = await hub.token()
    await hub.http.post("/_sandbox/faults", json={
        "path_prefix": INBOXES, "mode": "slow", "delay_seconds": 0.3})
    started = time.monotonic()
    response = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_faults_list_and_clear(hub: Hub) -> None:
    await hub.http.post("/_sandbox/faults", json={
        "path_prefix": "/crm", "mode": "status", "status": 500, "times": 5})
    listed = (await hub.http.get("/_sandbox/faults")).json()["faults"]
    assert [(f["path_prefix"], f["times"], f["hits"]) for f in listed] == [("/crm", 5, 0)]
    assert (await hub.http.delete("/_sandbox/faults")).json() == {"faults": []}
    invalid = await hub.http.post("/_sandbox/faults", json={"path_prefix": "/x", "mode": "boom"})
    assert invalid.status_code == 400


async def test_clock_get_advance_and_offset(hub: Hub) -> None:
    clock = (await hub.http.get("/_sandbox/clock")).json()
    assert clock["offset_seconds"] == 0
    assert clock["now"].endswith("Z")
    advanced = (await hub.http.post("/_sandbox/clock", json={"advance_seconds": 90})).json()
    assert advanced["offset_seconds"] == 90
    advanced = (await hub.http.post("/_sandbox/clock", json={"advance_seconds": 10})).json()
    assert advanced["offset_seconds"] == 100
    absolute = (await hub.http.post("/_sandbox/clock", json={"offset_seconds": 5})).json()
    assert absolute["offset_seconds"] == 5
    neither = await hub.http.post("/_sandbox/clock", json={})
    assert neither.status_code == 400


async def test_config_rejects_unknown_or_mistyped_settings(hub: Hub) -> None:
    assert (await hub.http.post("/_sandbox/config", json={"nope": 1})).status_code == 400
    mistyped = await hub.http.post("/_sandbox/config", json={"rate_limit_max": "x"})
    assert mistyped.status_code == 400
    config = (await hub.http.get("/_sandbox/config")).json()
    assert config == {
        "rate_limit_max": 110, "rate_limit_interval_ms": 10_000,
        "staging_token_ttl_seconds": 600.0,
        "associate_new_contacts": False, "webhook_retry_schedule": [0.01, 0.01],
        "webhook_timeout_seconds": 10.0,
    }


async def test_reset_returns_to_the_seed(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    await hub.advance(100)
    reset = await hub.http.post("/_sandbox/reset")
    assert reset.status_code == 200
    assert await hub.tickets() == []
    assert (await hub.http.get("/_sandbox/clock")).json()["offset_seconds"] == 0
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 401
    contacts = (await hub.http.get("/_sandbox/portals/4242/contacts")).json()["contacts"]
    assert [c["name"] for c in contacts] == ["Jane Doe", "John Smith"]
    assert (await hub.http.get("/_sandbox/config")).json()["webhook_retry_schedule"] == [
        1.0, 5.0, 25.0]


async def test_reset_cancels_pending_deliveries(hub: Hub) -> None:
    await hub.http.post("/_sandbox/config", json={"webhook_retry_schedule": [30]})
    hub.webhooks.answer(500)
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    await hub.reply(incoming["conversationsThreadId"])
    await asyncio.sleep(0.05)
    await hub.http.post("/_sandbox/reset")
    await asyncio.wait_for(hub.drain(), 1)
    assert len(hub.webhooks.received) == 1


async def test_restore_comes_back_to_the_snapshot_however_often(hub: Hub) -> None:
    """A sandbox extension (what a test suite installs once and starts each test from):
    records, tokens, configuration and clock offset as they were, ids carrying on from
    the snapshot (the same ids again after each restore)."""
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    await hub.drain()
    await hub.advance(100)
    await hub.http.post("/_sandbox/config", json={"rate_limit_max": 50})
    taken = await hub.http.post("/_sandbox/snapshot")
    assert taken.status_code == 201, taken.text
    snapshot_id = taken.json()["snapshot"]
    tickets = await hub.tickets()
    deliveries = (await hub.http.get("/_sandbox/webhook-deliveries")).json()
    new_threads = []
    for _ in range(2):
        await hub.reply(tickets[0]["threadId"])
        await hub.http.post("/_sandbox/portals/4242/oauth/revoke")
        await hub.http.post("/_sandbox/reset")
        restored = await hub.http.post("/_sandbox/restore", json={"snapshot": snapshot_id})
        assert restored.json()["status"] == "restored"
        assert await hub.tickets() == tickets
        assert (await hub.http.get("/_sandbox/webhook-deliveries")).json() == deliveries
        assert (await hub.http.get("/_sandbox/clock")).json()["offset_seconds"] == 100
        assert (await hub.http.get("/_sandbox/config")).json()["rate_limit_max"] == 50
        assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 200
        other = hub.message_egg(account_id, sender="+14155550123", thread="conv-2")
        new_threads.append((await hub.publish(token, channel_id, other)).json()[
            "conversationsThreadId"])
        await hub.drain()
    assert new_threads[0] == new_threads[1] != tickets[0]["threadId"]


async def test_snapshot_waits_for_no_delivery_and_restore_wants_a_known_id(hub: Hub) -> None:
    await hub.http.post("/_sandbox/config", json={"webhook_retry_schedule": [30]})
    hub.webhooks.answer(500)
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    await hub.reply(incoming["conversationsThreadId"])  # its webhook retries in 30 s
    assert (await hub.http.post("/_sandbox/snapshot")).status_code == 409
    unknown = await hub.http.post("/_sandbox/restore", json={"snapshot": "nope"})
    assert unknown.status_code == 404
    assert (await hub.http.post("/_sandbox/restore", json={})).status_code == 400
    await hub.http.post("/_sandbox/reset")


async def test_unknown_portal_and_control_paths_are_404(hub: Hub) -> None:
    assert (await hub.http.get("/_sandbox/portals/1/tickets")).status_code == 404
    assert (await hub.http.get("/_sandbox/nothing-here")).status_code == 404


async def test_fault_with_a_probability_answers_that_share_of_calls(hub: Hub) -> None:
    """A fault can hit a share of calls (the chaos suite's "a share of calls answered 503");
    the calls it lets through spend neither a hit nor one of its `times`."""
    await hub.http.post("/_sandbox/config", json={"rate_limit_max": 10_000})
    token = await hub.token()
    added = await hub.http.post("/_sandbox/faults", json={
        "path_prefix": INBOXES, "mode": "status", "status": 503, "times": None,
        "probability": 0.3})
    assert added.json()["probability"] == 0.3
    statuses = [(await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code
                for _ in range(200)]
    faulted = statuses.count(503)
    assert statuses.count(200) == 200 - faulted
    assert 30 <= faulted <= 90  # binomial(200, 0.3): mean 60, 4.6 standard deviations each way
    assert (await hub.http.get("/_sandbox/faults")).json()["faults"][0]["hits"] == faulted
    for bad in (0, 1.5):
        refused = await hub.http.post("/_sandbox/faults", json={
            "path_prefix": INBOXES, "mode": "drop", "probability": bad})
        assert refused.status_code == 400


async def test_R44_an_added_portal_authorises_and_has_its_own_window(hub: Hub) -> None:
    added = await hub.http.post("/_sandbox/portals", json={"id": 5101, "name": "Bench 1"})
    assert added.status_code == 201, added.text
    assert (await hub.http.post("/_sandbox/portals",
                                json={"id": 5101, "name": "x"})).status_code == 409
    assert (await hub.http.post("/_sandbox/portals", json={"id": "x"})).status_code == 400
    await hub.http.post("/_sandbox/config", json={"rate_limit_max": 1})
    token = await hub.token(portal_id=5101)
    inboxes = await hub.http.get(INBOXES, headers=hub.bearer(token))
    assert inboxes.status_code == 200
    assert "HELP_DESK" in [i.get("type") for i in inboxes.json()["results"]]
    assert (await hub.http.get(INBOXES, headers=hub.bearer(token))).status_code == 429
    demo = await hub.token()
    assert (await hub.http.get(INBOXES, headers=hub.bearer(demo))).status_code == 200

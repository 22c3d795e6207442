"""Webhook deliveries through real HTTP (§A8.2 envelope, §A8.5 semantics)."""

from __future__ import annotations

import re
import time
from typing import Any

from aircall_sandbox_harness import CUSTOMER, Receiver, Sandbox, subscribe, wait_for

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _settled(aircall: Sandbox) -> bool:
    return aircall.http.get("/_sandbox/deliveries").json()["pending"] == 0


def _webhook(aircall: Sandbox, webhook_id: str) -> dict[str, Any]:
    return dict(aircall.basic.get(f"/v1/webhooks/{webhook_id}").json()["webhook"])


def test_envelope_carries_resource_event_timestamp_token_data(
    aircall: Sandbox, receiver: Receiver
) -> None:
    webhook = subscribe(aircall.basic, receiver)
    before = int(time.time())
    message = aircall.customer_says("Bonjour", name="Jane Doe")
    body = wait_for(lambda: receiver.bodies("message.received"))[0]
    assert set(body) == {"resource", "event", "timestamp", "token", "data"}
    assert body["resource"] == "message"
    assert body["token"] == webhook["token"]
    assert isinstance(body["timestamp"], int) and before - 2 <= body["timestamp"] <= before + 5
    data = body["data"]
    assert data["id"] == message["id"]
    assert data["direction"] == "inbound"
    assert data["channel"] == "whatsapp"
    assert data["status"] == "received"
    assert data["body"] == "Bonjour"
    assert data["external_number"] == "+33 6 12 34 56 78"
    assert data["number"]["id"] == 1001
    assert data["number"]["e164_digits"] == "+33176360695"
    assert data["media_details"] == []
    assert data["contact"]["first_name"] == "Jane"
    assert isinstance(data["created_at"], int)  # ms by default
    received = receiver.requests[0]
    assert received.headers["content-type"] == "application/json"
    assert received.headers["aircall-origin"] == "webhooks"


def test_reply_fires_message_sent_then_status_updates(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["message.sent", "message.status_updated"])
    aircall.customer_says()
    sent = aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "We are on it",
    }).json()
    wait_for(lambda: len(receiver.bodies("message.status_updated")) == 2)
    echo = receiver.bodies("message.sent")[0]["data"]
    assert echo["id"] == sent["id"]
    assert echo["direction"] == "outbound"
    assert echo["external_number"] == "+33 6 12 34 56 78"
    assert echo["body"] == "We are on it"
    statuses = {b["data"]["status"] for b in receiver.bodies("message.status_updated")}
    assert statuses == {"sent", "delivered"}
    assert all(b["data"]["id"] == sent["id"] for b in receiver.bodies("message.status_updated"))
    assert receiver.bodies("message.received") == []  # not subscribed


def test_undeliverable_number_ends_failed(aircall: Sandbox, receiver: Receiver) -> None:
    aircall.configure(undeliverable_numbers=[CUSTOMER])
    subscribe(aircall.basic, receiver, ["message.status_updated"])
    aircall.customer_says()
    sent = aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "Will not arrive",
    })
    assert sent.status_code == 200  # accepted; the failure comes later (§E1)
    wait_for(lambda: len(receiver.bodies("message.status_updated")) == 2)
    wait_for(lambda: _settled(aircall))
    statuses = sorted(b["data"]["status"] for b in receiver.bodies("message.status_updated"))
    assert statuses == ["failed", "sent"]
    read = aircall.http.post(f"/_sandbox/customer/messages/{sent.json()['id']}/read")
    assert read.json()["message"]["status"] == "failed"  # terminal


def test_read_on_the_phone_fires_status_read(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["message.status_updated"])
    aircall.customer_says()
    sent = aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "Done",
    }).json()
    wait_for(lambda: len(receiver.bodies("message.status_updated")) == 2)
    aircall.http.post(f"/_sandbox/customer/messages/{sent['id']}/read")
    wait_for(lambda: len(receiver.bodies("message.status_updated")) == 3)
    assert receiver.bodies("message.status_updated")[-1]["data"]["status"] == "read"


def test_failed_deliveries_are_retried_until_success(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(500, times=2)
    aircall.customer_says()
    wait_for(lambda: len(receiver.bodies()) == 3)
    wait_for(lambda: _settled(aircall))
    log = aircall.deliveries(event="message.received")
    assert [(e["attempt"], e["outcome"], e["status_code"]) for e in log] == [
        (1, "failure", 500), (2, "failure", 500), (3, "success", 200),
    ]
    assert log[0]["error"] == "HTTP 500"
    assert all(e["duration_ms"] >= 0 for e in log)
    assert len({b["data"]["id"] for b in receiver.bodies()}) == 1


def test_webhook_auto_disabled_after_n_failures_and_re_enabled_by_success(
    aircall: Sandbox, receiver: Receiver
) -> None:
    aircall.configure(disable_after_failures=2, retry_schedule=[0.3])
    webhook = subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(500, times=3)
    aircall.customer_says("first")
    wait_for(lambda: _webhook(aircall, webhook["webhook_id"])["active"] is False)
    aircall.customer_says("while disabled")  # not sent to a disabled webhook
    wait_for(lambda: _settled(aircall))  # ...but the failed event kept being retried
    assert _webhook(aircall, webhook["webhook_id"])["active"] is True  # re-enabled by success
    bodies = [b["data"]["body"] for b in receiver.bodies()]
    assert bodies == ["first"] * 4
    health = aircall.http.get("/_sandbox/webhooks").json()["webhooks"][0]
    assert health["consecutive_failures"] == 0 and health["auto_disabled"] is False


def test_put_active_true_re_enables_an_auto_disabled_webhook(
    aircall: Sandbox, receiver: Receiver
) -> None:
    aircall.configure(disable_after_failures=1, retry_schedule=[5])
    webhook = subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(500)
    aircall.customer_says("first")
    wait_for(lambda: _webhook(aircall, webhook["webhook_id"])["active"] is False)
    updated = aircall.basic.put(
        f"/v1/webhooks/{webhook['webhook_id']}",
        params={"events_action": "add"}, json={"active": True, "events": ["message.received"]},
    ).json()["webhook"]
    assert updated["active"] is True
    aircall.customer_says("after re-enable")
    wait_for(lambda: "after re-enable" in [b["data"]["body"] for b in receiver.bodies()])


def test_attempt_times_out_after_the_configured_timeout(
    aircall: Sandbox, receiver: Receiver
) -> None:
    aircall.configure(delivery_timeout_seconds=0.3)
    subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(200, delay=1.0)
    aircall.customer_says()
    wait_for(lambda: _settled(aircall))
    log = aircall.deliveries(event="message.received")
    assert log[0]["outcome"] == "failure"
    assert log[0]["error"].startswith("timeout")
    assert log[0]["duration_ms"] < 900
    assert log[-1]["outcome"] == "success"


def test_default_timeout_is_five_seconds(aircall: Sandbox) -> None:
    assert aircall.http.get("/_sandbox/config").json()["delivery_timeout_seconds"] == 5.0


def test_failed_events_are_given_up_after_12_hours_of_sandbox_time(
    aircall: Sandbox, receiver: Receiver
) -> None:
    aircall.configure(retry_schedule=[0.2])
    subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(503, times=1000)
    aircall.customer_says()
    wait_for(lambda: receiver.bodies())
    aircall.advance(12 * 3600)
    wait_for(lambda: _settled(aircall))
    outcomes = [e["outcome"] for e in aircall.deliveries(event="message.received")]
    assert outcomes[-1] == "gave_up"
    assert set(outcomes[:-1]) == {"failure"}


def test_duplicate_deliveries_option(aircall: Sandbox, receiver: Receiver) -> None:
    aircall.configure(duplicate_deliveries=2)
    subscribe(aircall.basic, receiver, ["message.received"])
    message = aircall.customer_says()
    wait_for(lambda: len(receiver.bodies()) == 3)
    assert {b["data"]["id"] for b in receiver.bodies()} == {message["id"]}


def test_shuffle_window_still_delivers_everything(aircall: Sandbox, receiver: Receiver) -> None:
    aircall.configure(shuffle_window_ms=150)
    subscribe(aircall.basic, receiver, ["message.received"])
    texts = [f"part {i}" for i in range(6)]
    for text in texts:
        aircall.customer_says(text)
    wait_for(lambda: len(receiver.bodies()) == 6)
    assert sorted(b["data"]["body"] for b in receiver.bodies()) == texts


def test_iso_timestamps_option(aircall: Sandbox, receiver: Receiver) -> None:
    aircall.configure(timestamp_format="iso")
    subscribe(aircall.basic, receiver, ["message.received"])
    aircall.customer_says()
    body = wait_for(lambda: receiver.bodies())[0]
    assert isinstance(body["timestamp"], int)  # the envelope stays in seconds
    for key in ("created_at", "updated_at", "sent_at"):
        assert ISO.match(body["data"][key]), body["data"][key]


def test_alternate_timestamps_option(aircall: Sandbox, receiver: Receiver) -> None:
    aircall.configure(timestamp_format="alternate")
    subscribe(aircall.basic, receiver, ["message.received"])
    aircall.customer_says("one")
    aircall.customer_says("two")
    wait_for(lambda: len(receiver.bodies()) == 2)
    kinds = {type(b["data"]["created_at"]) for b in receiver.bodies()}
    assert kinds == {int, str}


def test_events_stay_inside_their_company(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic2, receiver, ["message.received"])
    aircall.customer_says()
    wait_for(lambda: _settled(aircall))
    assert receiver.bodies() == []
    aircall.customer_says(number_id=2001)
    assert wait_for(lambda: receiver.bodies())[0]["data"]["number"]["id"] == 2001


def test_oauth_webhooks_get_call_events_only_for_connected_numbers(
    aircall: Sandbox, receiver: Receiver
) -> None:
    with aircall.bearer(aircall.oauth_token()) as client:
        subscribe(client, receiver, ["call.ended", "message.received"])
    aircall.http.put("/_sandbox/integrations/1/number_ids", json={"number_ids": [1001]})
    aircall.http.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": 1003, "outcome": "missed",
    })
    aircall.customer_says("to Berlin", number_id=1003)  # message events are not filtered
    wait_for(lambda: _settled(aircall))
    assert receiver.bodies("call.ended") == []
    assert len(receiver.bodies("message.received")) == 1
    aircall.http.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": 1001, "outcome": "missed",
    })
    wait_for(lambda: receiver.bodies("call.ended"))


def test_disabled_integration_receives_nothing(aircall: Sandbox, receiver: Receiver) -> None:
    with aircall.bearer(aircall.oauth_token()) as client:
        subscribe(client, receiver, ["message.received"])
        client.post("/v1/integrations/disable")
        aircall.customer_says()
        wait_for(lambda: _settled(aircall))
        assert receiver.bodies() == []
        client.post("/v1/integrations/enable")
        aircall.customer_says()
        wait_for(lambda: receiver.bodies())


def test_uninstall_fires_integration_deleted_to_oauth_webhooks_only(
    aircall: Sandbox, receiver: Receiver
) -> None:
    token = aircall.oauth_token()
    with aircall.bearer(token) as client:
        oauth_hook = subscribe(client, receiver)
    subscribe(aircall.basic, receiver)  # a Basic webhook must not get it
    response = aircall.http.post("/_sandbox/companies/1/uninstall")
    assert response.status_code == 200
    assert response.json() == {
        "integration_id": 4201, "company_id": 1, "revoked_tokens": 1,
        "notified_webhook_ids": [oauth_hook["webhook_id"]],
    }
    body = wait_for(lambda: receiver.bodies("integration.deleted"))[0]
    assert body["resource"] == "integration"
    assert body["token"] == oauth_hook["token"]
    assert body["data"] == {"integration_id": 4201, "company_id": 1}
    wait_for(lambda: _settled(aircall))
    assert len(receiver.bodies("integration.deleted")) == 1
    with aircall.bearer(token) as client:
        assert client.get("/v1/ping").status_code == 403  # revoked
    receiver.clear()
    aircall.customer_says()  # only the Basic webhook still listens
    wait_for(lambda: _settled(aircall))
    assert len(receiver.bodies("message.received")) == 1


def test_delivery_log_filters(aircall: Sandbox, receiver: Receiver) -> None:
    webhook = subscribe(aircall.basic, receiver, ["message.received"])
    aircall.customer_says()
    wait_for(lambda: _settled(aircall))
    log = aircall.http.get(
        "/_sandbox/deliveries", params={"webhook_id": webhook["webhook_id"]}
    ).json()["deliveries"]
    assert len(log) == 1
    entry = log[0]
    assert "payload" not in entry
    assert {"delivery_id", "event_id", "event", "webhook_id", "url", "copy", "attempt", "at",
            "status_code", "error", "duration_ms", "outcome"} == set(entry)
    assert aircall.deliveries(event="call.ended") == []


def test_R53_a_failing_event_is_retried_up_to_the_documented_50_times_then_dropped(
    aircall: Sandbox, receiver: Receiver
) -> None:
    """§A8.5: "retried up to 50 times" (over about 12 h); the cap is a knob for tests."""
    assert aircall.configure()["retry_max_retries"] == 50
    aircall.configure(retry_max_retries=2, retry_schedule=[0.05], disable_after_failures=50)
    subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(500, times=10)
    aircall.customer_says("never acknowledged")
    wait_for(lambda: _settled(aircall))
    log = aircall.deliveries(event="message.received")
    assert [(e["attempt"], e["outcome"]) for e in log] == [
        (1, "failure"), (2, "failure"), (3, "failure"), (None, "gave_up")]
    assert log[-1]["error"] == "retried 2 times without success"
    assert len(receiver.bodies()) == 3


def test_R53_a_disabled_webhook_gets_no_new_event_until_re_enabled_through_the_api(
    aircall: Sandbox, receiver: Receiver
) -> None:
    aircall.configure(disable_after_failures=1, retry_schedule=[3600])
    webhook = subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(500)
    aircall.customer_says("fails once")
    wait_for(lambda: _webhook(aircall, webhook["webhook_id"])["active"] is False)
    aircall.customer_says("while disabled")
    aircall.basic.put(f"/v1/webhooks/{webhook['webhook_id']}",
                      json={"active": True, "events": ["message.received"]})
    aircall.customer_says("after re-enable")
    wait_for(lambda: "after re-enable" in [b["data"]["body"] for b in receiver.bodies()])
    # The event sent while disabled never came; the failed one waits for its retry.
    assert [b["data"]["body"] for b in receiver.bodies()] == ["fails once", "after re-enable"]

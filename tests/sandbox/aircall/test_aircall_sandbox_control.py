"""`/_sandbox` controls: clock, config, reset, the customer's phone, calls, number events."""

from __future__ import annotations

import time

import httpx
from aircall_sandbox_harness import CUSTOMER, Receiver, Sandbox, subscribe, wait_for

# --- clock and config -------------------------------------------------------------------------


def test_clock_advance_and_offset(aircall: Sandbox) -> None:
    start = aircall.http.get("/_sandbox/clock").json()
    assert set(start) == {"now", "now_unix", "offset_seconds"}
    assert start["offset_seconds"] == 0
    assert abs(start["now_unix"] - time.time()) < 5
    moved = aircall.http.post("/_sandbox/clock", json={"advance_seconds": 3600}).json()
    assert moved["offset_seconds"] == 3600
    moved = aircall.http.post("/_sandbox/clock", json={"advance_seconds": 60}).json()
    assert moved["offset_seconds"] == 3660
    assert moved["now_unix"] - start["now_unix"] >= 3660
    assert aircall.http.post("/_sandbox/clock", json={"offset_seconds": 10}).json()[
        "offset_seconds"] == 10
    assert aircall.http.post("/_sandbox/clock", json={}).status_code == 400
    both = {"advance_seconds": 1, "offset_seconds": 1}
    assert aircall.http.post("/_sandbox/clock", json=both).status_code == 400


def test_config_defaults_and_validation(aircall: Sandbox) -> None:
    aircall.http.post("/_sandbox/reset")
    config = aircall.http.get("/_sandbox/config").json()
    assert config == {
        "duplicate_deliveries": 0, "shuffle_window_ms": 0, "timestamp_format": "ms",
        "retry_schedule": [2.0, 5.0, 15.0, 60.0, 300.0, 900.0], "disable_after_failures": 50,
        "retry_max_retries": 50,
        "retry_give_up_after_seconds": 43200.0, "delivery_timeout_seconds": 5.0,
        "rate_limit_per_minute": 60, "rate_limit_window_seconds": 60,
        "status_progression_delay_ms": 300,
        "undeliverable_numbers": [], "insecure_webhook_hosts": [],
    }
    for bad in ({"timestamp_format": "unix"}, {"retry_schedule": []}, {"unknown": 1},
                {"disable_after_failures": 0}):
        assert aircall.http.post("/_sandbox/config", json=bad).status_code == 400, bad
    assert aircall.configure(timestamp_format="iso")["timestamp_format"] == "iso"


def test_reset_forgets_everything(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.advance(100)
    aircall.basic.post("/v1/webhooks", json={"url": "https://x.example/h"})
    aircall.http.post("/_sandbox/reset")
    assert aircall.http.get("/_sandbox/companies/1/messages").json() == {"messages": []}
    assert aircall.http.get("/_sandbox/clock").json()["offset_seconds"] == 0
    assert aircall.basic.get("/v1/webhooks").json()["webhooks"] == []


def legacy_id(webhook: dict[str, object]) -> int:
    return int(str(webhook["direct_link"]).rsplit("/", 1)[1])


def test_restore_comes_back_to_the_snapshot_however_often(aircall: Sandbox,
                                                         receiver: Receiver) -> None:
    """A sandbox extension (what a test suite installs once and starts each test from):
    records, configuration, clock offset and the delivery log as they were, and the ids
    carry on from where the snapshot was (the same ids again after each restore)."""
    webhook = subscribe(aircall.basic, receiver, ["message.received"])
    kept = aircall.customer_says("kept")
    wait_for(lambda: aircall.deliveries(event="message.received"))
    aircall.advance(100)
    aircall.configure(duplicate_deliveries=1)
    taken = aircall.http.post("/_sandbox/snapshot")
    assert taken.status_code == 201, taken.text
    snapshot_id = taken.json()["snapshot"]
    at_snapshot = (aircall.deliveries(), aircall.http.get("/_sandbox/webhooks").json())

    def messages() -> list[str]:
        return [m["id"] for m in
                aircall.http.get("/_sandbox/companies/1/messages").json()["messages"]]

    next_ids = []
    for _ in range(2):
        aircall.basic.delete(f"/v1/webhooks/{webhook['webhook_id']}")
        aircall.configure(duplicate_deliveries=0)
        aircall.http.post("/_sandbox/reset")
        restored = aircall.http.post("/_sandbox/restore", json={"snapshot": snapshot_id})
        assert restored.json() == {"restored": snapshot_id}
        assert messages() == [kept["id"]]
        assert aircall.http.get("/_sandbox/config").json()["duplicate_deliveries"] == 1
        assert aircall.http.get("/_sandbox/clock").json()["offset_seconds"] == 100
        assert (aircall.deliveries(), aircall.http.get("/_sandbox/webhooks").json()) == (
            at_snapshot)
        aircall.customer_says("after")
        wait_for(lambda: len(receiver.bodies("message.received")) == 1 + 2 * len(next_ids) + 2)
        next_ids.append(legacy_id(subscribe(aircall.basic, receiver, ["call.ended"])))
    assert next_ids[0] == next_ids[1] == legacy_id(webhook) + 1


def test_snapshot_waits_for_no_delivery_and_restore_wants_a_known_id(
        aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["message.received"])
    receiver.answer(200, delay=2)
    aircall.customer_says("slow to deliver")
    wait_for(lambda: receiver.bodies("message.received"))
    assert aircall.http.post("/_sandbox/snapshot").status_code == 409  # in flight
    assert aircall.http.post("/_sandbox/restore", json={"snapshot": "nope"}).status_code == 404
    assert aircall.http.post("/_sandbox/restore", json={"snapshot": 1}).status_code == 400
    assert aircall.http.post("/_sandbox/restore", json={}).status_code == 400


# --- the customer's phone ---------------------------------------------------------------------


def test_customer_number_in_any_format_is_normalised(aircall: Sandbox) -> None:
    message = aircall.customer_says("Hi", **{"from": "06 12 34 56 78"})
    assert message["external_number"] == "+33 6 12 34 56 78"
    assert message["raw_digits"] == "33612345678"
    inbox = aircall.http.get("/_sandbox/customer/conversation",
                             params={"phone": "+33 6 12 34 56 78"}).json()
    assert inbox["phone"] == CUSTOMER
    assert [m["id"] for m in inbox["messages"]] == [message["id"]]


def test_customer_message_validation(aircall: Sandbox) -> None:
    def post(**body: object) -> int:
        payload = {"from": CUSTOMER, "number_id": 1001, "text": "x", **body}
        return aircall.http.post("/_sandbox/customer/messages", json=payload).status_code

    assert post(number_id=9999) == 404
    assert post(number_id=1002) == 409  # no WhatsApp
    assert post(number_id=1005) == 409  # WhatsApp still PENDING
    assert post(number_id=1003, channel="sms") == 409  # no SMS
    assert post(type="hologram") == 400
    assert post(**{"from": "hello"}) == 400
    assert post(text="") == 400
    assert post(number_id=1002, channel="sms") == 201


def test_non_text_messages_carry_downloadable_media(aircall: Sandbox) -> None:
    message = aircall.customer_says("", type="image")
    assert message["type"] == "image"
    (media,) = message["media_details"]
    assert media["file_type"] == "image/png"
    assert media["file_name"] == "photo.png"
    url = httpx.URL(media["presigned_url"])
    assert str(url).startswith(f"{aircall.url}/_sandbox/media/")
    download = aircall.http.get(str(url))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("image/png")
    tampered = url.copy_set_param("Signature", "0" * 64)
    assert aircall.http.get(str(tampered)).status_code == 403
    aircall.advance(601)  # presigned URLs expire (sandbox clock)
    expired = aircall.http.get(str(url))
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content


def test_every_media_type_is_accepted(aircall: Sandbox) -> None:
    for kind in ("audio", "video", "document", "location", "sticker", "contacts"):
        message = aircall.customer_says("caption", type=kind)
        assert message["type"] == kind
        assert len(message["media_details"]) == 1


def test_sender_name_becomes_a_contact(aircall: Sandbox) -> None:
    message = aircall.customer_says("hi", name="Zoé Lambert", **{"from": "+33655555555"})
    assert message["contact"]["first_name"] == "Zoé"
    assert message["contact"]["last_name"] == "Lambert"
    assert message["contact"]["phone_numbers"][0]["value"] == "+33655555555"


def test_company_messages_lists_both_directions_in_order(aircall: Sandbox) -> None:
    aircall.customer_says("question")
    aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "answer",
    })
    messages = aircall.http.get("/_sandbox/companies/1/messages").json()["messages"]
    assert [(m["direction"], m["body"]) for m in messages] == [
        ("inbound", "question"), ("outbound", "answer"),
    ]
    assert aircall.http.get("/_sandbox/companies/2/messages").json() == {"messages": []}
    assert aircall.http.get("/_sandbox/companies/7/messages").status_code == 404


# --- calls ------------------------------------------------------------------------------------


def _call(aircall: Sandbox, outcome: str, number_id: int = 1001) -> dict:
    response = aircall.http.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": number_id, "outcome": outcome,
    })
    assert response.status_code == 201, response.text
    return dict(response.json()["call"])


def test_missed_call_events(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["call.created", "call.ended", "call.voicemail_left"])
    call = _call(aircall, "missed")
    wait_for(lambda: receiver.bodies("call.ended"))
    created = receiver.bodies("call.created")[0]
    assert created["resource"] == "call"
    assert created["data"]["status"] == "initial"
    assert created["data"]["ended_at"] is None
    ended = receiver.bodies("call.ended")[0]["data"]
    assert ended["id"] == call["id"]
    assert ended["call_uuid"].startswith("CA")
    assert ended["direction"] == "inbound"
    assert ended["status"] == "done"
    assert ended["missed_call_reason"] == "agents_did_not_answer"
    assert ended["answered_at"] is None
    assert ended["user"] is None
    assert ended["voicemail"] is None
    assert ended["raw_digits"] == "+33 6 12 34 56 78"
    assert ended["number"]["id"] == 1001
    assert ended["participants"][0] == {"phone_number": "+33 6 12 34 56 78", "type": "external"}
    assert ended["contact"]["id"] == 701
    assert isinstance(ended["started_at"], int) and ended["ended_at"] > ended["started_at"]
    assert receiver.bodies("call.voicemail_left") == []


def test_voicemail_call_events(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["call.ended", "call.voicemail_left"])
    _call(aircall, "voicemail")
    left = wait_for(lambda: receiver.bodies("call.voicemail_left"))[0]["data"]
    assert left["voicemail"].startswith(f"{aircall.url}/_sandbox/voicemails/")
    assert left["missed_call_reason"] == "agents_did_not_answer"
    ended = wait_for(lambda: receiver.bodies("call.ended"))[0]["data"]
    assert ended["voicemail"] == left["voicemail"]
    assert aircall.http.get(left["voicemail"]).headers["content-type"] == "audio/mpeg"


def test_answered_call_events(aircall: Sandbox, receiver: Receiver) -> None:
    subscribe(aircall.basic, receiver, ["call.answered", "call.ended"])
    _call(aircall, "answered")
    ended = wait_for(lambda: receiver.bodies("call.ended"))[0]["data"]
    assert ended["missed_call_reason"] is None
    assert ended["answered_at"] is not None
    assert ended["user"]["id"] == 501
    assert ended["duration"] > 0
    assert wait_for(lambda: receiver.bodies("call.answered"))


def test_call_does_not_open_the_whatsapp_window(aircall: Sandbox) -> None:
    _call(aircall, "missed")
    response = aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "we saw your call",
    })
    assert response.status_code == 422


def test_call_validation(aircall: Sandbox) -> None:
    body = {"from": CUSTOMER, "number_id": 1001, "outcome": "busy"}
    assert aircall.http.post("/_sandbox/customer/calls", json=body).status_code == 400
    body = {"from": CUSTOMER, "number_id": 4242, "outcome": "missed"}
    assert aircall.http.post("/_sandbox/customer/calls", json=body).status_code == 404


# --- number events ----------------------------------------------------------------------------


def test_number_closed_and_opened(aircall: Sandbox, receiver: Receiver) -> None:
    webhook = subscribe(aircall.basic, receiver, ["number.closed", "number.opened"])
    response = aircall.http.post("/_sandbox/numbers/1001/events", json={"event": "number.closed"})
    assert response.status_code == 200
    assert response.json()["webhook_ids"] == [webhook["webhook_id"]]
    body = wait_for(lambda: receiver.bodies("number.closed"))[0]
    assert body["resource"] == "number"
    assert body["data"]["open"] is False
    assert body["data"]["digits"] == "+33 1 76 36 06 95"
    assert body["data"]["e164_digits"] == "+33176360695"
    assert aircall.basic.get("/v1/numbers/1001").json()["number"]["open"] is False
    aircall.http.post("/_sandbox/numbers/1001/events", json={"event": "number.opened"})
    assert aircall.basic.get("/v1/numbers/1001").json()["number"]["availability_status"] == "open"


def test_number_deleted_then_created(aircall: Sandbox) -> None:
    aircall.http.post("/_sandbox/numbers/1004/events", json={"event": "number.deleted"})
    assert aircall.basic.get("/v1/numbers/1004").status_code == 404
    assert aircall.basic.get("/v1/company").json()["company"]["numbers_count"] == 4
    aircall.http.post("/_sandbox/numbers/1004/events", json={"event": "number.created"})
    assert aircall.basic.get("/v1/numbers/1004").status_code == 200
    bad = aircall.http.post("/_sandbox/numbers/1004/events", json={"event": "number.exploded"})
    assert bad.status_code == 400

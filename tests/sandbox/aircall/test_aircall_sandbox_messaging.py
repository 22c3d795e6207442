"""Sending messages (§A6, §A7) under WhatsApp's rules (§B1 window, §B3 length)."""

from __future__ import annotations

from typing import Any

from aircall_sandbox_harness import CUSTOMER, Sandbox, wait_for

DAY = 24 * 3600
WINDOW_CLOSED = {
    "error": "Re-engagement message",
    "troubleshoot": (
        "(#131047) More than 24 hours have passed since the customer last replied to this number."
    ),
    "code": 131047,
    "success": False,
}


def _send(aircall: Sandbox, **body: Any) -> Any:
    payload = {"lineId": 1001, "externalNumber": CUSTOMER, "text": "Hello from support", **body}
    return aircall.basic.post("/v1/messages/send/whatsapp/native", json=payload)


def test_reply_inside_the_window_returns_the_message_at_top_level(aircall: Sandbox) -> None:
    aircall.customer_says("Where is my order?")
    response = _send(aircall)
    assert response.status_code == 200
    message = response.json()
    assert "message" not in message  # no envelope (§A6)
    assert isinstance(message["id"], str)
    assert message["status"] == "pending"
    assert message["direction"] == "outbound"
    assert message["channel"] == "whatsapp"
    assert message["body"] == "Hello from support"
    assert message["raw_digits"] == "33612345678"
    assert message["number"]["id"] == 1001
    assert message["direct_link"] == f"{aircall.url}/v1/numbers/1001/messages/{message['id']}"
    assert "external_number" not in message  # only on webhooks (§A7)
    for key in ("created_at", "updated_at", "sent_at"):
        assert isinstance(message[key], int) and message[key] > 1_600_000_000_000  # ms


def test_window_still_open_at_24h_minus_1s(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.advance(DAY - 1)
    assert _send(aircall).status_code == 200


def test_window_closed_at_24h(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.advance(DAY)
    response = _send(aircall)
    assert response.status_code == 422
    assert response.json() == WINDOW_CLOSED


def test_no_inbound_message_means_no_window(aircall: Sandbox) -> None:
    response = _send(aircall)
    assert response.status_code == 422
    assert response.json()["code"] == 131047


def test_window_is_per_line_and_refreshed_by_each_customer_message(aircall: Sandbox) -> None:
    aircall.customer_says("first")
    aircall.advance(20 * 3600)
    aircall.customer_says("second")
    aircall.advance(20 * 3600)  # 40 h after the first, 20 h after the second
    assert _send(aircall).status_code == 200
    assert _send(aircall, lineId=1003).status_code == 422  # never wrote to Berlin


def test_our_own_replies_do_not_refresh_the_window(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.advance(23 * 3600)
    assert _send(aircall).status_code == 200
    aircall.advance(3600)
    assert _send(aircall).status_code == 422


def test_text_of_4096_is_accepted_and_4097_refused(aircall: Sandbox) -> None:
    aircall.customer_says()
    assert _send(aircall, text="x" * 4096).status_code == 200
    response = _send(aircall, text="x" * 4097)
    assert response.status_code == 400
    assert response.json()["code"] == 131009
    assert _send(aircall, text="").status_code == 400


def test_exactly_one_of_text_and_template(aircall: Sandbox) -> None:
    aircall.customer_says()
    both = _send(aircall, templateParams={"id": "1", "body": []})
    assert both.status_code == 400
    neither = aircall.basic.post(
        "/v1/messages/send/whatsapp/native", json={"lineId": 1001, "externalNumber": CUSTOMER}
    )
    assert neither.status_code == 400


def test_template_may_open_a_conversation_outside_the_window(aircall: Sandbox) -> None:
    payload = {
        "lineId": 1001, "externalNumber": CUSTOMER,
        "templateParams": {"id": "9101", "body": [{"key": "{{1}}", "value": "Jordan"}]},
    }
    response = aircall.basic.post("/v1/messages/send/whatsapp/native", json=payload)
    assert response.status_code == 200
    assert response.json()["template_content"]
    assert _send(aircall).status_code == 422  # a template opens nothing (§B1)


def test_external_number_must_be_e164(aircall: Sandbox) -> None:
    aircall.customer_says()
    for bad in ("0612345678", "+33 6 12 34 56 78", "33612345678", "+0123"):
        response = _send(aircall, externalNumber=bad)
        assert response.status_code == 400, bad
        assert "E.164" in response.json()["troubleshoot"]


def test_line_must_be_whatsapp_online_and_able_to_send(aircall: Sandbox) -> None:
    no_whatsapp = _send(aircall, lineId=1002)
    assert no_whatsapp.status_code == 422
    assert no_whatsapp.json()["success"] is False
    pending = _send(aircall, lineId=1005)
    assert pending.status_code == 422
    assert "PENDING" in pending.json()["troubleshoot"]


def test_line_of_another_company_is_not_found(aircall: Sandbox) -> None:
    response = _send(aircall, lineId=2001)
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_whatsapp_send_works_with_an_oauth_token(aircall: Sandbox) -> None:
    aircall.customer_says()
    with aircall.bearer(aircall.oauth_token()) as client:
        response = client.post("/v1/messages/send/whatsapp/native", json={
            "lineId": 1001, "externalNumber": CUSTOMER, "text": "via OAuth",
        })
        assert response.status_code == 200


def test_reply_lands_in_the_customer_inbox_and_progresses_to_delivered(aircall: Sandbox) -> None:
    aircall.customer_says()
    sent = _send(aircall).json()

    def inbox() -> list[dict[str, Any]]:
        params = {"phone": CUSTOMER, "number_id": "1001"}
        return list(aircall.http.get("/_sandbox/customer/inbox", params=params).json()["messages"])

    delivered = wait_for(lambda: [m for m in inbox() if m["status"] == "delivered"])
    assert delivered[0]["id"] == sent["id"]
    assert delivered[0]["external_number"] == "+33 6 12 34 56 78"
    read = aircall.http.post(f"/_sandbox/customer/messages/{sent['id']}/read")
    assert read.status_code == 200
    assert read.json()["message"]["status"] == "read"
    assert inbox()[0]["status"] == "read"


def test_inbound_messages_cannot_be_marked_read(aircall: Sandbox) -> None:
    inbound = aircall.customer_says()
    response = aircall.http.post(f"/_sandbox/customer/messages/{inbound['id']}/read")
    assert response.status_code == 409
    assert aircall.http.post("/_sandbox/customer/messages/nope/read").status_code == 404


# --- SMS --------------------------------------------------------------------------------------


def _sms(aircall: Sandbox, number_id: int = 1001, **body: Any) -> Any:
    payload = {"to": CUSTOMER, "body": "Your parcel is on its way", **body}
    return aircall.basic.post(f"/v1/numbers/{number_id}/messages/native/send", json=payload)


def test_sms_send_needs_no_window_and_has_null_channel(aircall: Sandbox) -> None:
    response = _sms(aircall)
    assert response.status_code == 200
    message = response.json()
    assert message["channel"] is None
    assert message["status"] == "pending"
    assert "type" not in message


def test_sms_body_is_limited_to_1600_characters(aircall: Sandbox) -> None:
    assert _sms(aircall, body="x" * 1600).status_code == 200
    assert _sms(aircall, body="x" * 1601).status_code == 400


def test_sms_needs_an_sms_number_of_the_company(aircall: Sandbox) -> None:
    assert _sms(aircall, number_id=1003).status_code == 422
    assert _sms(aircall, number_id=2001).status_code == 404
    assert _sms(aircall, to="06 12 34 56 78").status_code == 400


def test_customer_sms_does_not_open_the_whatsapp_window(aircall: Sandbox) -> None:
    aircall.customer_says("by SMS", channel="sms")
    assert _send(aircall).status_code == 422


def test_malformed_json_is_a_400(aircall: Sandbox) -> None:
    response = aircall.basic.post(
        "/v1/messages/send/whatsapp/native", content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"

"""R52 (replacing R26): the sandbox Aircall's WhatsApp templates of a number (§A6) — the
listing in its documented shape with cursor pagination, and `templateParams` sends refused
as Meta refuses them (§B5: 132000, 132001, paused)."""

from __future__ import annotations

from typing import Any

from aircall_sandbox_harness import CUSTOMER, Sandbox

SEND = "/v1/messages/send/whatsapp/native"


def _template_send(aircall: Sandbox, template_id: str, *values: str) -> Any:
    body = [{"key": f"{{{{{i}}}}}", "value": v} for i, v in enumerate(values, start=1)]
    payload = {"lineId": 1001, "externalNumber": CUSTOMER,
               "templateParams": {"id": template_id, "body": body}}
    return aircall.basic.post(SEND, json=payload)


def test_r52_listing_has_the_documented_shape_and_filters_approved(aircall: Sandbox) -> None:
    response = aircall.basic.get("/v1/numbers/1001/templates", params={"status": "APPROVED"})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"templates", "pageInfo"}
    assert [t["name"] for t in data["templates"]] == ["reply_waiting", "we_answered",
                                                      "order_update"]
    assert data["templates"][0] == {
        "id": 9101, "wabaId": "104857600001", "name": "reply_waiting", "category": "UTILITY",
        "status": "APPROVED", "language": "en",
    }  # no body, no variables: the documented listing carries none
    assert data["pageInfo"] == {"currentToken": 0, "nextToken": None, "totalCount": 3}
    everything = aircall.basic.get("/v1/numbers/1001/templates").json()
    assert {t["status"] for t in everything["templates"]} == {"APPROVED", "PENDING", "PAUSED"}


def test_r52_listing_pages_with_a_cursor(aircall: Sandbox) -> None:
    seen: list[int] = []
    token: int | None = 0
    pages = 0
    while token is not None:
        data = aircall.basic.get(
            "/v1/numbers/1001/templates", params={"limit": 2, "token": token}
        ).json()
        seen += [t["id"] for t in data["templates"]]
        assert data["pageInfo"]["currentToken"] == token
        assert data["pageInfo"]["totalCount"] == 5
        token = data["pageInfo"]["nextToken"]
        pages += 1
    assert pages == 3
    assert seen == [9101, 9102, 9103, 9104, 9105]


def test_r52_listing_is_per_company_and_needs_credentials(aircall: Sandbox) -> None:
    assert aircall.basic2.get("/v1/numbers/1001/templates").status_code == 404
    assert aircall.http.get("/v1/numbers/1001/templates").status_code == 401
    assert aircall.basic.get("/v1/numbers/1002/templates").status_code == 404  # no WhatsApp


def test_r52_template_with_one_variable_goes_outside_the_window(aircall: Sandbox) -> None:
    response = _template_send(aircall, "9101", "Your parcel left on Monday.")
    assert response.status_code == 200, response.text
    message = response.json()
    expected = ("Hello, we have answered your request: Your parcel left on Monday. Reply to "
                "this message to continue the conversation.")
    assert message["body"] == expected
    assert message["template_content"] == expected
    phone = aircall.http.get("/_sandbox/customer/conversation",
                             params={"phone": CUSTOMER, "number_id": 1001}).json()
    assert any(m["body"] == expected for m in phone["messages"])


def test_r52_templates_with_zero_and_two_variables(aircall: Sandbox) -> None:
    assert _template_send(aircall, "9102").status_code == 200
    two = _template_send(aircall, "9103", "Jane", "A-17")
    assert two.status_code == 200
    assert two.json()["body"].startswith("Hello Jane, your order A-17 has an update.")


def test_r52_parameter_count_mismatch_is_132000(aircall: Sandbox) -> None:
    for template_id, values in (("9101", ()), ("9102", ("extra",)), ("9103", ("Jane",))):
        response = _template_send(aircall, template_id, *values)
        assert response.status_code == 400, template_id
        assert response.json()["code"] == 132000
        assert response.json()["success"] is False


def test_r52_unknown_or_unapproved_template_is_132001(aircall: Sandbox) -> None:
    for template_id in ("424242", "9104", "9301"):  # unknown, pending, another number's
        response = _template_send(aircall, template_id, "x")
        assert response.status_code == 400, template_id
        assert response.json()["code"] == 132001


def test_r52_paused_and_deleted_templates_are_refused(aircall: Sandbox) -> None:
    paused = _template_send(aircall, "9105", "x")
    assert paused.status_code == 400
    assert paused.json()["code"] == 132015
    assert "paused" in paused.json()["troubleshoot"]
    control = aircall.http.post("/_sandbox/templates/9101", json={"status": "PAUSED"})
    assert control.status_code == 200
    assert _template_send(aircall, "9101", "x").json()["code"] == 132015
    aircall.http.post("/_sandbox/templates/9101", json={"deleted": True})
    assert _template_send(aircall, "9101", "x").json()["code"] == 132001


def test_r52_a_parameter_with_a_new_line_is_refused_like_meta(aircall: Sandbox) -> None:
    for bad in ("line one\nline two", "tab\there", "five     spaces"):
        response = _template_send(aircall, "9101", bad)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 100
    assert _template_send(aircall, "9101", "four    spaces").status_code == 200

"""R43 (issue 12, item 1): bad input behind valid credentials is a clear 4xx, identical on
SQLite and PostgreSQL, and nothing reaches the database. Item 3: a missing Aircall token is
401 like a wrong one (R42)."""

from __future__ import annotations

import json

import pytest
from harness.pages import signed_in
from harness.stack import Stack
from security_helpers import FIXTURES, aircall_token, message_received, post_aircall, post_hubspot
from sqlalchemy import func, select

from whatsapp_helpdesk.db.models import Message, WebhookEvent


def _count(stack: Stack, model: type) -> int:
    with stack.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


BAD_MESSAGE_FIELDS = {
    "nul_in_text": {"body": "hello\x00world"},
    "type_over_20": {"type": "t" * 21},
    "id_over_100": {"id": "i" * 101},
    "first_name_over_200": {"contact": {"first_name": "n" * 201, "last_name": "Doe"}},
    "company_over_200": {"contact": {"first_name": "Jane", "company_name": "c" * 201}},
    "lone_surrogate_in_text": {"body": "\ud800"},
    "timestamp_1e20": {"sent_at": 1e20},
    "iso_year_1_with_offset": {"sent_at": "0001-01-01T00:00:00+01:00"},
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGE_FIELDS))
def test_R43_bad_field_behind_valid_token_is_400_and_stores_nothing(
        stack: Stack, case: str) -> None:
    stack.connect()
    body = message_received(stack, **BAD_MESSAGE_FIELDS[case])
    answer = post_aircall(stack, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["result"] == "invalid"
    assert _count(stack, Message) == 0


def test_R43_event_name_over_80_is_400(stack: Stack) -> None:
    body = message_received(stack)
    body["event"] = "e" * 81
    answer = post_aircall(stack, body)
    assert answer.status_code == 400, answer.text
    assert _count(stack, WebhookEvent) == 0


def test_R43_envelope_timestamp_1e20_is_400(stack: Stack) -> None:
    body = message_received(stack)
    body["timestamp"] = 1e20
    answer = post_aircall(stack, body)
    assert answer.status_code == 400, answer.text


def test_R43_nesting_10000_deep_is_400_with_or_without_token(stack: Stack) -> None:
    deep = b'{"event":"message.received","token":"x","data":' + b"[" * 10_000 + b"]" * 10_000 \
        + b"}"
    assert post_aircall(stack, deep).status_code == 400
    token = aircall_token(stack).encode()
    deep_valid = deep.replace(b'"token":"x"', b'"token":"' + token + b'"')
    assert post_aircall(stack, deep_valid).status_code == 400
    hubspot = b'{"type":"OUTGOING_CHANNEL_MESSAGE_CREATED","message":' + b"[" * 10_000 \
        + b"]" * 10_000 + b"}"
    assert post_hubspot(stack, hubspot).status_code == 400


def test_R43_the_well_formed_message_still_goes_through(stack: Stack) -> None:
    """The counterpart of the cases above: the same body, unspoilt, is stored."""
    stack.connect()
    answer = post_aircall(stack, message_received(stack))
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "stored"
    assert _count(stack, Message) == 1


def test_R43_hubspot_reply_with_over_long_ids_or_nul_is_400(stack: Stack) -> None:
    base = json.loads((FIXTURES / "hubspot" / "outgoing_channel_message_created__text.json")
                      .read_text())
    for spoil in ({"id": "m" * 101}, {"text": "a\x00b"}, {"channelAccountId": "9" * 40}):
        body = json.loads(json.dumps(base))
        body["message"].update(spoil)
        answer = post_hubspot(stack, body)
        assert answer.status_code == 400, (spoil, answer.text)


@pytest.mark.parametrize("path", [
    "/dashboard/numbers/" + "9" * 40 + "/settings",
    "/dashboard/numbers/" + "9" * 40 + "/disconnect",
    "/dashboard/deliveries/" + "9" * 40 + "/retry",
])
def test_R43_forty_digit_id_in_a_page_path_is_4xx(stack: Stack, path: str) -> None:
    client, page = signed_in(stack)
    from harness.pages import csrf_of

    answer = client.post(path, data={"csrf_token": csrf_of(page), "setting": "helpdesk",
                                     "value": "on"})
    assert 400 <= answer.status_code < 500, answer.text


def test_R43_nul_in_page_query_or_form_is_4xx(stack: Stack) -> None:
    client, page = signed_in(stack)
    from harness.pages import csrf_of

    assert 400 <= client.get("/connect", params={"accountToken": "t", "portalId": "42\x0042"}
                             ).status_code < 500
    answer = client.post("/connect", data={"csrf_token": csrf_of(page), "accountToken": "t",
                                           "portalId": "4242\x00", "number_id": "1"})
    assert 400 <= answer.status_code < 500


def test_R42_missing_aircall_token_is_401_like_a_wrong_one(stack: Stack) -> None:
    body = message_received(stack)
    del body["token"]
    assert post_aircall(stack, body).status_code == 401
    body["token"] = ""
    assert post_aircall(stack, body).status_code == 401
    body["token"] = "wrong"
    assert post_aircall(stack, body).status_code == 401
    assert _count(stack, WebhookEvent) == 0

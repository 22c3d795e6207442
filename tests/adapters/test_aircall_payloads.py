"""Aircall webhook events (reference §A7, §A8): one test per fixture, the timestamp and media
variants, malformed payloads (R11, R15, R16, R35, R43) and the webhook token (R42)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from whatsapp_helpdesk.aircall import (
    CallEvent,
    IntegrationDeletedEvent,
    InvalidAircallPayload,
    Media,
    MessageEvent,
    NumberEvent,
    UnsupportedAircallEvent,
    parse_envelope,
    parse_event,
    token_digest,
    tokens_match,
)
from whatsapp_helpdesk.aircall.payloads import provider_datetime

FIXTURES = Path(__file__).parent / "fixtures" / "aircall"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_bytes(name))
    return loaded


def event_of(name_or_body: str | dict[str, Any]) -> Any:
    raw = fixture_bytes(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return parse_event(parse_envelope(raw))


# --- Envelope -------------------------------------------------------------------------------------


def test_envelope_keeps_the_token_out_of_repr() -> None:
    envelope = parse_envelope(fixture_bytes("message.received__whatsapp_text"))
    assert (envelope.resource, envelope.event) == ("message", "message.received")
    assert envelope.timestamp == datetime(2024, 11, 26, 12, 8, 16, tzinfo=UTC)  # seconds
    assert envelope.token == "45XXYYZZa08"
    assert "45XXYYZZa08" not in repr(envelope)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'"x"',
     # (No token is not malformed but unauthenticated: 401, tests/security, R42.)
     b'{"token": "t", "data": {}}',  # no event
     b'{"token": "t", "event": "message.received"}',  # no data
     b'{"token": "t", "event": "message.received", "data": []}'],
)
def test_r43_malformed_envelopes_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidAircallPayload):
        parse_envelope(body)


# --- Messages -------------------------------------------------------------------------------------


def test_r11_whatsapp_text_with_millisecond_timestamps() -> None:
    event = event_of("message.received__whatsapp_text")
    assert isinstance(event, MessageEvent)
    message = event.message
    assert message.id == "1779973182949pqnihpvazdyw6336"
    assert (message.direction, message.is_whatsapp, message.status) == ("inbound", True,
                                                                         "received")
    assert message.body == "Hello, my order hasn't arrived"
    assert message.external_number == "+33 6 12 34 56 78"  # display form, normalised later
    assert message.created_at == datetime(2024, 11, 26, 12, 8, 15, tzinfo=UTC)
    assert message.provider_time == message.created_at  # no sent_at
    assert message.contact is None
    assert message.media == []
    assert event.number_id == 1284757
    assert message.number is not None and message.number.e164_digits == "+33176360695"


def test_r16_whatsapp_image_with_iso_timestamps_and_media_details() -> None:
    event = event_of("message.received__whatsapp_image_media_details")
    assert isinstance(event, MessageEvent)
    message = event.message
    assert message.type == "image"
    assert message.created_at == datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)
    assert message.sent_at == datetime(2024, 7, 30, 7, 29, 20, 500000, tzinfo=UTC)
    assert message.provider_time == message.sent_at
    assert message.media == [Media("https://media.aircall.io/photo.jpg?sig=abc", "photo.jpg",
                                   "image/jpeg")]
    assert message.contact is not None
    assert message.contact.full_name == "Jane Doe"
    assert message.contact.company_name == "Acme"
    assert message.contact.id == "55"
    assert message.number is not None and message.number.e164_digits is None


def test_sms_with_media_url_numeric_id_and_ms_string() -> None:
    event = event_of("message.received__sms_media_url")
    assert isinstance(event, MessageEvent)
    message = event.message
    assert message.id == "424242"
    assert not message.is_whatsapp
    assert message.media == [Media("https://media.aircall.io/mms-1.png")]
    assert message.created_at == datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)
    assert message.contact is not None and message.contact.full_name is None


def test_r15_our_reply_echoed_as_message_sent() -> None:
    event = event_of("message.sent__whatsapp_reply")
    assert isinstance(event, MessageEvent)
    assert event.event == "message.sent"
    assert (event.message.id, event.message.direction) == ("1779973999pqnihp", "outbound")
    assert event.message.sent_at == datetime(2024, 11, 26, 12, 9, 59, 500000, tzinfo=UTC)


def test_r23_status_update_without_body_or_external_number() -> None:
    event = event_of("message.status_updated__read")
    assert isinstance(event, MessageEvent)
    assert (event.message.status, event.message.body, event.message.external_number) == (
        "read", None, None
    )


@pytest.mark.parametrize("value", [None, "https://one.example/x.png"])
def test_media_url_as_null_or_single_string(value: str | None) -> None:
    body = fixture("message.received__sms_media_url")
    body["data"]["media_url"] = value
    event = event_of(body)
    expected = [] if value is None else [Media(value)]
    assert event.message.media == expected


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("number"), "number"),
        (lambda d: d.pop("external_number"), "external_number"),
        (lambda d: d.pop("id"), "id"),
        (lambda d: d.update(direction="sideways"), "direction"),
        (lambda d: d.update(created_at="yesterday-ish"), "created_at"),
        (lambda d: d.update(number={"name": "no id"}), "number.id"),
    ],
)
def test_r43_a_message_without_what_we_need_is_invalid(mutate: Any, field: str) -> None:
    body = fixture("message.received__whatsapp_text")
    mutate(body["data"])
    with pytest.raises(InvalidAircallPayload) as caught:
        event_of(body)
    assert field.split(".")[0] in str(caught.value)
    assert "45XXYYZZa08" not in str(caught.value)


def test_status_update_may_lack_external_number_but_not_number() -> None:
    body = fixture("message.status_updated__read")
    body["data"].pop("number")
    with pytest.raises(InvalidAircallPayload):
        event_of(body)


def test_extra_fields_are_ignored() -> None:
    body = fixture("message.received__whatsapp_text")
    body["data"]["brand_new_field"] = {"x": 1}
    body["surprise"] = True
    assert isinstance(event_of(body), MessageEvent)


# --- Calls, numbers, integration (R35, R6) --------------------------------------------------------


def test_r35_missed_call() -> None:
    event = event_of("call.ended__missed")
    assert isinstance(event, CallEvent)
    call = event.call
    assert call.id == "812345"
    assert call.is_missed and not call.has_voicemail
    assert call.started_at == datetime(2020, 3, 23, 22, 3, 10, tzinfo=UTC)  # seconds
    assert call.raw_digits == "+33 6 12 34 56 78"
    assert call.number is not None and call.number.id == 1284757


def test_r35_answered_call_is_not_missed() -> None:
    event = event_of("call.ended__answered")
    assert isinstance(event, CallEvent)
    assert not event.call.is_missed


def test_r35_voicemail_left() -> None:
    event = event_of("call.voicemail_left")
    assert isinstance(event, CallEvent)
    assert event.call.has_voicemail and event.call.is_missed
    assert event.call.voicemail == "https://voicemail.aircall.io/812347.mp3"
    assert event.call.contact is not None and event.call.contact.full_name == "Paul Martin"


def test_call_without_number_is_invalid() -> None:
    body = fixture("call.ended__missed")
    body["data"].pop("number")
    with pytest.raises(InvalidAircallPayload):
        event_of(body)


def test_number_closed() -> None:
    event = event_of("number.closed")
    assert isinstance(event, NumberEvent)
    assert (event.number.id, event.number.digits) == (456, "+33 1 76 36 06 95")


def test_integration_deleted() -> None:
    event = event_of("integration.deleted")
    assert isinstance(event, IntegrationDeletedEvent)
    assert (event.data.integration_id, event.data.company_id) == (42, 1)


def test_unknown_events_are_reported_not_dropped() -> None:
    event = event_of("user.created.v2__unsupported")
    assert isinstance(event, UnsupportedAircallEvent)
    assert (event.event, event.resource, event.data["name"]) == ("user.created.v2", "user",
                                                                 "New Agent")


# --- The one timestamp reader (§E2) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1732622895, datetime(2024, 11, 26, 12, 8, 15, tzinfo=UTC)),  # seconds
        (1732622895000, datetime(2024, 11, 26, 12, 8, 15, tzinfo=UTC)),  # milliseconds
        (1732622895123.0, datetime(2024, 11, 26, 12, 8, 15, 123000, tzinfo=UTC)),
        ("1732622895000", datetime(2024, 11, 26, 12, 8, 15, tzinfo=UTC)),
        ("2024-07-30T07:29:21.000Z", datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)),
        ("2024-07-30T09:29:21+02:00", datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)),
        ("2024-07-30T07:29:21", datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)),  # naive = UTC
        ("2024-07-30T07:29:21Z", datetime(2024, 7, 30, 7, 29, 21, tzinfo=UTC)),
    ],
)
def test_provider_timestamps_in_every_known_form(value: Any, expected: datetime) -> None:
    parsed = provider_datetime(value)
    assert parsed == expected
    assert parsed.tzinfo is not None


# --- The webhook token (§A8.4; R42) ---------------------------------------------------------------


def test_r42_token_digest_is_sha256_hex() -> None:
    assert token_digest("45XXYYZZa08") == hashlib.sha256(b"45XXYYZZa08").hexdigest()


def test_r42_tokens_match_only_the_stored_one() -> None:
    stored = hashlib.sha256(b"45XXYYZZa08").hexdigest()
    assert tokens_match("45XXYYZZa08", stored)
    assert tokens_match("45XXYYZZa08", stored.upper())
    assert not tokens_match("45XXYYZZa09", stored)
    assert not tokens_match("", stored)
    assert not tokens_match(None, stored)
    assert not tokens_match("45XXYYZZa08", "")

"""HubSpot custom-channel webhook events (reference §4.1, §4.2): one test per fixture, plus
the malformed cases (R21, R4, R6, R43)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from whatsapp_helpdesk.hubspot import (
    ChannelAccountEvent,
    InvalidHubSpotPayload,
    OutgoingChannelMessageCreated,
    UnsupportedEvent,
    parse_hubspot_event,
    parse_hubspot_events,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hubspot"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_bytes(name))
    return loaded


def test_r21_outgoing_message_with_thread_ids_at_the_top() -> None:
    event = parse_hubspot_event(
        fixture_bytes("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level")
    )
    assert isinstance(event, OutgoingChannelMessageCreated)
    assert event.portal_id == "243842089"
    assert event.channel_id == "2930388"
    assert event.event_timestamp == datetime(2026, 5, 27, 12, 15, tzinfo=UTC)
    assert event.integration_thread_ids == ["thread-123"]
    message = event.message
    assert message.id == "msg-id-1"
    assert message.channel_account_id == "3307400689"
    assert message.conversations_thread_id == "8765432100"
    assert message.text == "Sorry about that — checking now."
    assert message.rich_text == "<div>Sorry about that — checking now.</div>"
    assert message.attachments == []
    assert message.created_at == datetime(2026, 5, 27, 12, 14, 59, 123000, tzinfo=UTC)
    assert message.senders[0].actor_id == "A-12345"
    assert event.customer_e164 == "+33612345678"


def test_r21_outgoing_message_with_thread_ids_inside_message_and_numeric_ids() -> None:
    event = parse_hubspot_event(
        fixture_bytes("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_in_message")
    )
    assert isinstance(event, OutgoingChannelMessageCreated)
    assert event.integration_thread_ids == ["thread-456"]
    assert event.portal_id == "243842089"
    assert event.message.id == "99887766"
    assert event.message.channel_account_id == "3307400689"
    assert event.event_timestamp == datetime(2026, 5, 27, 12, 15, tzinfo=UTC)
    assert event.customer_e164 is None  # no recipients: the flow uses the thread id


def test_r25_outgoing_message_with_attachment_is_parsed_for_refusal() -> None:
    event = parse_hubspot_event(fixture_bytes("OUTGOING_CHANNEL_MESSAGE_CREATED__with_attachment"))
    assert isinstance(event, OutgoingChannelMessageCreated)
    (attachment,) = event.message.attachments
    assert (attachment.type, attachment.file_id, attachment.name) == ("FILE", "555", "photo.png")
    assert event.message.text == ""


def test_r4_channel_account_created_with_a_nested_account() -> None:
    event = parse_hubspot_event(fixture_bytes("CHANNEL_ACCOUNT_CREATED__nested_account"))
    assert isinstance(event, ChannelAccountEvent)
    assert event.type == "CHANNEL_ACCOUNT_CREATED"
    assert event.channel_account_id == "3307400689"
    assert event.inbox_id == "1431487401"
    assert event.authorized is True
    assert event.delivery_identifier_e164 == "+33176360695"
    assert event.name == "Support +33 1 76 36 06 95"


def test_r6_channel_account_updated_flat_and_deauthorised() -> None:
    event = parse_hubspot_event(fixture_bytes("CHANNEL_ACCOUNT_UPDATED__flat_deauthorized"))
    assert isinstance(event, ChannelAccountEvent)
    assert event.type == "CHANNEL_ACCOUNT_UPDATED"
    assert (event.portal_id, event.channel_id, event.channel_account_id) == (
        "243842089", "2930388", "3307400689"
    )
    assert (event.authorized, event.archived, event.name) == (False, True, "Support")
    assert event.account_token == "staging-token-abc"
    assert "staging-token-abc" not in repr(event)
    assert event.delivery_identifier_e164 is None


def test_unknown_types_are_reported_not_dropped() -> None:
    event = parse_hubspot_event(fixture_bytes("CONVERSATION_PROPERTY_CHANGE__unsupported"))
    assert isinstance(event, UnsupportedEvent)
    assert event.type == "CONVERSATION_PROPERTY_CHANGE"
    assert event.raw["objectId"] == 8765432100
    no_type = parse_hubspot_event({"portalId": 1})
    assert isinstance(no_type, UnsupportedEvent) and no_type.type is None


def test_an_array_body_yields_one_event_each() -> None:
    body = json.dumps([
        fixture("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level"),
        fixture("CONVERSATION_PROPERTY_CHANGE__unsupported"),
    ])
    events = parse_hubspot_events(body)
    assert [type(e) for e in events] == [OutgoingChannelMessageCreated, UnsupportedEvent]
    assert len(parse_hubspot_events(fixture_bytes("CHANNEL_ACCOUNT_CREATED__nested_account"))) == 1


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"\xff\xfe"])
def test_r43_malformed_json_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidHubSpotPayload):
        parse_hubspot_events(body)


@pytest.mark.parametrize("body", [b"42", b'"text"', b"[1]"])
def test_r43_non_objects_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidHubSpotPayload):
        parse_hubspot_events(body)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level", ("message", "id")),
        ("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level", ("message", "channelAccountId")),
        ("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level", ("message",)),
        ("CHANNEL_ACCOUNT_UPDATED__flat_deauthorized", ("channelAccountId",)),
    ],
)
def test_r43_a_known_event_without_what_we_need_is_invalid(
    name: str, path: tuple[str, ...]
) -> None:
    body = fixture(name)
    holder = body
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(InvalidHubSpotPayload) as caught:
        parse_hubspot_event(body)
    assert path[-1] in str(caught.value)


def test_invalid_payload_messages_do_not_echo_values() -> None:
    body = fixture("OUTGOING_CHANNEL_MESSAGE_CREATED__thread_ids_top_level")
    body["message"]["senders"] = [{"deliveryIdentifier": "+33612345678-secret"}]
    with pytest.raises(InvalidHubSpotPayload) as caught:
        parse_hubspot_event(body)
    assert "+33612345678-secret" not in str(caught.value)

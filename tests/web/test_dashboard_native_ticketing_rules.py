"""Native ticketing's rule and what it makes of Aircall events (R35, R36), as pure functions
over the recorded Aircall fixtures; the end-to-end path is in
tests/e2e/test_e2e_connect_native_ticketing.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

import pytest

from whatsapp_helpdesk.aircall import CallEvent, MessageEvent, parse_envelope, parse_event
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.native_tickets.tickets import (
    MISSED_CALL,
    SMS,
    VOICEMAIL,
    Activity,
    activity_from_call,
    activity_from_payload,
    activity_from_sms,
    native_ticketing_applies,
    refusal,
    ticket_properties,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aircall"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _event(name: str) -> object:
    return parse_event(parse_envelope(json.loads((FIXTURES / f"{name}.json").read_text())))


@pytest.mark.parametrize(("connected", "on", "channel"), list(product([True, False], repeat=3)))
def test_R35_R36_a_native_ticket_only_when_connected_on_and_not_a_help_desk_channel(
    connected: bool, on: bool, channel: bool,
) -> None:
    applies = native_ticketing_applies(connected_to_hubspot=connected, native_ticketing=on,
                                       helpdesk_channel=channel)
    assert applies == (connected and on and not channel)
    why = refusal(connected_to_hubspot=connected, native_ticketing=on, helpdesk_channel=channel)
    assert (why is None) == applies
    if channel:
        assert why == "helpdesk_rules_apply"  # R36 wins, whatever the setting says


def test_R35_a_missed_call_is_a_ticket_with_the_caller() -> None:
    event = _event("call_ended__missed")
    assert isinstance(event, CallEvent)
    activity = activity_from_call(event, NOW)
    assert activity is not None and activity.kind == MISSED_CALL
    assert activity.customer_e164 == "+33612345678" and activity.customer_name == "Jane Doe"


def test_R35_one_voicemail_call_makes_one_ticket_not_two() -> None:
    ended = _event("call_ended__voicemail")
    left = _event("call_voicemail_left__basic")
    assert isinstance(ended, CallEvent) and isinstance(left, CallEvent)
    assert activity_from_call(ended, NOW) is None  # the voicemail event makes the ticket
    voicemail = activity_from_call(left, NOW)
    assert voicemail is not None and voicemail.kind == VOICEMAIL
    assert voicemail.voicemail_url and voicemail.voicemail_url.endswith(".mp3")


def test_R35_an_inbound_sms_is_a_ticket_with_its_text() -> None:
    event = _event("message_received__sms")
    assert isinstance(event, MessageEvent) and not event.message.is_whatsapp
    activity = activity_from_sms(event, NOW)
    assert activity.kind == SMS and activity.text == "Et par SMS ?"
    properties = ticket_properties(activity, "Support France")
    assert properties["subject"] == "SMS from Jane Doe on Support France"
    assert "Message: Et par SMS ?" in properties["content"]
    assert properties["hs_pipeline"] == "0" and properties["hs_pipeline_stage"] == "1"


def test_the_job_payload_round_trips_and_ignores_unknown_keys() -> None:
    activity = Activity(kind=MISSED_CALL, reference="9000003", customer="+33 6 12 34 56 78",
                        customer_e164="+33612345678", customer_name=None, at=NOW.isoformat())
    payload = {"number_id": 3, "later_field": "x", **activity.__dict__}
    assert activity_from_payload(payloads.NativeTicket.model_validate(payload)) == activity
    assert ticket_properties(activity, "Sales UK")["subject"] == (
        "Missed call from +33 6 12 34 56 78 on Sales UK")

"""Calls from the customer's phone, announced with Aircall's call events (§A8.2, §A8.3).

A PSTN call does not open the WhatsApp customer-service window: Meta's rule counts WhatsApp
calls only (§B1), and Aircall numbers take ordinary calls here.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.errors import bad_request, not_found
from whatsapp_helpdesk.sandbox.aircall.parsing import int_field
from whatsapp_helpdesk.sandbox.aircall.phone import InvalidPhoneNumber, normalise
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.serializers import call_json
from whatsapp_helpdesk.sandbox.aircall.state import Call, Number

CALL_ID_BASE = 9_000_000
# How long each simulated call lasted, ending "now" (ring time, talk time).
_RING_SECONDS = {"missed": 30, "voicemail": 25, "answered": 8}
_TALK_SECONDS = 95


def _answering_user(sandbox: Sandbox, number: Number) -> int | None:
    users = [sandbox.state.users[uid] for uid in number.user_ids]
    available = [u for u in users if u.available] or users
    return available[0].id if available else None


def customer_call(sandbox: Sandbox, payload: dict[str, Any]) -> Call:
    """`POST /_sandbox/customer/calls`: fire call.created … call.ended for one inbound call."""
    state = sandbox.state
    number = state.find_number(int_field(payload, "number_id"))
    if number is None:
        raise not_found()
    outcome = payload.get("outcome", "missed")
    if outcome not in constants.CALL_OUTCOMES:
        raise bad_request(f"outcome must be one of {', '.join(constants.CALL_OUTCOMES)}")
    try:
        phone = normalise(str(payload.get("from", "")), default_region=number.country)
    except InvalidPhoneNumber as error:
        raise bad_request(str(error)) from error
    now = sandbox.clock.now()
    ring = timedelta(seconds=_RING_SECONDS[outcome])
    talk = timedelta(seconds=_TALK_SECONDS if outcome == "answered" else 0)
    started = now - ring - talk
    contact = state.find_contact(number.company_id, phone)
    call = Call(
        id=CALL_ID_BASE + state.ids.take(),
        call_uuid="CA" + secrets.token_hex(16),
        company_id=number.company_id, number_id=number.id, external_e164=phone,
        outcome=outcome, started_at=started, answered_at=None, ended_at=None,
        status="initial", user_id=None, contact_id=contact.id if contact else None,
    )
    state.calls[call.id] = call
    _emit(sandbox, "call.created", call)
    if outcome == "answered":
        call.answered_at, call.status = started + ring, "answered"
        call.user_id = _answering_user(sandbox, number)
        _emit(sandbox, "call.answered", call)
    call.ended_at, call.status = now, "done"
    if outcome == "voicemail":
        call.voicemail_url = f"{sandbox.base_url}/_sandbox/voicemails/{call.call_uuid}.mp3"
        _emit(sandbox, "call.voicemail_left", call)
    _emit(sandbox, "call.ended", call)
    return call


def _emit(sandbox: Sandbox, event: str, call: Call) -> None:
    sandbox.dispatcher.emit(
        company_id=call.company_id, event=event,
        data=call_json(sandbox.state, call, sandbox.base_url), number_id=call.number_id,
    )

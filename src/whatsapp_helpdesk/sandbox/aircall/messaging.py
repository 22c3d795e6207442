"""Messages: sends through the API, messages from the customer's phone, status progression.

Rules applied as Aircall (and Meta behind it) apply them: the WhatsApp line must be ONLINE
and allowed to send, `text` is 1..4096 characters (§B3), and free-form WhatsApp text is
refused outside the 24 h customer-service window (§B1). Templates may be sent any time.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import uuid
from datetime import datetime
from typing import Any

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.auth import Principal
from whatsapp_helpdesk.sandbox.aircall.clock import to_unix_ms
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import (
    ApiError,
    bad_request,
    conflict,
    not_found,
    unprocessable,
)
from whatsapp_helpdesk.sandbox.aircall.parsing import int_field
from whatsapp_helpdesk.sandbox.aircall.phone import InvalidPhoneNumber, is_strict_e164, normalise
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.serializers import message_json
from whatsapp_helpdesk.sandbox.aircall.state import (
    Channel,
    Contact,
    MediaFile,
    Message,
    Number,
    SandboxState,
)
from whatsapp_helpdesk.sandbox.aircall.templates import render_send

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_message_id(now: datetime) -> str:
    """Aircall-looking id: ms timestamp + random tail ("1779973182949pqnihpvazdyw6336")."""
    return f"{to_unix_ms(now)}{''.join(secrets.choice(_ID_ALPHABET) for _ in range(16))}"


def window_open(state: SandboxState, number_id: int, phone_e164: str, now: datetime) -> bool:
    """§B1: open iff the customer's last WhatsApp message to this line is under 24 h old."""
    last = state.last_inbound_whatsapp.get((number_id, phone_e164))
    if last is None:
        return False
    return (now - last).total_seconds() < constants.CUSTOMER_SERVICE_WINDOW_SECONDS


def _status_rank(status: str) -> int:
    if status == constants.FAILED_STATUS:
        return len(constants.OUTBOUND_STATUS_ORDER)  # terminal: nothing moves it further
    order = constants.OUTBOUND_STATUS_ORDER
    return order.index(status) if status in order else -1


# --- events ---------------------------------------------------------------------------------


def message_payload(
    sandbox: Sandbox, message: Message, *, in_webhook: bool, for_event: bool = False
) -> Json:
    return message_json(
        sandbox.state, message, sandbox.base_url,
        fmt=sandbox.next_timestamp_format(for_webhook=for_event), in_webhook=in_webhook,
        issued_at=sandbox.clock.now(),
    )


def emit_message_event(sandbox: Sandbox, event: str, message: Message) -> None:
    sandbox.dispatcher.emit(
        company_id=message.company_id,
        event=event,
        data=message_payload(sandbox, message, in_webhook=True, for_event=True),
        number_id=message.number_id,
    )


def advance_status(sandbox: Sandbox, message: Message, status: str) -> bool:
    """Move an outbound message forward (never back) and announce it (§A8.3)."""
    if _status_rank(status) <= _status_rank(message.status):
        return False
    message.status = status
    message.updated_at = sandbox.clock.now()
    emit_message_event(sandbox, "message.status_updated", message)
    return True


async def _progress_outbound(sandbox: Sandbox, message: Message) -> None:
    undeliverable = message.external_e164 in sandbox.config.undeliverable_numbers
    for status in ("sent", constants.FAILED_STATUS if undeliverable else "delivered"):
        await asyncio.sleep(sandbox.config.status_progression_delay_ms / 1000)
        if sandbox.state.messages.get(message.id) is not message:
            return  # the sandbox was reset meanwhile
        advance_status(sandbox, message, status)


def _dispatch_outbound(sandbox: Sandbox, message: Message) -> None:
    sandbox.state.messages[message.id] = message
    emit_message_event(sandbox, "message.sent", message)
    sandbox.spawn(_progress_outbound(sandbox, message))


# --- sends through the public API -----------------------------------------------------------


def _recipient(payload: Json, name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not is_strict_e164(value):
        raise bad_request(f"{name} must be a phone number in E.164 format, e.g. +33612345678")
    return value


def _usable_whatsapp_line(sandbox: Sandbox, principal: Principal, line_id: int) -> Number:
    number = sandbox.state.find_number(line_id, principal.company_id)
    if number is None:
        raise not_found()
    company = sandbox.state.companies[principal.company_id]
    if not company.whatsapp_addon_active:
        raise unprocessable("WhatsApp not enabled", "The company has no WhatsApp add-on.")
    if number.whatsapp is None:
        raise unprocessable(
            "Line not WhatsApp-enabled", f"Number {line_id} has no WhatsApp Business line."
        )
    if not number.whatsapp.usable:
        raise unprocessable(
            "WhatsApp line unavailable",
            f"WhatsApp status of number {line_id} is {number.whatsapp.status} "
            f"(canSendMessage={str(number.whatsapp.can_send_message).lower()}).",
        )
    return number


def _text_within_limit(text: Any) -> str:
    if not isinstance(text, str) or not 1 <= len(text) <= constants.WHATSAPP_TEXT_MAX_CHARS:
        raise ApiError(400, {
            "error": "Invalid parameter",
            "troubleshoot": (
                f"(#{constants.TEXT_TOO_LONG_CODE}) text must be between 1 and "
                f"{constants.WHATSAPP_TEXT_MAX_CHARS} characters."
            ),
            "code": constants.TEXT_TOO_LONG_CODE,
            "success": False,
        })
    return text


def send_whatsapp_native(sandbox: Sandbox, principal: Principal, payload: Json) -> Message:
    """`POST /v1/messages/send/whatsapp/native` (§A6)."""
    line_id = int_field(payload, "lineId")
    recipient = _recipient(payload, "externalNumber")
    has_text, has_template = "text" in payload, "templateParams" in payload
    if has_text == has_template:
        raise bad_request("Provide exactly one of text or templateParams")
    number = _usable_whatsapp_line(sandbox, principal, line_id)
    now = sandbox.clock.now()
    if has_text:
        body = _text_within_limit(payload["text"])
        if not window_open(sandbox.state, number.id, recipient, now):
            raise ApiError(constants.WINDOW_CLOSED_STATUS, dict(constants.WINDOW_CLOSED_BODY))
        template_content, message_type = None, constants.WHATSAPP_SERVICE_MESSAGE_TYPE
    else:
        # Templates go any time (§B1), but only approved ones with the right parameters.
        _template, body = render_send(sandbox.state, number, payload["templateParams"])
        template_content, message_type = body, constants.WHATSAPP_TEMPLATE_MESSAGE_TYPE
    contact = sandbox.state.find_contact(principal.company_id, recipient)
    message = Message(
        id=new_message_id(now), company_id=principal.company_id, number_id=number.id,
        channel="whatsapp", direction="outbound", external_e164=recipient, body=body,
        status="pending", created_at=now, updated_at=now, sent_at=now,
        type="template" if template_content else "text",
        contact_id=contact.id if contact else None,
        template_content=template_content, whatsapp_message_type=message_type,
    )
    _dispatch_outbound(sandbox, message)
    return message


def send_sms_native(
    sandbox: Sandbox, principal: Principal, number_id: int, payload: Json
) -> Message:
    """`POST /v1/numbers/:id/messages/native/send` (§A6): SMS/MMS, no window."""
    number = sandbox.state.find_number(number_id, principal.company_id)
    if number is None:
        raise not_found()
    if not number.sms:
        raise unprocessable("Number not SMS-enabled", f"Number {number_id} cannot send SMS.")
    recipient = _recipient(payload, "to")
    body = payload.get("body")
    if not isinstance(body, str) or not 1 <= len(body) <= constants.SMS_BODY_MAX_CHARS:
        raise bad_request(f"body must be between 1 and {constants.SMS_BODY_MAX_CHARS} characters")
    media_urls = payload.get("mediaUrl") or []
    if not isinstance(media_urls, list) or not all(isinstance(u, str) for u in media_urls):
        raise bad_request("mediaUrl must be a list of URLs")
    now = sandbox.clock.now()
    contact = sandbox.state.find_contact(principal.company_id, recipient)
    message = Message(
        id=new_message_id(now), company_id=principal.company_id, number_id=number.id,
        channel="sms", direction="outbound", external_e164=recipient, body=body,
        status="pending", created_at=now, updated_at=now, sent_at=now,
        media_urls=list(media_urls), contact_id=contact.id if contact else None,
    )
    _dispatch_outbound(sandbox, message)
    return message


# --- the customer's phone -------------------------------------------------------------------


def _customer_contact(
    state: SandboxState, company_id: int, phone: str, name: str | None
) -> Contact | None:
    """A known contact, or one the agent "saved" from the sender's name (sandbox choice)."""
    contact = state.find_contact(company_id, phone)
    if contact is None and name and name.strip():
        first, _, last = name.strip().partition(" ")
        contact = Contact(state.ids.take() + 10_000, company_id, first, last, phone)
        state.contacts[contact.id] = contact
    return contact


def _check_reachable(number: Number, channel: Channel, state: SandboxState) -> None:
    if channel == "sms":
        if not number.sms:
            raise conflict(f"Number {number.id} does not receive SMS.")
        return
    company = state.companies[number.company_id]
    line = number.whatsapp
    if not company.whatsapp_addon_active or line is None or line.status != "ONLINE":
        raise conflict(f"Number {number.id} has no ONLINE WhatsApp line.")


def receive_from_customer(sandbox: Sandbox, payload: Json) -> Message:
    """`POST /_sandbox/customer/messages`: the customer writes to a business number."""
    state = sandbox.state
    number = state.find_number(int_field(payload, "number_id"))
    if number is None:
        raise not_found()
    channel = payload.get("channel", "whatsapp")
    if channel not in ("whatsapp", "sms"):
        raise bad_request("channel must be whatsapp or sms")
    message_type = payload.get("type", "text")
    if message_type not in constants.INBOUND_MESSAGE_TYPES or (
        channel == "sms" and message_type != "text"
    ):
        raise bad_request(f"type must be one of {', '.join(constants.INBOUND_MESSAGE_TYPES)}")
    try:
        phone = normalise(str(payload.get("from", "")), default_region=number.country)
    except InvalidPhoneNumber as error:
        raise bad_request(str(error)) from error
    text = payload.get("text", "")
    if not isinstance(text, str) or len(text) > constants.WHATSAPP_TEXT_MAX_CHARS:
        raise bad_request("text must be a string of at most 4096 characters")
    if message_type == "text" and not text.strip():
        raise bad_request("text is required for a text message")
    _check_reachable(number, channel, state)
    name = payload.get("name")
    contact = _customer_contact(
        state, number.company_id, phone, name if isinstance(name, str) else None
    )
    now = sandbox.clock.now()
    message = Message(
        id=new_message_id(now), company_id=number.company_id, number_id=number.id,
        channel=channel, direction="inbound", external_e164=phone, body=text,
        status=constants.INBOUND_STATUS, created_at=now, updated_at=now, sent_at=now,
        type=message_type, contact_id=contact.id if contact else None,
    )
    if message_type != "text":
        file_type, file_name = constants.MEDIA_PLACEHOLDERS[message_type]
        media = MediaFile(file_name=file_name, file_type=file_type, key=uuid.uuid4().hex)
        message.media.append(media)
        state.media_by_key[media.key] = (message.id, media)
    state.messages[message.id] = message
    if channel == "whatsapp":
        state.last_inbound_whatsapp[(number.id, phone)] = now  # opens/refreshes the window
    emit_message_event(sandbox, "message.received", message)
    return message


def mark_read(sandbox: Sandbox, message_id: str) -> Message:
    """`POST /_sandbox/customer/messages/{id}/read`: blue ticks on the customer's phone."""
    message = sandbox.state.messages.get(message_id)
    if message is None:
        raise not_found()
    if message.direction != "outbound" or message.channel != "whatsapp":
        raise conflict("Only outbound WhatsApp messages can be read by the customer.")
    advance_status(sandbox, message, "read")
    return message

"""The JSON shapes Aircall shows, built from sandbox records (§A4, §A5, §A7, §A8)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.clock import to_iso, to_unix_ms, to_unix_seconds
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.phone import display, region_of
from whatsapp_helpdesk.sandbox.aircall.state import (
    Call,
    Company,
    Contact,
    Integration,
    MediaFile,
    Message,
    Number,
    SandboxState,
    User,
    Webhook,
    WhatsAppLine,
)

TimestampFormat = Literal["ms", "iso"]

# Signs presigned media URLs; a fixed value is enough for a local emulator.
_MEDIA_SIGNING_KEY = b"sandbox-aircall-media"


def message_timestamp(moment: datetime, fmt: TimestampFormat) -> int | str:
    """§E2: UNIX milliseconds (support sample) or ISO strings (reference sample)."""
    return to_unix_ms(moment) if fmt == "ms" else to_iso(moment)


def user_json(user: User, base: str) -> Json:
    """The User as nested in calls and numbers (no substatus, no wrap_up_time)."""
    return {
        "id": user.id,
        "direct_link": f"{base}/v1/users/{user.id}",
        "name": user.name,
        "email": user.email,
        "available": user.available,
        "availability_status": "available" if user.available else "unavailable",
        "created_at": to_iso(user.created_at),
        "time_zone": user.time_zone,
        "language": user.language,
    }


def contact_json(contact: Contact, base: str) -> Json:
    phone = {"id": contact.id * 10 + 1, "label": "Mobile", "value": contact.phone_e164}
    emails = (
        [{"id": contact.id * 10 + 2, "label": "Work", "value": contact.email}]
        if contact.email
        else []
    )
    return {
        "id": contact.id,
        "direct_link": f"{base}/v1/contacts/{contact.id}",
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "company_name": contact.company_name,
        "information": None,
        "is_shared": True,
        "phone_numbers": [phone],
        "emails": emails,
    }


def _availability(number: Number) -> str:
    return "open" if number.open else "closed"


def number_json(state: SandboxState, number: Number, base: str, *, in_webhook: bool) -> Json:
    """The full Number object (§A5). No capability flag: none is documented."""
    audio = f"{base}/_sandbox/audio/{number.id}"
    body: Json = {
        "id": number.id,
        "direct_link": f"{base}/v1/numbers/{number.id}",
        "name": number.name,
        "digits": display(number.e164),
        "created_at": to_iso(number.created_at),
        "country": number.country,
        "time_zone": number.time_zone,
        "open": number.open,
        "availability_status": _availability(number),
        "is_ivr": False,
        "live_recording_activated": False,
        "priority": None,
        "messages": {
            name: f"{audio}/{name}.mp3"
            for name in (
                "welcome", "waiting", "ivr", "voicemail", "closed", "callback_later",
                "unanswered_call", "after_hours", "ringing_tone",
            )
        },
        "users": [user_json(state.users[uid], base) for uid in number.user_ids],
    }
    if in_webhook:
        body["e164_digits"] = number.e164  # documented as webhook-only (§A5)
    return body


def number_abridged(number: Number, base: str, *, in_webhook: bool) -> Json:
    """The Number as nested in messages and calls (§A7)."""
    body: Json = {
        "id": number.id,
        "direct_link": f"{base}/v1/numbers/{number.id}",
        "name": number.name,
        "digits": display(number.e164),
        "country": number.country,
        "time_zone": number.time_zone,
        "open": number.open,
        "availability_status": _availability(number),
    }
    if in_webhook:
        body["e164_digits"] = number.e164
    return body


def camel_json(record: object, names: tuple[str, ...]) -> Json:
    """The attributes `names` of `record`, in that order, under their camelCase keys: the
    shape of Aircall's WhatsApp endpoints (§A5, §A6), where the older ones use snake_case."""
    return {_camel(name): getattr(record, name) for name in names}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_WHATSAPP_STATUS_SHOWN = (
    "waba_id", "status", "can_send_message", "messaging_limit_tier", "quality_rating",
    "business_verification_status",
)


def whatsapp_status_json(line: WhatsAppLine) -> Json:
    """camelCase body of `GET /v1/numbers/:id/whatsapp_status` (§A5)."""
    return camel_json(line, _WHATSAPP_STATUS_SHOWN)


def company_json(state: SandboxState, company: Company) -> Json:
    return {
        "name": company.name,
        "users_count": sum(1 for u in state.users.values() if u.company_id == company.id),
        "numbers_count": len(state.live_numbers(company.id)),
    }


def integration_json(state: SandboxState, integration: Integration, base: str) -> Json:
    """§A4 fields; `number_ids` = numbers the admin connected to this integration."""
    number_ids = [i for i in integration.number_ids if state.find_number(i) is not None]
    return {
        "name": constants.OAUTH_APP_NAME,
        "custom_name": None,
        "logo": f"{base}/_sandbox/static/logo.svg",
        "company_id": integration.company_id,
        "status": "installed" if integration.installed else "uninstalled",
        "active": integration.active,
        "number_ids": number_ids,
        "numbers_count": len(number_ids),
        "user": user_json(state.users[integration.admin_user_id], base),
    }


def basic_integration_json(state: SandboxState, company_id: int, base: str) -> Json:
    """Our choice for `/v1/integrations/me` with a Basic key (see constants)."""
    number_ids = [n.id for n in state.live_numbers(company_id)]
    admin = min(u.id for u in state.users.values() if u.company_id == company_id)
    return {
        "name": constants.BASIC_INTEGRATION_NAME,
        "custom_name": None,
        "logo": None,
        "company_id": company_id,
        "status": "installed",
        "active": True,
        "number_ids": number_ids,
        "numbers_count": len(number_ids),
        "user": user_json(state.users[admin], base),
    }


def webhook_json(webhook: Webhook, base: str) -> Json:
    return {
        "webhook_id": webhook.webhook_id,
        "direct_link": f"{base}/v1/webhooks/{webhook.legacy_id}",
        "created_at": to_iso(webhook.created_at),
        "custom_name": webhook.custom_name,
        "url": webhook.url,
        "active": webhook.active,
        "events": list(webhook.events),
        "token": webhook.token,
    }


def presigned_media_url(media: MediaFile, base: str, issued_at: datetime) -> str:
    """S3-style (SigV2) presigned link: absolute `Expires` (UNIX seconds) and a `Signature`."""
    expires = to_unix_seconds(issued_at + timedelta(seconds=constants.MEDIA_URL_TTL_SECONDS))
    signature = media_signature(media.key, expires)
    query = urlencode({"Expires": expires, "Signature": signature})
    return f"{base}/_sandbox/media/{media.key}/{media.file_name}?{query}"


def media_signature(key: str, expires: int) -> str:
    return hmac.new(_MEDIA_SIGNING_KEY, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()


def message_json(
    state: SandboxState,
    message: Message,
    base: str,
    *,
    fmt: TimestampFormat,
    in_webhook: bool,
    issued_at: datetime,
) -> Json:
    """The Message object (§A7).

    In webhooks it carries `external_number` (display form), `media_details` and `contact`;
    the send response has neither `external_number` nor `contact` (§A7 [C] sample).
    """
    number = state.numbers[message.number_id]
    body: Json = {
        "id": message.id,
        "direct_link": f"{base}/v1/numbers/{message.number_id}/messages/{message.id}",
        "direction": message.direction,
        "status": message.status,
        "channel": "whatsapp" if message.channel == "whatsapp" else None,
        "body": message.body,
        "raw_digits": message.external_e164.lstrip("+"),
        "created_at": message_timestamp(message.created_at, fmt),
        "updated_at": message_timestamp(message.updated_at, fmt),
        "sent_at": message_timestamp(message.sent_at, fmt),
        "media_url": list(message.media_urls),
        "number": number_abridged(number, base, in_webhook=in_webhook),
    }
    if message.channel == "whatsapp":
        body.update(
            {
                "type": message.type,
                "template_content": message.template_content,
                "whatsapp_message_type": message.whatsapp_message_type,
                "whatsapp_message_category": "utility" if message.template_content else None,
                "recipient_country": region_of(message.external_e164),
                "metadata": None,
                "parent_id": None,
            }
        )
    if in_webhook:
        body["external_number"] = display(message.external_e164)
        body["media_details"] = [
            {
                "file_name": media.file_name,
                "file_type": media.file_type,
                "presigned_url": presigned_media_url(media, base, issued_at),
            }
            for media in message.media
        ]
        contact = state.contacts.get(message.contact_id) if message.contact_id else None
        body["contact"] = contact_json(contact, base) if contact else None
    return body


def call_json(state: SandboxState, call: Call, base: str) -> Json:
    """The Call as webhook events show it (`call_uuid`, `participants`; §A8.2)."""
    number = state.numbers[call.number_id]
    user = state.users.get(call.user_id) if call.user_id else None
    contact = state.contacts.get(call.contact_id) if call.contact_id else None
    duration = 0
    if call.ended_at is not None:
        duration = int((call.ended_at - call.started_at).total_seconds())
    participants: list[Json] = [{"phone_number": display(call.external_e164), "type": "external"}]
    if user:
        participants.append({"id": user.id, "name": user.name, "type": "user"})
    return {
        "id": call.id,
        "call_uuid": call.call_uuid,
        "direct_link": f"{base}/v1/calls/{call.id}",
        "direction": "inbound",
        "status": call.status,
        "missed_call_reason": None if call.outcome == "answered" or call.status == "initial"
        else constants.MISSED_CALL_REASON,
        "started_at": to_unix_seconds(call.started_at),
        "answered_at": to_unix_seconds(call.answered_at) if call.answered_at else None,
        "ended_at": to_unix_seconds(call.ended_at) if call.ended_at else None,
        "duration": duration,
        "cost": "0",
        "hangup_cause": None,
        "voicemail": call.voicemail_url,
        "recording": None,
        "asset": None,
        "raw_digits": display(call.external_e164),
        "archived": False,
        "assigned_to": None,
        "participants": participants,
        "user": user_json(user, base) if user else None,
        "contact": contact_json(contact, base) if contact else None,
        "number": number_abridged(number, base, in_webhook=True),
        "comments": [],
        "tags": [],
        "teams": [],
    }


def page_meta(
    *, total: int, page: int, per_page: int, count: int, base: str, path: str,
    extra_query: dict[str, str] | None = None,
) -> Json:
    """The `meta` block of every paginated list (§A1)."""

    def link(to_page: int) -> str:
        query = {**(extra_query or {}), "page": str(to_page), "per_page": str(per_page)}
        return f"{base}{path}?{urlencode(query)}"

    has_next = page * per_page < total
    return {
        "count": count,
        "total": total,
        "current_page": page,
        "per_page": per_page,
        "next_page_link": link(page + 1) if has_next else None,
        "previous_page_link": link(page - 1) if page > 1 else None,
    }

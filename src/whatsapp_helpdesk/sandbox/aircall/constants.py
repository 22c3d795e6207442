"""Every fixed value and every "our choice" of the Aircall sandbox, in one place.

Facts tagged [C]/[S] come from `shared/reference/aircall-whatsapp.md`; values the reference
marks unknown ([U]) are chosen here, once, with the reason next to them, so the bridge and
its tests know exactly which guess they are talking to.
"""

from __future__ import annotations

from typing import Any, Final

# A JSON object as Aircall's bodies and webhooks carry them.
Json = dict[str, Any]

# --- Seeded credentials (the bridge repeats the OAuth pair in its settings) -----------------

OAUTH_CLIENT_ID: Final = "sandbox-aircall-client-id"
OAUTH_CLIENT_SECRET: Final = "sandbox-aircall-client-secret"
OAUTH_SCOPE: Final = "public_api"  # the only scope Aircall has (§A2)
OAUTH_APP_NAME: Final = "WhatsApp Helpdesk (sandbox)"
# Authorization codes: Aircall documents no lifetime [U]; ten minutes is the common OAuth value.
AUTHORIZATION_CODE_TTL_SECONDS: Final = 600
DEFAULT_OAUTH_COMPANY_ID: Final = 1

# --- API behaviour ----------------------------------------------------------------------------

DEFAULT_PER_PAGE: Final = 20  # §A1
MAX_PER_PAGE: Final = 50  # §A1: larger values are clamped, not refused [I]
MAX_WEBHOOKS_PER_COMPANY: Final = 100  # §A8.1
WHATSAPP_TEXT_MAX_CHARS: Final = 4096  # §B3
SMS_BODY_MAX_CHARS: Final = 1600  # §A6, §A9
CUSTOMER_SERVICE_WINDOW_SECONDS: Final = 24 * 3600  # §B1
RATE_LIMIT_WINDOW_SECONDS: Final = 60  # §A3: "requests / minute / company"
# §A3 says 120 in the current reference and 60 in older texts; the brief asks for 60.
DEFAULT_RATE_LIMIT_PER_MINUTE: Final = 60
# Presigned media URLs are time-limited, lifetime unknown [U]; ten minutes (sandbox clock).
MEDIA_URL_TTL_SECONDS: Final = 600
# The reference says these come "when the rate limit has been reached" (§A3); the sandbox sends
# them on every authenticated /v1 answer too, which a client reading them only on 429 ignores.
RATE_LIMIT_HEADERS: Final = ("X-AircallApi-Limit", "X-AircallApi-Remaining", "X-AircallApi-Reset")

# --- Webhook delivery (§A8.5) -----------------------------------------------------------------

DELIVERY_TIMEOUT_SECONDS: Final = 5.0
# The real schedule spreads ~50 retries over 12 h; the sandbox keeps the shape, shorter.
DEFAULT_RETRY_SCHEDULE_SECONDS: Final = (2.0, 5.0, 15.0, 60.0, 300.0, 900.0)
DEFAULT_DISABLE_AFTER_FAILURES: Final = 50
# §A8.5: a failed event is "retried up to 50 times" (about 12 h with the default schedule).
DEFAULT_MAX_RETRIES: Final = 50
RETRY_GIVE_UP_AFTER_SECONDS: Final = 12 * 3600
# Pause between message.sent and each status_updated of an outbound message ("shortly after").
DEFAULT_STATUS_PROGRESSION_DELAY_MS: Final = 300
# Headers seen on a live delivery (§A8.4); none of them is a credential.
DELIVERY_HEADERS: Final = {
    "content-type": "application/json",
    "user-agent": "axios/1.7.7",
    "aircall-origin": "webhooks",
}
DELIVERY_LOG_LIMIT: Final = 10_000

# --- Error bodies -----------------------------------------------------------------------------

UNAUTHORIZED_BODY: Final = {"message": "Unauthorized"}  # no Authorization header (§A1)
FORBIDDEN_BODY: Final = {"message": "Forbidden"}  # bad credentials (§A1)
NOT_FOUND_BODY: Final = {"message": "Not Found"}

RATE_LIMIT_ERROR: Final = "Too many requests"

# How Aircall relays Meta's 131047 is unknown (§A6, §E1). Our choice: a synchronous 422 on
# the send call carrying Meta's code and title, in Aircall's `error/troubleshoot` shape.
WINDOW_CLOSED_STATUS: Final = 422
WINDOW_CLOSED_BODY: Final[dict[str, Any]] = {
    "error": "Re-engagement message",
    "troubleshoot": (
        "(#131047) More than 24 hours have passed since the customer last replied to this number."
    ),
    "code": 131047,
    "success": False,
}
# Text over 4,096 characters: Meta answers with its invalid-parameter family (§B3, §B5);
# our choice is a 400 with code 131009.
TEXT_TOO_LONG_CODE: Final = 131009

# Template sends (§A6, §B5). Meta's 132000 (parameter count mismatch) and 132001 (template
# does not exist, or not approved in this language) are relayed, like 131047, as our choice
# of a synchronous 400 in Aircall's `error/troubleshoot` shape carrying Meta's code. A
# paused template is refused by Meta with 132015 ("Template is paused"); Aircall's relay is
# unknown, so the same shape.
TEMPLATE_PARAM_MISMATCH_CODE: Final = 132000
TEMPLATE_MISSING_CODE: Final = 132001
TEMPLATE_PAUSED_CODE: Final = 132015
TEMPLATE_REFUSAL_STATUS: Final = 400
# Meta's invalid-parameter code for a text parameter with a new line, a tab or more than
# four consecutive spaces (its message quoted in templates.py).
TEMPLATE_PARAMETER_TEXT_CODE: Final = 100
# `GET /v1/numbers/:id/templates` cursor pagination (§A6: `token`, `limit`): our choice of
# default and maximum page size; `token` is the offset of the page's first template.
TEMPLATES_DEFAULT_LIMIT: Final = 10
TEMPLATES_MAX_LIMIT: Final = 50
TEMPLATE_STATUSES: Final = ("APPROVED", "PENDING", "PAUSED", "REJECTED")

# `GET /v1/numbers/:id/whatsapp_status` on a number without WhatsApp: behaviour unknown (§A5).
# Our choice: 404 {"message": "Not Found"}.
WHATSAPP_STATUS_MISSING_STATUS: Final = 404
# `GET /v1/numbers/:id/registration_status`: the real shape is unknown (§A5). Our choice: the
# body below for SMS-capable numbers, 404 {"message": "Not Found"} for the others.
REGISTRATION_STATUS_APPROVED: Final = "approved"

# --- Message object choices (§A7) -------------------------------------------------------------

# Sent messages start "pending" (send-response sample [C]); `message.sent` carries the same
# snapshot, then `message.status_updated` goes sent -> delivered (-> read from the phone).
OUTBOUND_STATUS_ORDER: Final = ("pending", "sent", "delivered", "read")
# The full status enum and how Meta failures are reported are unknown (§E1). Our choice: an
# undeliverable message goes pending -> sent -> "failed" through message.status_updated, with
# no invented error fields (the documented Message object has none).
FAILED_STATUS: Final = "failed"
INBOUND_STATUS: Final = "received"
# `whatsapp_message_type` for a reply inside the window. The enum value is spelled
# "free_customer_serivce" in the reference (sic, §A7) and is reproduced as documented.
WHATSAPP_SERVICE_MESSAGE_TYPE: Final = "free_customer_serivce"
WHATSAPP_TEMPLATE_MESSAGE_TYPE: Final = "regular"
INBOUND_MESSAGE_TYPES: Final = (
    "text", "image", "audio", "video", "document", "location", "sticker", "contacts",
)
# Placeholder files served for non-text inbound messages (content type, file name).
MEDIA_PLACEHOLDERS: Final[dict[str, tuple[str, str]]] = {
    "image": ("image/png", "photo.png"),
    "audio": ("audio/ogg", "voice-note.ogg"),
    "video": ("video/mp4", "clip.mp4"),
    "document": ("application/pdf", "document.pdf"),
    "sticker": ("image/webp", "sticker.webp"),
    "location": ("application/json", "location.json"),
    "contacts": ("text/vcard", "contact.vcf"),
}

# What the phone's location and shared-contact messages carry: WhatsApp's `location` object
# and a vCard (the shape Aircall forwards is undocumented [U]; these are WhatsApp's own).
SAMPLE_LOCATION: Final = (
    '{"latitude": 48.858370, "longitude": 2.294481, "name": "Tour Eiffel", '
    '"address": "Champ de Mars, 5 Av. Anatole France, 75007 Paris"}'
)
SAMPLE_VCARD: Final = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Martin;Paul;;;\r\nFN:Paul Martin\r\n"
    "TEL;TYPE=CELL:+33 6 98 76 54 32\r\nEND:VCARD\r\n"
)

# --- Calls (§A8.2/§A8.3) ----------------------------------------------------------------------

# The enum of `missed_call_reason` is not in the reference [U]; Aircall's API reference uses
# values such as "agents_did_not_answer", kept here as the sandbox's only value.
MISSED_CALL_REASON: Final = "agents_did_not_answer"
CALL_OUTCOMES: Final = ("missed", "voicemail", "answered")

# --- Integration (§A4) ------------------------------------------------------------------------

INTEGRATION_ID_BASE: Final = 4200  # integration id = base + company id (for integration.deleted)
# `GET /v1/integrations/me` with a Basic key: the real answer is unknown [U]. Our choice: the
# company's "API key" pseudo-integration, connected to every number.
BASIC_INTEGRATION_NAME: Final = "API Key"
# Whether the OAuth integration's number filter applies to message events is unknown (§A8.1).
# Our choice: it applies to call events only (what Aircall documents); message events reach
# every webhook of the company, so the bridge must filter on data.number.id itself.
NUMBER_FILTERED_RESOURCES: Final = frozenset({"call"})

# --- Webhook events (§A8.3, the 67 published) -------------------------------------------------

WEBHOOK_EVENTS: Final = (
    # call (19)
    "call.created", "call.ringing_on_agent", "call.agent_declined", "call.answered",
    "call.transferred", "call.external_transferred", "call.unsuccessful_transfer",
    "call.hungup", "call.ended", "call.hold", "call.unhold", "call.ivr_option_selected",
    "call.comm_assets_generated", "call.voicemail_left", "call.assigned", "call.archived",
    "call.tagged", "call.untagged", "call.commented",
    # user v2 (8)
    "user.created.v2", "user.deleted.v2", "user.connected.v2", "user.disconnected.v2",
    "user.opened.v2", "user.closed.v2", "user.wut_start.v2", "user.wut_end.v2",
    # user v1 (8, deprecated)
    "user.created", "user.deleted", "user.connected", "user.disconnected",
    "user.opened", "user.closed", "user.wut_start", "user.wut_end",
    # number (4)
    "number.created", "number.opened", "number.closed", "number.deleted",
    # contact (3)
    "contact.created", "contact.updated", "contact.deleted",
    # message (6)
    "message.sent", "message.received", "message.status_updated",
    "group_message.sent", "group_message.received", "group_message.status_updated",
    # conversation intelligence (12)
    "transcription.created", "summary.created", "topics.created", "sentiment.created",
    "action_item.created", "playbook_result.created", "playbook_result.updated",
    "realtime_transcription.utterances_received", "custom_summary.result_created",
    "custom_summary.result_updated", "call_evaluation.created", "call_evaluation.updated",
    # ai voice agent (4)
    "ai_voice_agent.started", "ai_voice_agent.ended", "ai_voice_agent.escalated",
    "ai_voice_agent.summary",
    # analytics (2)
    "analytics.report_created", "analytics.report_failed",
    # integration (1) — only for webhooks created with OAuth credentials
    "integration.deleted",
)
NUMBER_CONTROL_EVENTS: Final = (
    "number.opened", "number.closed", "number.created", "number.deleted",
)

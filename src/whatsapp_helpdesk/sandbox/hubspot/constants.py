"""Fixed facts of the sandbox HubSpot: seed ids, app credentials, scopes, error words.

The bridge duplicates the app credentials and seed ids in its settings; keep them stable.
"""

from __future__ import annotations

from typing import Final

# --- The one public app registered in the sandbox developer account ---------------------
APP_ID: Final = 1001
CLIENT_ID: Final = "sandbox-hubspot-client-id"
CLIENT_SECRET: Final = "sandbox-hubspot-client-secret"  # also the webhook signing key (§5)
DEVELOPER_API_KEY: Final = "sandbox-developer-api-key"

# --- Seeded portals ---------------------------------------------------------------------
DEMO_PORTAL_ID: Final = 4242
OTHER_PORTAL_ID: Final = 4343

# --- Lifetimes (seconds of the sandbox clock) -------------------------------------------
ACCESS_TOKEN_TTL_SECONDS: Final = 1800  # reference §6: expires_in is 1800
AUTH_CODE_TTL_SECONDS: Final = 600  # [INF] HubSpot auth codes are short-lived
DEFAULT_STAGING_TOKEN_TTL_SECONDS: Final = 600  # [UNK] real lifetime unknown (reference §10.1)

# --- Rate limit (reference §7: public apps, 110 requests / 10 s per installing portal) ----
DEFAULT_RATE_LIMIT_MAX: Final = 110
RATE_LIMIT_INTERVAL_MS: Final = 10_000

# --- Webhooks ---------------------------------------------------------------------------
DEFAULT_WEBHOOK_RETRY_SCHEDULE: Final = (1.0, 5.0, 25.0)  # [UNK] real policy unknown (§10.6)
WEBHOOK_TIMEOUT_SECONDS: Final = 10.0

# --- Scopes (reference §6 and the `security` blocks of the OpenAPI files) ----------------
SCOPE_CHANNELS_READ: Final = "conversations.custom_channels.read"
SCOPE_CHANNELS_WRITE: Final = "conversations.custom_channels.write"
SCOPE_CONVERSATIONS_READ: Final = "conversations.read"
SCOPE_CONVERSATIONS_WRITE: Final = "conversations.write"
SCOPE_CONTACTS_READ: Final = "crm.objects.contacts.read"
SCOPE_CONTACTS_WRITE: Final = "crm.objects.contacts.write"
SCOPE_TICKETS: Final = "tickets"
SCOPE_FILES: Final = "files"

# --- Error sub-categories ----------------------------------------------------------------
# The real sub-category strings for these staging-token / channel-account conflicts are
# unknown ([UNK], reference §2.2). These are our choice, modelled on the one confirmed
# sub-category `CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES` (reference §1.3).
# Keep every such string here so a later correction is a one-line change.
SUBCATEGORY_STAGING_TOKEN_ALREADY_USED: Final = "CustomChannelsError.STAGING_TOKEN_ALREADY_USED"
SUBCATEGORY_DELIVERY_IDENTIFIER_EXISTS: Final = (
    "CustomChannelsError.DELIVERY_IDENTIFIER_ALREADY_EXISTS"
)
SUBCATEGORY_INVALID_DELIVERY_IDENTIFIER: Final = "CustomChannelsError.INVALID_DELIVERY_IDENTIFIER"

# Messages of the three connection errors of SPEC R5, as the help desk would word them.
MESSAGE_ACCOUNT_TOKEN_NOT_FOUND: Final = "Account token not found"
MESSAGE_STAGING_TOKEN_ALREADY_USED: Final = (
    "This account token was already used by another user to connect a channel account."
)
MESSAGE_NUMBER_ALREADY_EXISTS: Final = (
    "Number already exists: this delivery identifier is already connected to another "
    "channel account of this channel."
)

# --- Webhook event types (reference §4.1) --------------------------------------------------
EVENT_OUTGOING_MESSAGE: Final = "OUTGOING_CHANNEL_MESSAGE_CREATED"
EVENT_ACCOUNT_CREATED: Final = "CHANNEL_ACCOUNT_CREATED"
EVENT_ACCOUNT_UPDATED: Final = "CHANNEL_ACCOUNT_UPDATED"

# --- Threading models (reference §1.5) ------------------------------------------------------
THREADING_INTEGRATION_THREAD_ID: Final = "INTEGRATION_THREAD_ID"
THREADING_DELIVERY_IDENTIFIER: Final = "DELIVERY_IDENTIFIER"

# --- CRM ------------------------------------------------------------------------------------
HELP_DESK_PIPELINE: Final = "0"
STAGE_NEW: Final = "1"
STAGE_CLOSED: Final = "4"
TICKET_STAGE_LABELS: Final = {
    "1": "New",
    "2": "Waiting on contact",
    "3": "Waiting on us",
    "4": "Closed",
}
# HubSpot-defined association type id for ticket → contact (CRM associations docs).
ASSOCIATION_TICKET_TO_CONTACT: Final = 16

# --- Controls -------------------------------------------------------------------------------
CONTROL_PREFIX: Final = "/_sandbox"

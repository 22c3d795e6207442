"""Authenticate Aircall webhooks (reference aircall §A8.4; R42).

Aircall signs nothing: the only credential is the body's `token`, the one Aircall returned
when the webhook was created. The service stores only its SHA-256 digest, which doubles as
the lookup key for the installation (the token is the tenant key), and compares in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac

# The events our webhook subscribes to: set at install, checked by the webhook health job
# and by `doctor`.
AIRCALL_EVENTS = (
    "message.received",
    "message.sent",
    "message.status_updated",
    "call.ended",
    "call.voicemail_left",
    "number.created",
    "number.deleted",
    "number.opened",
    "number.closed",
    "integration.deleted",
)


def token_digest(token: str) -> str:
    """SHA-256 hex of a webhook token: what is stored, and what a delivery is looked up by.
    Unsalted on purpose: the token is a long random secret, and the digest must be a stable
    key to find the installation from an incoming token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(given: str | None, stored_digest: str) -> bool:
    """Whether the token of a delivery is the one whose digest we stored (constant time)."""
    if not given or not stored_digest:
        return False
    return hmac.compare_digest(token_digest(given), stored_digest.lower())

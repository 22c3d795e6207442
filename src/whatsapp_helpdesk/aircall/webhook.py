"""Authenticate Aircall webhooks (reference aircall §A8.4; R42).

Aircall signs nothing: the only credential is the body's `token`, the one Aircall returned
when the webhook was created. The service stores only its SHA-256 digest, which doubles as
the lookup key for the installation (the token is the tenant key), and compares in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any


def token_digest(token: str) -> str:
    """SHA-256 hex of a webhook token: what is stored, and what a delivery is looked up by.
    Unsalted on purpose: the token is a long random secret, and the digest must be a stable
    key to find the installation from an incoming token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def without_token(body: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery as it is stored: its token replaced by the token's digest, so that the
    stored payloads (and the database files) never hold a credential (R41)."""
    token = body.get("token")
    kept = dict(body)
    if isinstance(token, str) and token:
        kept["token"] = f"sha256:{token_digest(token)}"
    return kept


def tokens_match(given: str | None, stored_digest: str) -> bool:
    """Whether the token of a delivery is the one whose digest we stored (constant time)."""
    if not given or not stored_digest:
        return False
    return hmac.compare_digest(token_digest(given), stored_digest.lower())

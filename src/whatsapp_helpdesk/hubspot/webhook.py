"""Verify HubSpot's v3 request signature (reference hubspot §5; R42).

    signature = base64(HMAC-SHA256(client_secret, METHOD + URI + raw body + timestamp))

`X-HubSpot-Signature-v3` carries the signature, `X-HubSpot-Request-Timestamp` the time in
milliseconds. Verify-only: the tests compute signatures on their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

SIGNATURE_HEADER: Final = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER: Final = "X-HubSpot-Request-Timestamp"

# HubSpot's SDKs reject timestamps older than five minutes (§5 step 1).
MAX_AGE_MS: Final = 5 * 60 * 1000
# A timestamp from the future is not in HubSpot's rules; allow the same five minutes of clock
# skew and no more, so a captured request cannot be stamped to stay valid for longer.
MAX_FUTURE_SKEW_MS: Final = 5 * 60 * 1000

# Before hashing, HubSpot decodes exactly these escapes in the URI, nothing else (§5 step 3).
# Hex digits are case-insensitive in percent-encoding (RFC 3986 §2.1), so both cases decode.
_DECODED_ESCAPES: Final = {
    "3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$",
    "27": "'", "28": "(", "29": ")", "2A": "*", "2C": ",", "3B": ";",
}
_ESCAPE = re.compile("%(" + "|".join(_DECODED_ESCAPES) + ")", re.IGNORECASE)


class InvalidSignature(ValueError):
    """The request is not provably from HubSpot; the reason is safe to log."""


def verify_signature_v3(
    *,
    method: str,
    url: str,
    raw_body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    client_secret: str,
    now_ms: int,
) -> None:
    """Return if the request is HubSpot's, raise `InvalidSignature` otherwise.

    `url` is the full URL HubSpot called (scheme, host, path, query) as it reached us —
    behind a proxy, rebuilt from the public URL; `raw_body` the bytes exactly as received.
    """
    if not client_secret:
        raise InvalidSignature("no HubSpot client secret is configured")
    if not signature_header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp = _timestamp_ms(timestamp_header)
    if now_ms - timestamp > MAX_AGE_MS:
        raise InvalidSignature("request timestamp is older than 5 minutes")
    if timestamp - now_ms > MAX_FUTURE_SKEW_MS:
        raise InvalidSignature("request timestamp is in the future")
    source = _signature_source(method, url, raw_body, timestamp_header or "")
    expected = base64.b64encode(
        hmac.new(client_secret.encode("utf-8"), source, hashlib.sha256).digest()
    )
    if not hmac.compare_digest(expected, signature_header.strip().encode("utf-8")):
        raise InvalidSignature("signature does not match")


def _timestamp_ms(header: str | None) -> int:
    if header is None or not header.strip():
        raise InvalidSignature(f"missing {TIMESTAMP_HEADER} header")
    try:
        return int(header.strip())
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not a number") from None


def _signature_source(method: str, url: str, raw_body: bytes, timestamp: str) -> bytes:
    """METHOD + decoded URI + body + timestamp, as UTF-8 bytes. The body stays the raw bytes
    (for a UTF-8 body these are exactly its UTF-8 encoding, which is what HubSpot hashes)."""
    uri = _ESCAPE.sub(lambda m: _DECODED_ESCAPES[m.group(1).upper()], url)
    return method.upper().encode() + uri.encode("utf-8") + raw_body + timestamp.strip().encode()

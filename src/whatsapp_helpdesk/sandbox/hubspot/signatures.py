"""HubSpot webhook request signatures (reference §5).

v3: base64(HMAC-SHA256(client secret, METHOD + URI + raw body + timestamp)), where URI is
the full URL called with a fixed set of percent-escapes decoded and the timestamp is the
`X-HubSpot-Request-Timestamp` value (ms since epoch). v2 (still sent for backward
compatibility): hex SHA-256 of client secret + METHOD + URI + body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# HubSpot's documented table of escapes to decode in the URI before hashing (§5 step 3).
DECODED_ESCAPES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}


def canonical_uri(url: str) -> str:
    for escaped, plain in DECODED_ESCAPES.items():
        url = url.replace(escaped, plain).replace(escaped.lower(), plain)
    return url


def signature_v3(
    *, client_secret: str, method: str, url: str, body: bytes, timestamp_ms: int
) -> str:
    source = method.upper().encode() + canonical_uri(url).encode() + body
    source += str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_v2(*, client_secret: str, method: str, url: str, body: bytes) -> str:
    source = client_secret.encode() + method.upper().encode() + url.encode() + body
    return hashlib.sha256(source).hexdigest()

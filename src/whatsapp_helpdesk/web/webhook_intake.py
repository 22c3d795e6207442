"""What both webhook endpoints share: the deliveries counter and a body reader that stops at
a size limit (R43). Its own module so that the app and the HubSpot webhook route, which both
count deliveries, do not import each other.
"""

from __future__ import annotations

from fastapi import Request
from prometheus_client import Counter

WEBHOOKS = Counter(
    "whatsapp_helpdesk_webhooks_total",
    "Webhook deliveries by source and result",
    ["source", "result"],
)


async def read_limited_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be larger than `limit` bytes (declared
    or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)

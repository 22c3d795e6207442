"""What both webhook endpoints share: the deliveries counter, the Aircall ingest batch
histogram (the writer's and the spool drain's) and a body reader that stops at a size limit
(R43). Its own module so that the app and the HubSpot webhook route, which both count
deliveries, do not import each other.
"""

from __future__ import annotations

from fastapi import Request
from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "whatsapp_helpdesk_webhooks_total",
    "Webhook deliveries by source and result",
    ["source", "result"],
)

BATCH_SIZE = Histogram("whatsapp_helpdesk_ingest_batch_deliveries",
                       "Aircall deliveries stored per transaction by the web process's writer "
                       "(INGEST_MODE=direct) or its spool's drain",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))


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

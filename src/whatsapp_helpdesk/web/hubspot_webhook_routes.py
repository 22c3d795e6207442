"""POST /webhooks/hubspot: HubSpot's custom-channel webhooks (R21, R27, R42, R43)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.hubspot import SIGNATURE_HEADER, TIMESTAMP_HEADER

WEBHOOK_PATH = "/webhooks/hubspot"

# A reply is at most a few KB of text and HTML; an agent pasting a long page into the
# composer still fits. Anything larger is not a custom-channel event (R43).
MAX_HUBSPOT_WEBHOOK_BODY = 1024 * 1024


async def _read_limited_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_HUBSPOT_WEBHOOK_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_HUBSPOT_WEBHOOK_BODY:
            return None
    return bytes(body)


def signed_url(public_url: str, request: Request) -> str:
    """The URL HubSpot called: the channel's `webhookUrl` is PUBLIC_URL + this path
    (flows/install.py), so it is rebuilt from PUBLIC_URL rather than from the Host header a
    proxy may have rewritten (reference §5: "behind proxies rebuild the public URL"). The
    query is kept byte for byte as it arrived."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{public_url}{WEBHOOK_PATH}" + (f"?{query}" if query else "")


def router(services: Services) -> APIRouter:
    routes = APIRouter()

    @routes.post(WEBHOOK_PATH)
    async def hubspot_webhook(request: Request) -> JSONResponse:
        # Imported here: web.app imports this module while it is being built.
        from whatsapp_helpdesk.web.app import WEBHOOKS

        body = await _read_limited_body(request)
        if body is None:
            WEBHOOKS.labels("hubspot", "too_large").inc()
            return JSONResponse({"result": "too_large"}, status_code=413)
        # Through the spool: kept even while the database is unreachable (R53).
        outcome = await run_in_threadpool(
            request.app.state.webhook_spool.receive_hubspot,
            method=request.method,
            url=signed_url(services.settings.public_url, request),
            raw_body=body,
            timestamp_header=request.headers.get(TIMESTAMP_HEADER),
            signature_header=request.headers.get(SIGNATURE_HEADER),
        )
        WEBHOOKS.labels("hubspot", outcome.result).inc()
        return JSONResponse(outcome.body(), status_code=outcome.status_code)

    return routes

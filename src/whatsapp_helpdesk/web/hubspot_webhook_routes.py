"""POST /webhooks/hubspot: HubSpot's custom-channel webhooks (R21, R27, R42, R43)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.hubspot import SIGNATURE_HEADER, TIMESTAMP_HEADER
from whatsapp_helpdesk.web.request_state import services_of
from whatsapp_helpdesk.web.webhook_intake import WEBHOOKS, read_limited_body

WEBHOOK_PATH = "/webhooks/hubspot"

# A reply is at most a few KB of text and HTML; an agent pasting a long page into the
# composer still fits. Anything larger is not a custom-channel event (R43).
MAX_HUBSPOT_WEBHOOK_BODY = 1024 * 1024


def signed_url(public_url: str, request: Request) -> str:
    """The URL HubSpot called: the channel's `webhookUrl` is PUBLIC_URL + this path
    (connect/install.py), so it is rebuilt from PUBLIC_URL rather than from the Host header a
    proxy may have rewritten (reference §5: "behind proxies rebuild the public URL"). The
    query is kept byte for byte as it arrived."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{public_url}{WEBHOOK_PATH}" + (f"?{query}" if query else "")


def add_routes(routes: APIRouter) -> None:
    """HubSpot's webhook, on the process's shared routes (web/request_state.py)."""

    @routes.post(WEBHOOK_PATH)
    async def hubspot_webhook(request: Request) -> JSONResponse:
        body = await read_limited_body(request, MAX_HUBSPOT_WEBHOOK_BODY)
        if body is None:
            WEBHOOKS.labels("hubspot", "too_large").inc()
            return JSONResponse({"result": "too_large"}, status_code=413)
        # Through the spool: kept even while the database is unreachable (R53).
        outcome = await run_in_threadpool(
            request.app.state.webhook_spool.receive_hubspot,
            method=request.method,
            url=signed_url(services_of(request).settings.public_url, request),
            raw_body=body,
            timestamp_header=request.headers.get(TIMESTAMP_HEADER),
            signature_header=request.headers.get(SIGNATURE_HEADER),
        )
        WEBHOOKS.labels("hubspot", outcome.result).inc()
        return JSONResponse(outcome.body(), status_code=outcome.status_code)

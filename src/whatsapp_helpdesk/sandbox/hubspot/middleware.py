"""Raw ASGI middlewares: injected faults (outermost) and rate-limit response headers.

The fault model (modes `status`, `rate_limit`, `slow`, `drop`; matching, `times`,
`probability`) is the kit's (`sandbox/kit/faults.py`); HubSpot's answers are here. Control
paths and the screens are never faulted, so a test can always clear what it set.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.sandbox.hubspot import constants, ratelimit
from whatsapp_helpdesk.sandbox.hubspot.auth import RATE_LIMIT_SCOPE_KEY
from whatsapp_helpdesk.sandbox.hubspot.errors import category_for_status, error_body
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.kit import faults as kit

UNFAULTED_PREFIXES = (constants.CONTROL_PREFIX, "/help-desk", "/static")


class FaultInjectionMiddleware(kit.FaultInjectionMiddleware[Sandbox]):
    """HubSpot's answers for the kit's faults: its error body with the category for the
    status, its 429 with the X-HubSpot-RateLimit-* headers, a connection reset."""

    drop_style = "abort"
    content_type = "application/json;charset=utf-8"

    def never_faulted(self, path: str) -> bool:
        return path == "/" or path.startswith(UNFAULTED_PREFIXES)

    def status_body(self, status: int) -> dict[str, Any]:
        return error_body(f"Sandbox fault: HTTP {status}", category_for_status(status))

    def rate_limited(self) -> tuple[dict[str, Any], dict[str, str]]:
        decision = ratelimit.RateDecision(
            allowed=False, limit=self.sandbox.config.rate_limit_max, remaining=0,
            interval_ms=self.sandbox.config.rate_limit_interval_ms,
        )
        return ratelimit.rate_limited_body(None), decision.headers()


class RateLimitHeadersMiddleware:
    """Adds the X-HubSpot-RateLimit-* headers recorded by `auth.count_request`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra: dict[str, str] | None = scope.get(RATE_LIMIT_SCOPE_KEY)
            if message["type"] == "http.response.start" and extra:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [
                    (k.lower().encode(), v.encode()) for k, v in extra.items()
                    if k.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""Security headers on every answer (issue 12, item 5).

- No page may be framed by another site (`frame-ancestors 'none'`, `X-Frame-Options: DENY`),
  except the connection pop-up (`/connect`): the reference does not say whether HubSpot
  opens it as a window or in a frame, so HubSpot's own domains may frame it
  (`https://app.hubspot.com`, regional `https://*.hubspot.com`, and the configured
  HUBSPOT_AUTH_BASE, which in sandbox mode is the sandbox HubSpot whose settings page
  opens it). `X-Frame-Options` cannot name several origins, so the pop-up goes without it.
- A Content-Security-Policy allowing only this service's own scripts, styles and images
  (no inline script: the pages' scripts are files under /static).
- `Referrer-Policy: no-referrer` (the pop-up's URL carries HubSpot's staging token),
  `X-Content-Type-Options: nosniff`, and HSTS when PUBLIC_URL is https.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.settings import Settings

HUBSPOT_FRAMERS: Final = ("https://app.hubspot.com", "https://*.hubspot.com")
FRAMEABLE_PATHS: Final = frozenset({"/connect"})
HSTS: Final = "max-age=31536000"

_POLICY: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                  "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                  "base-uri 'none'; frame-ancestors {ancestors}")


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        framers = [*HUBSPOT_FRAMERS]
        configured = _origin(settings.hubspot_auth_base)
        if configured and configured not in framers:
            framers.append(configured)
        common = [(b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", b"no-referrer")]
        if settings.public_url.startswith("https://"):
            common.append((b"strict-transport-security", HSTS.encode()))
        self._everywhere = [
            *common, (b"x-frame-options", b"DENY"),
            (b"content-security-policy", _POLICY.format(ancestors="'none'").encode()),
        ]
        self._frameable = [
            *common,
            (b"content-security-policy", _POLICY.format(ancestors=" ".join(framers)).encode()),
        ]

    def headers_for(self, path: str | None) -> list[tuple[bytes, bytes]]:
        """The headers an answer on `path` carries (the webhook fast path, which answers
        ahead of this middleware, adds them itself)."""
        return self._frameable if path in FRAMEABLE_PATHS else self._everywhere

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.headers_for(scope.get("path"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in added if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)

"""Who is calling `/v1`: a company's Basic key or an OAuth Bearer token (§A2), and the gate.

The gate runs before routing so that, as at Aircall's edge, a missing header is a 401, bad
credentials are a 403 (§A1), and only authenticated calls spend the company's budget (§A3).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.asgi_util import header, send_json, with_extra_headers
from whatsapp_helpdesk.sandbox.aircall.ratelimit import consume, too_many_requests_body
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.state import ApiCall, SandboxState

PRINCIPAL_SCOPE_KEY = "aircall.principal"
UNGATED_PATHS = frozenset({"/v1/oauth/token"})


@dataclass(frozen=True)
class Principal:
    company_id: int
    kind: Literal["basic", "oauth"]
    access_token: str | None = None


def resolve_credentials(state: SandboxState, authorization: str) -> Principal | None:
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "basic":
        return _basic(state, credentials)
    if scheme.lower() == "bearer":
        token = state.access_tokens.get(credentials)
        if token is None or token.revoked:
            return None
        return Principal(token.company_id, "oauth", token.token)
    return None


def _basic(state: SandboxState, credentials: str) -> Principal | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    api_id, _, api_token = decoded.partition(":")
    for company in state.companies.values():
        same_id = hmac.compare_digest(api_id.encode(), company.api_id.encode())
        same_token = hmac.compare_digest(api_token.encode(), company.api_token.encode())
        if same_id and same_token:
            return Principal(company.id, "basic")
    return None


def current_principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):  # a route outside the gate asked for it
        raise RuntimeError("no authenticated principal on this request")
    return principal


class AuthGateMiddleware:
    """401/403/429 for `/v1/*` before any route runs; adds `X-AircallApi-*` on the way out."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path in UNGATED_PATHS:
            await self.app(scope, receive, send)
            return
        authorization = header(scope, b"authorization")
        if not authorization:
            await send_json(send, 401, dict(constants.UNAUTHORIZED_BODY))
            return
        principal = resolve_credentials(self.sandbox.state, authorization)
        if principal is None:
            await send_json(send, 403, dict(constants.FORBIDDEN_BODY))
            return
        now = self.sandbox.clock.unix()
        decision = consume(self.sandbox.state, principal.company_id, now)
        self.sandbox.state.api_calls.append(ApiCall(
            now, principal.company_id, scope.get("method", ""), path, not decision.allowed))
        if not decision.allowed:
            await send_json(send, 429, too_many_requests_body(decision), decision.headers())
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, with_extra_headers(send, decision.headers()))

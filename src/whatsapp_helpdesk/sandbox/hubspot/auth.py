"""Who is calling: OAuth bearer tokens of a portal, or the developer API key.

API routes declare the scopes they accept (`requires(...)`, any one suffices, as the
`security` alternatives of the OpenAPI files say). Order of checks: credentials (401),
then the portal's rate limit (429, counted only for authenticated calls), then scopes (403).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from whatsapp_helpdesk.sandbox.hubspot import constants, errors, ratelimit
from whatsapp_helpdesk.sandbox.hubspot.clock import from_unix, to_iso
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.state import AccessToken, Portal

RATE_LIMIT_SCOPE_KEY = "hubspot_sandbox.rate_limit_headers"


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]


@dataclass(frozen=True)
class PortalAuth:
    """An authenticated API call on behalf of one portal."""

    portal: Portal
    token: AccessToken

    @property
    def portal_id(self) -> int:
        return self.portal.id


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(sandbox: Sandbox, raw_token: str | None) -> AccessToken:
    """The live access token, or a 401 (INVALID_ or EXPIRED_AUTHENTICATION)."""
    token = sandbox.state.access_tokens.get(raw_token or "")
    if token is None or token.revoked:
        raise errors.invalid_authentication()
    now = sandbox.clock.unix()
    if now >= token.expires_at:
        expired_at = to_iso(from_unix(token.expires_at))
        raise errors.expired_authentication(int(now - token.expires_at), expired_at)
    return token


def requires(*any_of_scopes: str) -> Any:
    """Dependency: a bearer token of a portal holding at least one of `any_of_scopes`."""

    def dependency(request: Request, sandbox: SandboxDep) -> PortalAuth:
        token = authenticate(sandbox, bearer_token(request))
        count_request(request, sandbox, token.portal_id)
        if not set(any_of_scopes) & set(token.scopes):
            raise errors.missing_scopes(list(any_of_scopes))
        return PortalAuth(portal=sandbox.state.portals[token.portal_id], token=token)

    return Depends(dependency)


def count_request(request: Request, sandbox: Sandbox, portal_id: int) -> None:
    window = sandbox.state.request_times.setdefault(portal_id, [])
    decision = ratelimit.take(
        window, now=sandbox.clock.unix(), limit=sandbox.config.rate_limit_max,
        interval_ms=sandbox.config.rate_limit_interval_ms,
    )
    request.scope[RATE_LIMIT_SCOPE_KEY] = decision.headers()
    if not decision.allowed:
        raise ratelimit.rate_limited(decision, portal_id)


def require_developer_key(request: Request) -> None:
    """Channel registration auth: `hapikey` (developer API key) + `appId` (reference §1.1)."""
    if request.query_params.get("hapikey") != constants.DEVELOPER_API_KEY:
        raise errors.invalid_authentication()
    app_id = request.query_params.get("appId")
    if app_id is None:
        raise errors.validation_error("The appId query parameter is required")
    if app_id != str(constants.APP_ID):
        raise errors.HubSpotApiError(
            403,
            errors.error_body(
                f"App {app_id} does not belong to this developer account", "MISSING_SCOPES"
            ),
        )


DeveloperKey = Depends(require_developer_key)


def expires_in_seconds(sandbox: Sandbox, token: AccessToken) -> int:
    return max(0, math.floor(token.expires_at - sandbox.clock.unix()))

"""OAuth for the sandbox's one public app (reference §6; oauth-v1.json, oauth-v3.json,
oauth-2026-03.json: the token endpoint of all three, the introspection of v3 and 2026-03).

`GET /oauth/authorize` auto-approves (no login screen): it is HubSpot's install consent with
the click already made. Token errors use the RFC 6749 fields HubSpot added
(`error`, `error_description`) next to its own `status` / `message` (changelog "new OAuth
v3"), plus `correlationId` / `category` so they fit the OpenAPI `Error` schema.
"""

from __future__ import annotations

import html
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from whatsapp_helpdesk.sandbox.hubspot import constants, errors
from whatsapp_helpdesk.sandbox.hubspot.auth import SandboxDep, authenticate, expires_in_seconds
from whatsapp_helpdesk.sandbox.hubspot.connections import with_query
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.state import AccessToken, AuthorizationCode, RefreshToken

router = APIRouter(include_in_schema=False)


def _refusal_page(reason: str) -> HTMLResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Couldn't complete the connection</title></head><body>"
        "<main><h1>Couldn't complete the connection</h1>"
        f"<p>{html.escape(reason)}</p></main></body></html>"
    )
    return HTMLResponse(body, status_code=400)


@router.get("/oauth/authorize")
async def authorize(request: Request, sandbox: SandboxDep) -> Response:
    params = request.query_params
    if params.get("client_id") != constants.CLIENT_ID:
        return _refusal_page("Authorization failed because this app is not known to HubSpot.")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        return _refusal_page("The redirect_uri parameter is missing.")
    scopes = params.get("scope", "").split()
    if not scopes:
        return _refusal_page("Insufficient scopes were provided.")
    portal_id = _int_or_none(params.get("portal_id", str(constants.DEMO_PORTAL_ID)))
    portal = sandbox.state.portals.get(portal_id) if portal_id is not None else None
    if portal is None:
        return _refusal_page(f"Unknown HubSpot account {params.get('portal_id')}.")
    user_id = _int_or_none(params.get("user_id")) or portal.agents[0].user_id
    granted = list(dict.fromkeys(scopes + params.get("optional_scope", "").split()))
    code = AuthorizationCode(
        code=secrets.token_urlsafe(24),
        client_id=constants.CLIENT_ID,
        redirect_uri=redirect_uri,
        portal_id=portal.id,
        user_id=user_id,
        scopes=granted,
        expires_at=sandbox.clock.unix() + constants.AUTH_CODE_TTL_SECONDS,
    )
    sandbox.state.auth_codes[code.code] = code
    query = {"code": code.code}
    if params.get("state") is not None:
        query["state"] = params["state"]
    return RedirectResponse(with_query(redirect_uri, query), status_code=302)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def oauth_error(error: str, status: str, description: str, http_status: int = 400) -> JSONResponse:
    body = {
        "error": error,
        "error_description": description,
        "status": status,
        "message": description,
        "correlationId": errors.correlation_id(),
        "category": "VALIDATION_ERROR",
    }
    return JSONResponse(body, status_code=http_status)


@router.post("/oauth/v1/token")
@router.post("/oauth/v3/token")
@router.post("/oauth/2026-03/token")
async def token(request: Request, sandbox: SandboxDep) -> Response:
    form = dict((await request.form()).items())
    # The spec also lists client_secret / refresh_token as query parameters.
    fields: dict[str, str] = {**dict(request.query_params), **{k: str(v) for k, v in form.items()}}
    grant_type = fields.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        return oauth_error(
            "unsupported_grant_type", "BAD_GRANT_TYPE", f"unsupported grant_type {grant_type!r}"
        )
    if fields.get("client_id") != constants.CLIENT_ID:
        return oauth_error("invalid_client", "BAD_CLIENT_ID", "missing or unknown client_id")
    if fields.get("client_secret") != constants.CLIENT_SECRET:
        return oauth_error("invalid_client", "BAD_CLIENT_SECRET", "client_secret does not match")
    if grant_type == "authorization_code":
        return _exchange_code(sandbox, fields)
    return _refresh(sandbox, fields)


def _exchange_code(sandbox: Sandbox, fields: dict[str, str]) -> Response:
    code = sandbox.state.auth_codes.get(fields.get("code", ""))
    if code is None or code.used:
        return oauth_error("invalid_grant", "BAD_AUTH_CODE", "missing or unknown auth code")
    if sandbox.clock.unix() >= code.expires_at:
        return oauth_error("invalid_grant", "EXPIRED_AUTH_CODE", "auth code is expired")
    if fields.get("redirect_uri") != code.redirect_uri:
        return oauth_error(
            "invalid_grant", "BAD_REDIRECT_URI", "redirect_uri does not match the authorize call"
        )
    code.used = True  # codes are single-use
    refresh = RefreshToken(
        token=_new_token("rt"), portal_id=code.portal_id, user_id=code.user_id,
        scopes=list(code.scopes),
    )
    sandbox.state.refresh_tokens[refresh.token] = refresh
    return _token_response(sandbox, refresh)


def _refresh(sandbox: Sandbox, fields: dict[str, str]) -> Response:
    refresh = sandbox.state.refresh_tokens.get(fields.get("refresh_token", ""))
    if refresh is None or refresh.revoked:
        return oauth_error(
            "invalid_grant", "BAD_REFRESH_TOKEN", "missing or invalid refresh token"
        )
    return _token_response(sandbox, refresh)


def _new_token(kind: str) -> str:
    return f"{kind}-{secrets.token_urlsafe(36)}"


def _mint_access_token(sandbox: Sandbox, refresh: RefreshToken) -> AccessToken:
    access = AccessToken(
        token=_new_token("at"),
        refresh_token=refresh.token,
        portal_id=refresh.portal_id,
        user_id=refresh.user_id,
        scopes=list(refresh.scopes),
        expires_at=sandbox.clock.unix() + constants.ACCESS_TOKEN_TTL_SECONDS,
    )
    sandbox.state.access_tokens[access.token] = access
    return access


def _token_response(sandbox: Sandbox, refresh: RefreshToken) -> JSONResponse:
    """`AccessTokenResponse` with a new access token, for either grant; the refresh token is
    long-lived and returned unchanged."""
    access = _mint_access_token(sandbox, refresh)
    return JSONResponse({
        "access_token": access.token,
        "refresh_token": access.refresh_token,
        "expires_in": constants.ACCESS_TOKEN_TTL_SECONDS,
        "token_type": "bearer",
        "token_use": "access_token",
        "hub_id": access.portal_id,
        "user_id": access.user_id,
        "scopes": access.scopes,
    })


@router.get("/oauth/v1/access-tokens/{token}")
async def access_token_info(token: str, sandbox: SandboxDep) -> dict[str, Any]:
    """`AccessTokenInfoResponse` (unknown token → 404, expired → 401 EXPIRED_AUTHENTICATION)."""
    if token not in sandbox.state.access_tokens or sandbox.state.access_tokens[token].revoked:
        raise errors.not_found("Token not found")
    access = authenticate(sandbox, token)
    return {
        **_token_info(sandbox, access),
        "app_id": constants.APP_ID,
        "expires_in": expires_in_seconds(sandbox, access),
        "token_type": "access",
        "is_private_distribution": False,
    }


def _token_info(sandbox: Sandbox, token: AccessToken | RefreshToken) -> dict[str, Any]:
    """The fields both token-info answers give: the token, its scopes and its owner."""
    portal = sandbox.state.portals[token.portal_id]
    agent = portal.agent(token.user_id)
    return {
        "token": token.token,
        "user": agent.email if agent else "",
        "hub_domain": portal.domain,
        "scopes": token.scopes,
        "hub_id": portal.id,
        "user_id": token.user_id,
    }


@router.post("/oauth/v3/token/introspect")
@router.post("/oauth/2026-03/token/introspect")
async def introspect(request: Request, sandbox: SandboxDep) -> Response:
    """`TokenInfoResponseBaseIF`: an access token's or a refresh token's details, all in a
    form body (RFC 7662). A token HubSpot issued but no longer honours (expired, revoked)
    answers `active: false` with its details; one it never issued is a 404."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    if form.get("client_id") != constants.CLIENT_ID:
        return oauth_error("invalid_client", "BAD_CLIENT_ID", "missing or unknown client_id")
    if form.get("client_secret") != constants.CLIENT_SECRET:
        return oauth_error("invalid_client", "BAD_CLIENT_SECRET", "client_secret does not match")
    token_text = form.get("token", "")
    access = sandbox.state.access_tokens.get(token_text)
    if access is not None:
        expires_in = expires_in_seconds(sandbox, access)
        return JSONResponse({
            "active": not access.revoked and expires_in > 0,
            **_introspected(sandbox, access, "access_token"),
            "expires_in": expires_in,
            "is_private_distribution": False,
            "signed_access_token": _signed_access_token(access, access.portal_id),
        })
    refresh = sandbox.state.refresh_tokens.get(token_text)
    if refresh is None:
        raise errors.not_found("Token not found")
    return JSONResponse({
        "active": not refresh.revoked,
        **_introspected(sandbox, refresh, "refresh_token"),
    })


def _introspected(
    sandbox: Sandbox, token: AccessToken | RefreshToken, token_use: str
) -> dict[str, Any]:
    """What introspection says of either kind of token."""
    return {
        **_token_info(sandbox, token),
        "token_use": token_use,
        "token_type": "bearer",
        "client_id": constants.CLIENT_ID,
        "app_id": constants.APP_ID,
    }


def _signed_access_token(access: AccessToken, portal_id: int) -> dict[str, Any]:
    """`SignedAccessToken`, required in an access token's introspection: HubSpot's own view of
    the grant. The sandbox signs nothing; the signature fields say so."""
    return {
        "appId": constants.APP_ID,
        "appInstallId": f"sandbox-install-{portal_id}",
        "audience": constants.CLIENT_ID,
        "expiresAt": int(access.expires_at * 1000),
        "hubId": portal_id,
        "hublet": "na1",
        "installingUserId": access.user_id,
        "isPrivateDistribution": False,
        "isServiceAccount": False,
        "isUserLevel": False,
        "newSignature": "sandbox-unsigned",
        "scopeToScopeGroupPks": "",
        "scopes": " ".join(access.scopes),
        "signature": "sandbox-unsigned",
        "trialScopeToScopeGroupPks": "",
        "trialScopes": "",
        "userId": access.user_id,
    }


@router.get("/oauth/v1/refresh-tokens/{token}")
async def refresh_token_info(token: str, sandbox: SandboxDep) -> dict[str, Any]:
    refresh = sandbox.state.refresh_tokens.get(token)
    if refresh is None or refresh.revoked:
        raise errors.not_found("Refresh token not found")
    return {
        **_token_info(sandbox, refresh),
        "client_id": constants.CLIENT_ID,
        "token_type": "refresh",
    }


@router.delete("/oauth/v1/refresh-tokens/{token}", status_code=204)
async def revoke_refresh_token(token: str, sandbox: SandboxDep) -> Response:
    """Revoking the refresh token also kills its access tokens (app uninstalled, R8)."""
    refresh = sandbox.state.refresh_tokens.get(token)
    if refresh is None or refresh.revoked:
        raise errors.not_found("Refresh token not found")
    revoke_refresh(sandbox, refresh)
    return Response(status_code=204)


def revoke_refresh(sandbox: Sandbox, refresh: RefreshToken) -> None:
    refresh.revoked = True
    for access in sandbox.state.access_tokens.values():
        if access.refresh_token == refresh.token:
            access.revoked = True


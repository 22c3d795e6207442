"""Aircall's OAuth flow (§A2): authorize (auto-approved by the sandbox) and token exchange.

At Aircall the authorize page lives on dashboard.aircall.io and the admin clicks "Install";
the sandbox approves at once for the company in `company_id` (default 1, a sandbox extension
standing for "the admin who is logged in"). Tokens are permanent; codes are single-use.
"""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.clock import to_unix_seconds
from whatsapp_helpdesk.sandbox.aircall.routes_api import SandboxDep
from whatsapp_helpdesk.sandbox.aircall.state import AccessToken, AuthorizationCode

router = APIRouter()
_CODE_TTL = timedelta(seconds=constants.AUTHORIZATION_CODE_TTL_SECONDS)


def _error_page(message: str) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Aircall sandbox — authorization error</title></head><body>"
        f"<main><h1>Authorization error</h1><p>{escape(message)}</p></main></body></html>"
    )
    return HTMLResponse(html, status_code=400)


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *extra.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@router.get("/oauth/authorize", response_model=None)
async def authorize(request: Request, sandbox: SandboxDep) -> Response:
    params = request.query_params
    if params.get("client_id") != constants.OAUTH_CLIENT_ID:
        return _error_page("Unknown client_id.")
    redirect_uri = params.get("redirect_uri", "")
    if urlsplit(redirect_uri).scheme not in ("http", "https") or not urlsplit(redirect_uri).netloc:
        return _error_page("redirect_uri must be an absolute http(s) URL.")
    if params.get("response_type") != "code":
        return _error_page("response_type must be code.")
    if params.get("scope") != constants.OAUTH_SCOPE:
        return _error_page(f"scope must be {constants.OAUTH_SCOPE}.")
    raw_company = params.get("company_id", str(constants.DEFAULT_OAUTH_COMPANY_ID))
    if not raw_company.isdigit() or int(raw_company) not in sandbox.state.companies:
        return _error_page("Unknown company_id.")
    code = AuthorizationCode(
        code=secrets.token_urlsafe(24),
        client_id=constants.OAUTH_CLIENT_ID,
        redirect_uri=redirect_uri,
        company_id=int(raw_company),
        expires_at=sandbox.clock.now() + _CODE_TTL,
    )
    sandbox.state.authorization_codes[code.code] = code
    extra = {"code": code.code}
    if "state" in params:
        extra["state"] = params["state"]
    return RedirectResponse(_with_query(redirect_uri, extra), status_code=302)


def _token_error(status: int, error: str, troubleshoot: str) -> JSONResponse:
    return JSONResponse({"error": error, "troubleshoot": troubleshoot}, status_code=status)


async def _token_request_fields(request: Request) -> dict[str, Any] | None:
    """JSON body as documented (§A2); form encoding accepted too, as OAuth libraries send it."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@router.post("/v1/oauth/token")
async def token(request: Request, sandbox: SandboxDep) -> JSONResponse:
    fields = await _token_request_fields(request)
    if fields is None:
        return _token_error(400, "invalid_request", "The body must be a JSON object.")
    client_ok = hmac.compare_digest(
        str(fields.get("client_id", "")).encode(), constants.OAUTH_CLIENT_ID.encode()
    ) and hmac.compare_digest(
        str(fields.get("client_secret", "")).encode(), constants.OAUTH_CLIENT_SECRET.encode()
    )
    if not client_ok:
        return _token_error(401, "invalid_client", "Unknown client_id or wrong client_secret.")
    if fields.get("grant_type") != "authorization_code":
        return _token_error(
            400, "unsupported_grant_type", "Only grant_type=authorization_code is supported."
        )
    code = sandbox.state.authorization_codes.get(str(fields.get("code", "")))
    now = sandbox.clock.now()
    if code is None or code.used or now >= code.expires_at:
        return _token_error(
            400, "invalid_grant", "The authorization code is unknown, expired or already used."
        )
    if fields.get("redirect_uri") != code.redirect_uri:
        return _token_error(
            400, "invalid_grant", "redirect_uri does not match the one used to authorize."
        )
    code.used = True
    issued = AccessToken(
        token=secrets.token_hex(20), company_id=code.company_id,
        client_id=code.client_id, created_at=now,
    )
    sandbox.state.access_tokens[issued.token] = issued
    integration = sandbox.state.integrations[code.company_id]
    integration.installed, integration.active = True, True
    return JSONResponse(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "scope": constants.OAUTH_SCOPE,
            "created_at": to_unix_seconds(now),
        }
    )

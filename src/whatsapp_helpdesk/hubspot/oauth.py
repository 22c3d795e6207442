"""HubSpot OAuth for a public app (reference hubspot §6): consent URL, code exchange,
refresh, and what an access token is worth (portal id, granted scopes).

Token and introspection paths come from `api_paths` (R50): `/oauth/2026-03/...` or
`/oauth/v3/...`, same shapes in both. The v1 endpoints (`/oauth/v1/token`,
`GET /oauth/v1/access-tokens/{token}`) are deprecated for 16 Feb 2027 (§6) and not used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Unpack
from urllib.parse import quote, urlencode

import httpx

from whatsapp_helpdesk.errors import AuthExpired, AuthRevoked, DeliveryError, Permanent
from whatsapp_helpdesk.http_transport import (
    OAuthApp,
    OAuthAppClient,
    body_excerpt,
    json_object,
)
from whatsapp_helpdesk.hubspot.api_paths import DEFAULT_API_VERSION, hubspot_paths
from whatsapp_helpdesk.hubspot.client import (
    DEFAULT_API_BASE,
    SERVICE,
    hubspot_error,
    required_text,
    response_object,
)

DEFAULT_AUTH_BASE: Final = "https://app.hubspot.com"
AUTHORIZE_PATH: Final = "/oauth/authorize"  # the consent page is not versioned

# The scopes the service asks every portal for — the one list (reference §6; R3 c, R8).
CUSTOM_CHANNEL_SCOPES: Final = (
    "conversations.custom_channels.read",
    "conversations.custom_channels.write",
)
HUBSPOT_SCOPES: Final = (
    *CUSTOM_CHANNEL_SCOPES,
    "conversations.read",  # list inboxes to bind the channel account (§2.1)
    "conversations.write",  # thread status (§8)
    "crm.objects.contacts.read",  # find the sender's contact (R30)
    "crm.objects.contacts.write",  # the contact's company property (R31), email capture
    "tickets",  # native tickets (R35)
    "files",  # upload inbound media to the File Manager, FILE attachments (R51)
)

# HubSpot's access tokens live 30 minutes; `expires_in` is always given, this is only the
# fallback should an answer omit it (§6).
DEFAULT_EXPIRES_IN_SECONDS: Final = 1800


# Builds the error for an `invalid_grant` answer: (HubSpot's words, status, raw body).
BadGrant = Callable[[str, int, str], DeliveryError]


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    scopes: tuple[str, ...] | None = None  # when the token answer lists them
    hub_id: str | None = None  # the portal id, when the token answer gives it


@dataclass(frozen=True)
class TokenInfo:
    hub_id: str  # the portal id
    scopes: tuple[str, ...]
    app_id: str | None
    user: str | None  # the e-mail of the user who authorised
    expires_in: int | None


def scopes_missing(granted: Sequence[str], required: Sequence[str] = HUBSPOT_SCOPES) -> list[str]:
    """The `required` scopes that `granted` lacks, in `required`'s order (R3 c, R8)."""
    have = set(granted)
    return [scope for scope in required if scope not in have]


class HubSpotOAuth(OAuthAppClient):
    service = SERVICE
    default_api_base = DEFAULT_API_BASE
    default_auth_base = DEFAULT_AUTH_BASE

    def __init__(self, *, api_version: str = DEFAULT_API_VERSION, **app: Unpack[OAuthApp]):
        super().__init__(**app)
        self._paths = hubspot_paths(api_version)

    def authorize_url(
        self,
        redirect_uri: str,
        state: str,
        scopes: Sequence[str] = HUBSPOT_SCOPES,
        optional_scopes: Sequence[str] = (),
    ) -> str:
        """The consent page URL; scopes are space-separated (§6)."""
        query: dict[str, str] = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
        }
        if optional_scopes:
            query["optional_scope"] = " ".join(optional_scopes)
        query["state"] = state
        return f"{self._auth_base}{AUTHORIZE_PATH}?{urlencode(query, quote_via=quote)}"

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Trade the consent page's `code` for tokens. A bad or used code is `Permanent`."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "redirect_uri": redirect_uri,
                "code": code,
            },
            operation="exchange the authorization code",
            bad_grant=lambda message, status, detail: Permanent(
                f"{SERVICE} refused the authorization code ({message}). "
                "Start the connection again.", status_code=status, detail=detail,
            ),
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token. A refresh token HubSpot no longer honours is `AuthRevoked`:
        the installation must authorise again (R8)."""
        return await self._token_request(
            {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": refresh_token,
            },
            operation="refresh the access token",
            bad_grant=lambda message, status, detail: AuthRevoked(
                f"{SERVICE} no longer accepts this installation's refresh token ({message}). "
                "Re-authorise the HubSpot installation.", status_code=status, detail=detail,
            ),
            previous_refresh_token=refresh_token,
        )

    async def token_info(self, access_token: str) -> TokenInfo:
        """The portal (`hub_id`) and the scopes an access token carries.

        Any 4xx here, or an answer saying `active: false`, means HubSpot does not know this
        access token (any more): that is `AuthExpired`, since a refresh is the remedy; if the
        refresh fails, that is revoked.
        """
        operation = "read the access token's details"
        # Introspection (2026-03 and v3 alike) is a form POST with the app's credentials, the
        # token in the body and never in the URL (RFC 7662); v1 was GET with the token as a
        # path segment. Its answer adds `active`, `client_id` and `token_use` to v1's fields.
        response = await self._post_for_token(
            self._paths.oauth_introspect, operation=operation, errors=_introspection_error,
            data={
                "token": access_token,
                "token_type_hint": "access_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
        )
        data = response_object(response, operation, reveal_body=False)
        if data.get("active") is False or data.get("token_use", "access_token") != "access_token":
            raise AuthExpired(
                f"{SERVICE} says the access token is no longer active; refresh it.",
                status_code=response.status_code,
            )
        return TokenInfo(
            hub_id=required_text(data, "hub_id", operation),
            scopes=_scopes(data.get("scopes")) or (),
            app_id=None if data.get("app_id") is None else str(data["app_id"]),
            user=None if data.get("user") is None else str(data["user"]),
            expires_in=_int_or_none(data.get("expires_in")),
        )

    async def _token_request(
        self,
        form: Mapping[str, str],
        *,
        operation: str,
        bad_grant: BadGrant,
        previous_refresh_token: str | None = None,
    ) -> TokenSet:
        response = await self._post_for_token(
            self._paths.oauth_token, operation=operation,
            errors=functools.partial(_token_error, bad_grant=bad_grant),
            data=form,  # application/x-www-form-urlencoded (§6)
        )
        data = response_object(response, operation, reveal_body=False)
        refresh_token = data.get("refresh_token") or previous_refresh_token
        if not refresh_token:
            raise Permanent(f"{SERVICE} answered '{operation}' without a refresh token.")
        return TokenSet(
            access_token=required_text(data, "access_token", operation),
            refresh_token=str(refresh_token),
            expires_at=self._clock() + timedelta(
                seconds=_int_or_none(data.get("expires_in")) or DEFAULT_EXPIRES_IN_SECONDS
            ),
            scopes=_scopes(data.get("scopes") if "scopes" in data else data.get("scope")),
            hub_id=None if data.get("hub_id") is None else str(data["hub_id"]),
        )


def _introspection_error(
    response: httpx.Response, *, operation: str, now: datetime
) -> DeliveryError:
    """Any 4xx but a 429 from the introspection endpoint: HubSpot does not know the access
    token (any more), `AuthExpired` (a refresh is the remedy); else as any API error."""
    error = hubspot_error(response, operation=operation, now=now)
    if 400 <= response.status_code < 500 and response.status_code != 429:
        return AuthExpired(
            f"{SERVICE} does not recognise the access token any more; refresh it.",
            status_code=response.status_code, detail=error.detail,
        )
    return error


def _token_error(
    response: httpx.Response, *, operation: str, now: datetime, bad_grant: BadGrant
) -> DeliveryError:
    """OAuth errors are RFC 6749 style: `{error: "invalid_grant", error_description,
    status: "BAD_REFRESH_TOKEN", message}` (§6). Everything else maps as any API error."""
    body = json_object(response)
    if 400 <= response.status_code < 500 and (
        body.get("error") == "invalid_grant"
        or body.get("status") in ("BAD_REFRESH_TOKEN", "BAD_AUTH_CODE")
    ):
        message = str(body.get("error_description") or body.get("message") or "invalid_grant")
        return bad_grant(message, response.status_code, body_excerpt(response))
    return hubspot_error(response, operation=operation, now=now)


def _scopes(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return tuple(s for s in value.split() if s)
    if isinstance(value, list):
        return tuple(str(s) for s in value)
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None

"""Aircall's Public API as the bridge calls it (reference aircall §A1–§A8).

Written against `shared/reference/aircall-whatsapp.md`, never against the sandbox, so the same
code talks to `https://api.aircall.io`.

- `AircallOAuth`: the consent URL and the code exchange of a technology partner (§A2).
- `AircallClient`: one company's API with an OAuth token or a customer's API key: company,
  integration, numbers and their WhatsApp/SMS status (R3, R7), webhooks (R11), sending
  WhatsApp replies (R21) and SMS.

Every answer other than a 2xx becomes an error of `whatsapp_helpdesk.errors` (`aircall_error`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx

from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE
from whatsapp_helpdesk.errors import (
    AuthRevoked,
    DeliveryError,
    Permanent,
    TemplateRefused,
    WindowClosed,
)
from whatsapp_helpdesk.http_transport import (
    Clock,
    OAuthAppClient,
    ProviderApi,
    aircall_retry_after,
    body_excerpt,
    expect_json_object,
    json_object,
    missing_field,
    system_clock,
    temporary_error,
)
from whatsapp_helpdesk.pacing import Pacer

SERVICE: Final = "Aircall"
DEFAULT_API_BASE: Final = "https://api.aircall.io"
DEFAULT_AUTH_BASE: Final = "https://dashboard.aircall.io"
OAUTH_SCOPE: Final = "public_api"  # the only scope Aircall has (§A2)

# --- Paths (§A2, §A4–§A8) --------------------------------------------------------------------
OAUTH_AUTHORIZE_PATH: Final = "/oauth/authorize"
OAUTH_TOKEN_PATH: Final = "/v1/oauth/token"
PING_PATH: Final = "/v1/ping"
COMPANY_PATH: Final = "/v1/company"
INTEGRATION_PATH: Final = "/v1/integrations/me"
NUMBERS_PATH: Final = "/v1/numbers"
WEBHOOKS_PATH: Final = "/v1/webhooks"
TEMPLATES_PAGE_LIMIT: Final = 50
WHATSAPP_NATIVE_SEND_PATH: Final = "/v1/messages/send/whatsapp/native"  # agent conversation


def number_path(number_id: int | str) -> str:
    return f"{NUMBERS_PATH}/{_segment(number_id)}"


PER_PAGE: Final = 50  # Aircall's maximum page size (§A1)
MAX_PAGES: Final = 200  # a `next_page_link` that never ends must not loop forever

# One wording for the closed window, whoever notices it first (R24).


# --- Credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BearerToken:
    """An OAuth access token of a technology partner app (§A2); permanent, no refresh."""

    token: str = field(repr=False)

    def authorization(self) -> str:
        return f"Bearer {self.token}"


@dataclass(frozen=True)
class ApiKey:
    """A customer's own API key: `Authorization: Basic base64(api_id:api_token)` (§A2)."""

    api_id: str
    api_token: str = field(repr=False)

    def authorization(self) -> str:
        pair = f"{self.api_id}:{self.api_token}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"


AircallCredentials = BearerToken | ApiKey


# --- Results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AircallToken:
    access_token: str = field(repr=False)
    token_type: str | None
    scope: str | None


@dataclass(frozen=True)
class AircallCompany:
    name: str
    users_count: int | None
    numbers_count: int | None


@dataclass(frozen=True)
class AircallIntegration:
    name: str | None
    custom_name: str | None
    company_id: int | None
    status: str | None
    active: bool
    number_ids: tuple[int, ...]  # numbers the admin connected to this integration (§A4)
    numbers_count: int | None


@dataclass(frozen=True)
class AircallNumber:
    id: int
    name: str
    digits: str  # display form with spaces, e.g. "+33 1 76 11 11 11" — normalise before use
    country: str | None
    time_zone: str | None


@dataclass(frozen=True)
class NumbersPage:
    numbers: list[AircallNumber]
    total: int | None  # meta.total, when given
    has_next: bool


@dataclass(frozen=True)
class WhatsAppTemplate:
    """One item of `GET /v1/numbers/:id/templates` (§A6). The documented item carries no
    body; `body` is kept when an answer does carry one."""

    id: str
    name: str
    category: str
    status: str
    language: str
    body: str | None = None


@dataclass(frozen=True)
class WhatsAppStatus:
    """`GET /v1/numbers/:id/whatsapp_status`, camelCase in Aircall's answer (§A5)."""

    status: str | None  # e.g. "ONLINE"
    can_send_message: bool
    waba_id: str | None
    messaging_limit_tier: str | None
    quality_rating: str | None
    business_verification_status: str | None


@dataclass(frozen=True)
class SmsRegistration:
    """`GET /v1/numbers/:id/registration_status`. The shape is unknown (§A5): the body (or
    its `registration_status` envelope) is kept whole; `status` is read if present."""

    status: str | None
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class CreatedWebhook:
    webhook_id: str
    token: str = field(repr=False)  # the shared secret of every event; store its digest only


@dataclass(frozen=True)
class WebhookRegistration:
    """A webhook as Aircall has it now (§A8.1); its token is deliberately not kept."""

    webhook_id: str
    active: bool
    events: tuple[str, ...]
    url: str


# --- Error mapping ------------------------------------------------------------------------------

# How Aircall relays Meta's 131047 refusal (customer-service window closed) is unknown
# (§A6, §E1: a synchronous 4xx, a later failed status, or both). We read a 4xx whose body
# carries Meta's code 131047, its title "Re-engagement message" or the words "24 hours" as
# that refusal. This pattern and `is_window_closed_refusal` are the only place deciding it.
_WINDOW_CLOSED = re.compile(r"131047|re-?engagement|24 hours", re.IGNORECASE)


def is_window_closed_refusal(status_code: int, body_text: str) -> bool:
    return 400 <= status_code < 500 and bool(_WINDOW_CLOSED.search(body_text))


# How Aircall relays Meta's template refusals is unknown as well (§A6, §B5). We read a 4xx
# naming Meta's 132xxx template codes (132000 parameter mismatch, 132001 missing or not
# approved, 132005/132007 translated text too long / policy, 132012 parameter format,
# 132015/132016 paused / disabled) as a template refusal, keeping the code for the agent's
# words (domain/reengagement.py).
_TEMPLATE_CODE = re.compile(r"\b(1320\d\d)\b")


def template_refusal_code(status_code: int, body_text: str) -> int | None:
    if not 400 <= status_code < 500:
        return None
    found = _TEMPLATE_CODE.search(body_text)
    return int(found.group(1)) if found else None


def aircall_error(response: httpx.Response, *, operation: str, now: datetime) -> DeliveryError:
    """The error for a non-2xx Aircall answer.

    429 → RateLimited (`X-AircallApi-Reset`); 5xx → Retryable; 401 (no credentials) and 403
    (bad credentials, §A1) → AuthRevoked — Aircall tokens never expire, so nothing to
    refresh; a window refusal → WindowClosed; any other status → Permanent.
    """
    status = response.status_code
    detail = body_excerpt(response)
    body = json_object(response)
    temporary = temporary_error(
        response, service=SERVICE, operation=operation,
        retry_after=lambda: aircall_retry_after(response.headers, now),
    )
    if temporary is not None:
        return temporary
    if status in (401, 403):
        return AuthRevoked(
            f"{SERVICE} refused our credentials while trying to {operation} ({status}: "
            f"{_reason(body, response)}). Connect the Aircall account again.",
            status_code=status, detail=detail,
        )
    if is_window_closed_refusal(status, detail):
        return WindowClosed(WINDOW_CLOSED_MESSAGE, status_code=status, detail=detail)
    template_code = template_refusal_code(status, detail)
    if template_code is not None:
        return TemplateRefused(
            f"{SERVICE} refused to {operation} ({status}): {_reason(body, response)}",
            code=template_code, status_code=status, detail=detail,
        )
    return Permanent(
        f"{SERVICE} refused to {operation} ({status}): {_reason(body, response)}",
        status_code=status, detail=detail,
    )


def _reason(body: Mapping[str, Any], response: httpx.Response) -> str:
    """Aircall's words: `{"message"}` or `{"error", "troubleshoot"}` (§A1)."""
    parts = [
        str(body[key]).strip()
        for key in ("message", "error", "troubleshoot")
        if isinstance(body.get(key), str) and str(body[key]).strip()
    ]
    return " — ".join(parts) if parts else (response.reason_phrase or "no reason given")


# --- Requests ------------------------------------------------------------------------------------


def _object(response: httpx.Response, operation: str, *, reveal_body: bool = True
            ) -> dict[str, Any]:
    """A 2xx body that must be a JSON object (see `http_transport.expect_json_object`)."""
    return expect_json_object(response, service=SERVICE, operation=operation,
                              reveal_body=reveal_body)


def _member(data: Mapping[str, Any], key: str, operation: str) -> dict[str, Any]:
    """An envelope's content (`{"company": {...}}`); its absence means the contract changed."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise missing_field(SERVICE, operation, key, data)
    return value


def _required(data: Mapping[str, Any], key: str, operation: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise missing_field(SERVICE, operation, key, data)
    return value


def _segment(value: int | str) -> str:
    return quote(str(value), safe="")


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class AircallOAuth(OAuthAppClient):
    """OAuth for a technology partner app (§A2): one scope, permanent tokens, no refresh."""

    service = SERVICE
    default_api_base = DEFAULT_API_BASE
    default_auth_base = DEFAULT_AUTH_BASE

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": OAUTH_SCOPE,
            "state": state,
        }
        return f"{self._auth_base}{OAUTH_AUTHORIZE_PATH}?{urlencode(query, quote_via=quote)}"

    async def exchange_code(self, code: str, redirect_uri: str) -> AircallToken:
        """Trade the consent page's `code` for a permanent access token (JSON body, §A2).
        A bad or used code is `Permanent` (400 invalid_grant); bad app credentials are
        `AuthRevoked`."""
        operation = "exchange the authorization code"
        response = await self._post_for_token(
            OAUTH_TOKEN_PATH, operation=operation, errors=aircall_error,
            json={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
        )
        data = _object(response, operation, reveal_body=False)
        return AircallToken(
            access_token=str(_required(data, "access_token", operation)),
            token_type=_str(data.get("token_type")),
            scope=_str(data.get("scope")),
        )


class AircallClient(ProviderApi):
    """One Aircall company, through an OAuth token or a customer API key."""

    def __init__(self, credentials: AircallCredentials, *, http: httpx.AsyncClient,
                 api_base: str = DEFAULT_API_BASE, clock: Clock = system_clock,
                 pacer: Pacer | None = None):
        super().__init__(service=SERVICE, http=http, api_base=api_base, errors=aircall_error,
                         headers={"Authorization": credentials.authorization()},
                         clock=clock, pacer=pacer)
        self._credentials = credentials

    def __repr__(self) -> str:
        kind = "oauth" if isinstance(self._credentials, BearerToken) else "api_key"
        return f"AircallClient({kind}, api_base={self._api_base!r})"

    async def _request_unless_missing(
        self, method: str, path: str, *, operation: str
    ) -> httpx.Response | None:
        """Like `_request`, but a 404 answers None (for "this number has none")."""
        try:
            return await self._request(method, path, operation=operation)
        except DeliveryError as exc:
            if exc.status_code == 404:
                return None
            raise

    async def _get_object_unless_missing(self, path: str, operation: str
                                         ) -> dict[str, Any] | None:
        """A GET's JSON object, or None on 404 (see `_request_unless_missing`)."""
        response = await self._request_unless_missing("GET", path, operation=operation)
        return None if response is None else _object(response, operation)

    async def _get_object(self, path: str, *, operation: str,
                          params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = await self._request("GET", path, operation=operation, params=params)
        return _object(response, operation)

    async def ping(self) -> None:
        """Cheapest credential check (§A1)."""
        await self._request("GET", PING_PATH, operation="check the credentials")

    async def get_company(self) -> AircallCompany:
        operation = "read the company"
        company = _member(await self._get_object(COMPANY_PATH, operation=operation),
                          "company", operation)
        return AircallCompany(
            name=str(company.get("name") or ""),
            users_count=_int(company.get("users_count")),
            numbers_count=_int(company.get("numbers_count")),
        )

    async def get_integration(self) -> AircallIntegration:
        operation = "read the integration"
        data = _member(await self._get_object(INTEGRATION_PATH, operation=operation),
                       "integration", operation)
        raw_ids = data.get("number_ids")
        number_ids = tuple(
            i for i in (_int(v) for v in (raw_ids if isinstance(raw_ids, list) else []))
            if i is not None
        )
        return AircallIntegration(
            name=_str(data.get("name")),
            custom_name=_str(data.get("custom_name")),
            company_id=_int(data.get("company_id")),
            status=_str(data.get("status")),
            active=bool(data.get("active", False)),
            number_ids=number_ids,
            numbers_count=_int(data.get("numbers_count")),
        )

    async def list_numbers(self) -> list[AircallNumber]:
        """Every number of the company, page by page (`per_page` 50, the maximum)."""
        numbers: list[AircallNumber] = []
        for page in range(1, MAX_PAGES + 1):
            chunk = await self.list_numbers_page(page)
            numbers += chunk.numbers
            if not chunk.has_next:
                break
        return numbers

    async def list_numbers_page(self, page: int) -> NumbersPage:
        """One page of the company's numbers (1-based, `per_page` 50), with the total that
        `meta.total` announces when Aircall gives it (§A1)."""
        operation = "list the numbers"
        data = await self._get_object(
            NUMBERS_PATH, operation=operation, params={"page": page, "per_page": PER_PAGE}
        )
        chunk = [n for n in data.get("numbers") or [] if isinstance(n, dict)]
        meta = data.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        return NumbersPage(
            numbers=[_number(n, operation) for n in chunk],
            total=_int(meta.get("total")),
            has_next=bool(chunk) and bool(meta.get("next_page_link")),
        )

    async def get_number(self, number_id: int) -> AircallNumber | None:
        """The number, or None when the company no longer has it (404)."""
        operation = "read the number"
        data = await self._get_object_unless_missing(number_path(number_id), operation)
        if data is None:
            return None
        return _number(_member(data, "number", operation), operation)

    async def get_whatsapp_status(self, number_id: int) -> WhatsAppStatus | None:
        """The number's WhatsApp line, or None when it has none.

        What Aircall answers for a number without WhatsApp is unknown (§A5); we assume a
        404, and read it as "no WhatsApp" (R3 a).
        """
        operation = "read the number's WhatsApp status"
        data = await self._get_object_unless_missing(
            f"{number_path(number_id)}/whatsapp_status", operation)
        if data is None:
            return None
        return WhatsAppStatus(
            status=_str(data.get("status")),
            can_send_message=data.get("canSendMessage") is True,
            waba_id=_str(data.get("wabaId")),
            messaging_limit_tier=_str(data.get("messagingLimitTier")),
            quality_rating=_str(data.get("qualityRating")),
            business_verification_status=_str(data.get("businessVerificationStatus")),
        )

    async def get_sms_registration(self, number_id: int) -> SmsRegistration | None:
        """The number's SMS registration, or None on 404 (no SMS registration) — an
        assumption like `get_whatsapp_status`: the endpoint's answers are unknown (§A5)."""
        operation = "read the number's SMS registration"
        data = await self._get_object_unless_missing(
            f"{number_path(number_id)}/registration_status", operation)
        if data is None:
            return None
        inner = data.get("registration_status")
        content = inner if isinstance(inner, dict) else data
        return SmsRegistration(status=_str(content.get("status")), raw=content)

    async def create_webhook(
        self, url: str, events: Sequence[str], custom_name: str
    ) -> CreatedWebhook:
        """Subscribe `url` to `events` (§A8.1). An empty list would subscribe to *every*
        event, so it is refused here."""
        if not events:
            raise ValueError("give the events to subscribe to (empty means all events)")
        operation = "create the webhook"
        response = await self._request(
            "POST", WEBHOOKS_PATH, operation=operation,
            json={"url": url, "custom_name": custom_name, "events": list(events)},
        )
        webhook = _member(_object(response, operation), "webhook", operation)
        return CreatedWebhook(
            webhook_id=str(_required(webhook, "webhook_id", operation)),
            token=str(_required(webhook, "token", operation)),
        )

    async def get_webhook(self, webhook_id: str) -> WebhookRegistration | None:
        """The webhook as Aircall has it, or None when it no longer exists (404)."""
        operation = "read the webhook"
        data = await self._get_object_unless_missing(
            f"{WEBHOOKS_PATH}/{_segment(webhook_id)}", operation)
        if data is None:
            return None
        return _webhook_registration(_member(data, "webhook", operation), operation)

    async def reactivate_webhook(
        self, webhook_id: str, events: Sequence[str]
    ) -> WebhookRegistration:
        """Re-enable a webhook Aircall disabled after failed deliveries (§A8.5). The events
        are always sent: an update without `events` resubscribes to every event."""
        if not events:
            raise ValueError("give the events to subscribe to (empty means all events)")
        operation = "re-enable the webhook"
        response = await self._request(
            "PUT", f"{WEBHOOKS_PATH}/{_segment(webhook_id)}", operation=operation,
            json={"active": True, "events": list(events)},
        )
        return _webhook_registration(
            _member(_object(response, operation), "webhook", operation), operation)

    async def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook. Already gone (404) is done, not an error."""
        await self._request_unless_missing(
            "DELETE", f"{WEBHOOKS_PATH}/{_segment(webhook_id)}", operation="delete the webhook"
        )

    async def send_whatsapp_text(
        self, line_id: int, external_number_e164: str, text: str
    ) -> str:
        """Send a free-form WhatsApp text into the number's agent conversation (§A6) and
        return Aircall's message id (the answer is the Message itself, no envelope).
        Outside the 24 h window Aircall refuses: `WindowClosed`."""
        operation = "send the WhatsApp message"
        response = await self._request(
            "POST", WHATSAPP_NATIVE_SEND_PATH, operation=operation,
            json={"lineId": int(line_id), "externalNumber": external_number_e164, "text": text},
        )
        return str(_required(_object(response, operation), "id", operation))

    async def list_whatsapp_templates(
        self, number_id: int, *, status: str | None = "APPROVED"
    ) -> list[WhatsAppTemplate]:
        """The number's WhatsApp templates, following the cursor (`token` → `nextToken`,
        §A6) until Aircall gives no next token."""
        operation = "list the number's WhatsApp templates"
        found: list[WhatsAppTemplate] = []
        token: Any = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": TEMPLATES_PAGE_LIMIT}
            if status:
                params["status"] = status
            if token is not None:
                params["token"] = token
            data = await self._get_object(
                f"{number_path(number_id)}/templates", operation=operation, params=params
            )
            items = [t for t in data.get("templates") or [] if isinstance(t, dict)]
            found += [_template(t, operation) for t in items]
            page_info = data.get("pageInfo")
            next_token = page_info.get("nextToken") if isinstance(page_info, dict) else None
            # A cursor that does not move would loop: stop there as at the end.
            if not items or next_token in (None, "") or next_token == token:
                break
            token = next_token
        return found

    async def send_whatsapp_template(
        self, line_id: int, external_number_e164: str, template_id: str,
        values: Sequence[str],
    ) -> str:
        """Send an approved template into the number's agent conversation with
        `templateParams` instead of `text` (§A6); `values` fill `{{1}}`, `{{2}}`… in order.
        A refusal naming a template code raises `TemplateRefused`."""
        operation = "send the WhatsApp template"
        params = {
            "id": str(template_id),
            "body": [{"key": f"{{{{{i}}}}}", "value": v} for i, v in enumerate(values, 1)],
        }
        response = await self._request(
            "POST", WHATSAPP_NATIVE_SEND_PATH, operation=operation,
            json={"lineId": int(line_id), "externalNumber": external_number_e164,
                  "templateParams": params},
        )
        return str(_required(_object(response, operation), "id", operation))

    async def send_sms(self, number_id: int, to: str, body: str) -> str:
        """Send an SMS into the number's agent conversation (§A6); returns the message id."""
        operation = "send the SMS"
        response = await self._request(
            "POST", f"{number_path(number_id)}/messages/native/send", operation=operation,
            json={"to": to, "body": body},
        )
        return str(_required(_object(response, operation), "id", operation))


def _webhook_registration(data: Mapping[str, Any], operation: str) -> WebhookRegistration:
    events = data.get("events")
    return WebhookRegistration(
        webhook_id=str(_required(data, "webhook_id", operation)),
        active=data.get("active") is True,
        events=tuple(str(e) for e in events) if isinstance(events, list) else (),
        url=str(data.get("url") or ""),
    )


def _template(data: Mapping[str, Any], operation: str) -> WhatsAppTemplate:
    body = data.get("body") or data.get("content") or data.get("text")
    return WhatsAppTemplate(
        id=str(_required(data, "id", operation)),
        name=str(data.get("name") or ""),
        category=str(data.get("category") or ""),
        status=str(data.get("status") or ""),
        language=str(data.get("language") or ""),
        body=body if isinstance(body, str) and body.strip() else None,
    )


def _number(data: Mapping[str, Any], operation: str) -> AircallNumber:
    number_id = _int(_required(data, "id", operation))
    if number_id is None:
        raise Permanent(f"{SERVICE} answered '{operation}' with a non-numeric number id.")
    return AircallNumber(
        id=number_id,
        name=str(data.get("name") or ""),
        digits=str(data.get("digits") or ""),
        country=_str(data.get("country")),
        time_zone=_str(data.get("time_zone")),
    )

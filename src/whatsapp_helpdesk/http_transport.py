"""What the HubSpot and Aircall clients share about talking HTTP (R44).

- `ProviderApi`: the one request path of both API clients: the request built with the
  client's fixed headers and query, paced (R44), sent (`call`), a non-2xx answer mapped to an
  error by the provider's own mapper, a 429 that comes back anyway holding the pacer off.
  Each client keeps only what is its provider's own: credentials, paths, error mapping.
- `send`: one request through an injected `httpx.AsyncClient`, with every transport failure
  (timeout, refused connection, dropped connection…) turned into the error tree of
  `whatsapp_helpdesk.errors`.
- `hubspot_retry_after` / `aircall_retry_after`: how long a 429 asks us to wait, read from
  each provider's headers, with a sane default when they say nothing.
- `json_body` / `body_excerpt`: read an answer without ever trusting it to be JSON.

Messages built here name the provider and the operation ("HubSpot: publish message"), never
the URL: some URLs carry secrets (`hapikey`, an access token in a path).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NotRequired, TypedDict

import httpx

from whatsapp_helpdesk.errors import DeliveryError, Permanent, RateLimited, Retryable
from whatsapp_helpdesk.pacing import Pacer

Clock = Callable[[], datetime]
# A provider's mapping of a non-2xx answer: `(response, *, operation, now) -> DeliveryError`.
ErrorMapper = Callable[..., DeliveryError]

# HubSpot's burst limit is a rolling 10-second window (reference hubspot §7): waiting one
# window always frees room.
HUBSPOT_DEFAULT_RETRY_AFTER = 10.0
# HubSpot's daily limit resets at midnight in the portal's time zone, which the answer does
# not give (§7); retry hourly rather than hammer a closed door.
HUBSPOT_DAILY_RETRY_AFTER = 3600.0
# Aircall's limit is per minute and per company (reference aircall §A3).
AIRCALL_DEFAULT_RETRY_AFTER = 60.0
# Bounds for any wait a provider asks for: at least one second (a reset "now" or in the past
# still means "not yet"), at most an hour (a wild header must not park a message for days).
MIN_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 3600.0

# How much of an answer's body an error keeps in `detail` (the dashboard shows it).
DETAIL_LIMIT = 4000


def system_clock() -> datetime:
    return datetime.now(UTC)


class OAuthApp(TypedDict):
    """`OAuthAppClient`'s arguments, for a subclass that adds its own (`**app: Unpack[...]`)."""

    client_id: str
    client_secret: str
    http: httpx.AsyncClient
    api_base: NotRequired[str | None]
    auth_base: NotRequired[str | None]
    clock: NotRequired[Clock]


class OAuthAppClient:
    """What an OAuth client of one of our provider apps holds: the app's id and secret, the
    HTTP client, the API and consent-page bases, the clock. Aircall's and HubSpot's OAuth
    clients share it; each names its own default bases."""

    service: str
    default_api_base: str
    default_auth_base: str

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient,
        api_base: str | None = None,
        auth_base: str | None = None,
        clock: Clock = system_clock,
    ):
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._api_base = (self.default_api_base if api_base is None else api_base).rstrip("/")
        self._auth_base = (self.default_auth_base if auth_base is None
                           else auth_base).rstrip("/")
        self._clock = clock

    def __repr__(self) -> str:
        # The secret never appears: a client may end up in a log line.
        return (f"{type(self).__name__}(client_id={self._client_id!r}, "
                f"api_base={self._api_base!r})")

    async def _post_for_token(
        self, path: str, *, operation: str, errors: ErrorMapper, json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A POST to one of the app's token endpoints (not paced: it spends no account's
        budget); the 2xx answer, or `errors`' mapping of another. The answer carries tokens:
        read it with `reveal_body=False`."""
        request = self._http.build_request(
            "POST", self._api_base + path, json=json, data=data,
            headers={"Accept": "application/json"},
        )
        return await call(self._http, request, service=self.service, operation=operation,
                          errors=errors, clock=self._clock)


class ProviderApi:
    """One account of a provider's API, as our clients call it: the request path they share.

    The headers (`Accept` and the credentials) and the query every call carries (`params`,
    e.g. HubSpot's developer key) are fixed when the client is made, so a call builds no
    dict for them. `errors` maps a non-2xx answer; a call may name another (`_request`'s
    `errors`) for an endpoint whose refusals mean more (HubSpot's staging token)."""

    def __init__(self, *, service: str, http: httpx.AsyncClient, api_base: str,
                 errors: ErrorMapper, headers: Mapping[str, str],
                 params: Mapping[str, str] | None = None, clock: Clock = system_clock,
                 pacer: Pacer | None = None):
        self._service = service
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._errors = errors
        self._headers = {"Accept": "application/json", **headers}
        self._params = dict(params) if params else None
        self._clock = clock
        self._pacer = pacer

    async def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        errors: ErrorMapper | None = None,
    ) -> httpx.Response:
        """`method` on `path` below the API base; the 2xx answer, or the mapped error."""
        if self._params is not None:
            params = {**self._params, **params} if params else self._params
        request = self._http.build_request(
            method, parsed_url(self._api_base + path), params=params, json=json,
            headers=self._headers,
        )
        return await call(self._http, request, service=self._service, operation=operation,
                          errors=errors or self._errors, clock=self._clock, pacer=self._pacer)


async def call(
    http: httpx.AsyncClient, request: httpx.Request, *, service: str, operation: str,
    errors: ErrorMapper, clock: Clock, pacer: Pacer | None = None,
) -> httpx.Response:
    """Send `request`, paced by `pacer` when one is given (R44); a non-2xx answer raises
    `errors`' mapping of it. Paced and still refused with a 429 (the account's other apps
    share its budget, a clock out of step), the pacer holds every worker off for as long as
    the provider asks."""
    if pacer is not None:
        await pacer.before_call(operation)
    response = await send(http, request, service=service, operation=operation)
    if not response.is_success:
        error = errors(response, operation=operation, now=clock())
        if pacer is not None and isinstance(error, RateLimited):
            await pacer.after_rate_limited(error.retry_after)
        raise error
    return response


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """The URL parsed once: httpx parses a string URL on every request (~0.15 ms of CPU per
    publication, issue 17 item 3); an `httpx.URL` is immutable, and taken as it is. The
    clients call few distinct URLs (one messages URL per channel)."""
    return httpx.URL(url)


async def send(
    http: httpx.AsyncClient, request: httpx.Request, *, service: str, operation: str
) -> httpx.Response:
    """Send `request`; a failure before any answer arrives becomes a `DeliveryError`."""
    try:
        return await http.send(request)
    except httpx.RequestError as exc:
        raise transport_error(exc, service=service, operation=operation) from exc


def transport_error(exc: httpx.RequestError, *, service: str, operation: str) -> DeliveryError:
    """Map an httpx failure to the error tree.

    Timeouts, refused or dropped connections and broken answers are worth another try.
    A URL we cannot even send (no scheme, a header we built wrong) is our configuration or
    our bug: retrying cannot fix it.
    """
    what = f"{service}: {operation}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return Permanent(f"{what} could not be sent ({type(exc).__name__}); check the configured "
                         f"{service} base URL.")
    if isinstance(exc, httpx.TimeoutException):
        return Retryable(f"{what} timed out; will retry.")
    if isinstance(exc, httpx.ConnectError):
        return Retryable(f"{what}: could not connect to {service}; will retry.")
    return Retryable(f"{what}: the connection failed ({type(exc).__name__}); will retry.")


def temporary_error(
    response: httpx.Response, *, service: str, operation: str,
    retry_after: Callable[[], float], labels: str = "",
) -> DeliveryError | None:
    """The statuses both providers mean alike, in the words both clients use: 429 →
    RateLimited after the provider's own wait (`retry_after`, read only then), 5xx →
    Retryable (`labels`: what the provider said of it, after the status). None for any
    other status: each client maps those itself."""
    status = response.status_code
    if status == 429:
        return RateLimited(
            f"{service} rate limit reached while trying to {operation}; will retry.",
            retry_after=retry_after(), detail=body_excerpt(response),
        )
    if status >= 500:
        return Retryable(
            f"{service} failed to {operation} ({status}{labels}); will retry.",
            status_code=status, detail=body_excerpt(response),
        )
    return None


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when the body is empty or not JSON."""
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body when it is a JSON object, else an empty dict (error bodies vary)."""
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def expect_json_object(
    response: httpx.Response, *, service: str, operation: str, reveal_body: bool = True
) -> dict[str, Any]:
    """A 2xx body that must be a JSON object. Anything else is most likely a proxy's page or
    a cut connection, so it is worth another try. `reveal_body=False` for answers that may
    carry secrets (token endpoints): the body then stays out of `detail`."""
    body = json_body(response)
    if not isinstance(body, dict):
        raise Retryable(
            f"{service} answered '{operation}' with something that is not JSON; will retry.",
            status_code=response.status_code,
            detail=body_excerpt(response) if reveal_body else None,
        )
    return body


def missing_field(service: str, operation: str, key: str, data: Mapping[str, Any]) -> Permanent:
    """A 2xx answer without a field we cannot do without: the provider's contract changed.
    `detail` names the keys that were there, never their values (they may be secrets)."""
    return Permanent(
        f"{service} answered '{operation}' without '{key}'.",
        detail=f"keys in the answer: {', '.join(sorted(map(str, data))) or 'none'}",
    )


def body_excerpt(response: httpx.Response) -> str:
    """The raw body as text, cut to `DETAIL_LIMIT`, for an error's `detail`."""
    text = response.content.decode("utf-8", errors="replace")
    return text if len(text) <= DETAIL_LIMIT else text[:DETAIL_LIMIT] + "…"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """RFC 9110 `Retry-After`: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return _bounded(seconds)


def hubspot_retry_after(
    headers: Mapping[str, str], body: Mapping[str, Any], now: datetime
) -> float:
    """Seconds to wait after a HubSpot 429 (reference hubspot §7).

    `Retry-After` is not documented but honoured when present; otherwise a spent rolling
    window (`X-HubSpot-RateLimit-Remaining: 0`) frees up after
    `X-HubSpot-RateLimit-Interval-Milliseconds`; the DAILY policy waits an hour.
    """
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if retry_after is not None:
        return retry_after
    if str(body.get("policyName", "")).upper() == "DAILY":
        return HUBSPOT_DAILY_RETRY_AFTER
    interval_ms = _number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    if interval_ms is not None and interval_ms > 0:
        return _bounded(interval_ms / 1000)
    return HUBSPOT_DEFAULT_RETRY_AFTER


def aircall_retry_after(headers: Mapping[str, str], now: datetime) -> float:
    """Seconds to wait after an Aircall 429 (reference aircall §A3).

    `X-AircallApi-Reset` first (when the limit frees up), then an undocumented
    `Retry-After`, then one minute.
    """
    reset_at = aircall_reset_epoch_seconds(headers.get("x-aircallapi-reset"), now)
    if reset_at is not None:
        return _bounded(reset_at - now.timestamp())
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if retry_after is not None:
        return retry_after
    return AIRCALL_DEFAULT_RETRY_AFTER


def aircall_reset_epoch_seconds(value: str | None, now: datetime) -> float | None:
    """The UNIX time (seconds) at which Aircall's rate limit resets, from `X-AircallApi-Reset`.

    The one place that decides the header's unit, which Aircall does not document (§A3):
    - most clients read UNIX **seconds** — the default;
    - one client reads **milliseconds**: a value above 10^11 cannot be seconds (that is the
      year 5138) but is a plausible millisecond time (10^11 ms is 1973), so it is divided;
    - a value below 10^9 (before 2001 as seconds) can only be a delay in seconds, so it is
      counted from now.
    """
    reset = _number(value)
    if reset is None or reset < 0:
        return None
    if reset > 1e11:
        return reset / 1000
    if reset < 1e9:
        return now.timestamp() + reset
    return reset


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _bounded(seconds: float) -> float:
    return min(max(seconds, MIN_RETRY_AFTER), MAX_RETRY_AFTER)

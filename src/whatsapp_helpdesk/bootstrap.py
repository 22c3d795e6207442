"""The one composition root: settings → engine, clock, cipher, HTTP and API clients.

Web and worker processes each build one `Services`; flows receive it and never build
adapters themselves, so tests can wire the same flows to other bases (the sandboxes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.adapter_ports import CHANNEL_ID_KEY
from whatsapp_helpdesk.aircall import AircallClient, AircallOAuth, BearerToken
from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.db.models import Installation, ServiceState
from whatsapp_helpdesk.db.outbox import wake_workers
from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.db.session import READ_ONLY, make_engine, make_session_factory
from whatsapp_helpdesk.domain.clock import Clock, OffsetClock, SystemClock
from whatsapp_helpdesk.http_transport import OAuthApp
from whatsapp_helpdesk.hubspot import HubSpotDeveloperClient, HubSpotOAuth, HubSpotPortalClient
from whatsapp_helpdesk.pacing import Limit, OpeningBurst, Pacer, RateLimiter, SharePacer
from whatsapp_helpdesk.settings import Settings

CLOCK_OFFSET_KEY = "sandbox_clock_offset_seconds"
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class _NoCookies(httpx.Cookies):
    """The HTTP client keeps no cookie. The providers' APIs authenticate every call by its
    token or key; a cookie one sets (a CDN's) is never needed back. Reading them cost
    ~0.2 ms of CPU per request, even when there is none: httpx builds a urllib request
    from the URL again for every answer (issue 17 item 3)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    cipher: TokenCipher
    # Sandbox mode only: what the phone's "jump the clock" moves (None with real credentials).
    sandbox_clock_offset: StoredClockOffset | None = None
    # Client-side pacing (R44), shared by every process; None when CLIENT_PACING is off.
    rate_limiter: RateLimiter | None = None
    # The pacing's time (UNIX seconds, the rate limiter's clock) and its way to wait for a
    # booked slot: a test gives both a manual clock.
    pacing_clock: Callable[[], float] = time.time
    pacing_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _pace_keys: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    # --- HTTP and API clients --------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        # Created lazily: an AsyncClient belongs to the event loop that first uses it.
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
            self._http._cookies = _NoCookies()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _clock_fn(self) -> datetime:
        return self.clock.now()

    def _oauth_app(self, client_id: str, client_secret: SecretStr, *, api_base: str,
                   auth_base: str) -> OAuthApp:
        """What both providers' OAuth clients take: our app there, its bases, our HTTP client."""
        return OAuthApp(client_id=client_id, client_secret=client_secret.get_secret_value(),
                        http=self.http, api_base=api_base, auth_base=auth_base,
                        clock=self._clock_fn)

    def hubspot_oauth(self) -> HubSpotOAuth:
        s = self.settings
        app = self._oauth_app(s.hubspot_client_id, s.hubspot_client_secret,
                              api_base=s.hubspot_api_base, auth_base=s.hubspot_auth_base)
        return HubSpotOAuth(api_version=s.hubspot_api_version, **app)

    def hubspot_developer(self) -> HubSpotDeveloperClient:
        s = self.settings
        return HubSpotDeveloperClient(
            developer_api_key=s.hubspot_developer_api_key.get_secret_value(),
            app_id=s.hubspot_app_id,
            http=self.http,
            api_base=s.hubspot_api_base,
            clock=self._clock_fn,
            api_version=s.hubspot_api_version,
        )

    def hubspot_portal(
        self, access_token: str, *, installation_id: int | None = None
    ) -> HubSpotPortalClient:
        """`installation_id` paces the calls under the portal's rate limit (the worker's)."""
        s = self.settings
        return HubSpotPortalClient(
            access_token, http=self.http, api_base=s.hubspot_api_base,
            clock=self._clock_fn, api_version=s.hubspot_api_version,
            pacer=self._pacer("hubspot", installation_id),
        )

    def aircall_oauth(self) -> AircallOAuth:
        s = self.settings
        return AircallOAuth(**self._oauth_app(s.aircall_client_id, s.aircall_client_secret,
                                              api_base=s.aircall_api_base,
                                              auth_base=s.aircall_auth_base))

    def aircall(self, access_token: str, *, installation_id: int | None = None,
                budget_share: float | None = None,
                opening_burst: OpeningBurst | None = None) -> AircallClient:
        """`installation_id` paces the calls under the company's rate limit (the worker's);
        `budget_share` keeps them to that share of it (a long background job's);
        `opening_burst` lets the first calls go at once if the bucket was idle (pacing.py)."""
        s = self.settings
        limit = self._pace_limit("aircall")
        pacer = self._pacer("aircall", installation_id, opening_burst)
        if pacer is not None and budget_share is not None:
            assert self.rate_limiter is not None and installation_id is not None
            pacer = SharePacer(self.rate_limiter,
                               lambda: self._pace_key("aircall", installation_id), limit,
                               service="Aircall", share=budget_share,
                               clock=self.pacing_clock, sleep=self.pacing_sleep,
                               opening_burst=opening_burst)
        return AircallClient(
            BearerToken(access_token), http=self.http, api_base=s.aircall_api_base,
            clock=self._clock_fn, pacer=pacer,
        )

    def _pacer(self, provider: str, installation_id: int | None,
               opening_burst: OpeningBurst | None = None) -> Pacer | None:
        if self.rate_limiter is None or installation_id is None:
            return None
        return Pacer(self.rate_limiter, lambda: self._pace_key(provider, installation_id),
                     self._pace_limit(provider),
                     service="HubSpot" if provider == "hubspot" else "Aircall",
                     clock=self.pacing_clock, sleep=self.pacing_sleep,
                     known_key=lambda: self._pace_keys.get((provider, installation_id)),
                     opening_burst=opening_burst)

    def pace_bucket(self, provider: str, installation_id: int) -> tuple[str, Limit] | None:
        """The bucket (key, limit) the clients of `installation_id` book for `provider`
        ("hubspot" or "aircall"); None when client pacing is off. May read the database."""
        if self.rate_limiter is None:
            return None
        return self._pace_key(provider, installation_id), self._pace_limit(provider)

    def known_pace_bucket(self, provider: str, installation_id: int) -> tuple[str, Limit] | None:
        """`pace_bucket` when its key is known without the database (cached), else None."""
        key = self._pace_keys.get((provider, installation_id))
        return None if key is None else (key, self._pace_limit(provider))

    def _pace_limit(self, provider: str) -> Limit:
        s = self.settings
        if provider == "hubspot":
            return Limit(s.hubspot_rate_limit, s.hubspot_rate_window_seconds)
        return Limit(s.aircall_rate_limit, s.aircall_rate_window_seconds)

    def _pace_key(self, provider: str, installation_id: int) -> str:
        """The bucket of the provider account behind an installation: its HubSpot portal or
        its Aircall company (one company may be installed in two portals: one budget)."""
        cached = self._pace_keys.get((provider, installation_id))
        if cached is not None:
            return cached
        with self.sessions() as session:
            installation = session.get(Installation, installation_id)
            account = None
            if installation is not None:
                account = (installation.hubspot_portal_id if provider == "hubspot"
                           else installation.aircall_company_id)
        if account is None:  # not installed yet: pace per installation, do not remember it
            return f"{provider}:installation:{installation_id}"
        key = f"{provider}:{account}"
        self._pace_keys[(provider, installation_id)] = key
        return key

    # --- Small deployment facts ----------------------------------------------------------------

    def channel_id(self) -> str | None:
        """The registered custom channel: from HUBSPOT_CHANNEL_ID, else as registered."""
        if self.settings.hubspot_channel_id:
            return self.settings.hubspot_channel_id
        with self.sessions() as session:
            row = session.get(ServiceState, CHANNEL_ID_KEY)
            return row.value if row else None


class StoredClockOffset:
    """The sandbox clock offset, shared by web and worker processes through the database.

    Read at most every half second (every `now()` would otherwise be a query), on a
    read-only connection: `now()` is called inside write transactions, and on SQLite a
    second writer would wait for the first, held by the same thread. Moving or resetting it
    through this object is seen at once by the process that did it."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session]):
        self._engine = engine
        self._sessions = sessions
        self._cached = (0.0, -1.0)

    def __call__(self) -> float:
        value, read_at = self._cached
        if time.monotonic() - read_at < 0.5:
            return value
        try:
            with self._engine.connect() as connection:
                raw = connection.execution_options(**{READ_ONLY: True}).scalar(
                    select(ServiceState.value).where(ServiceState.key == CLOCK_OFFSET_KEY)
                )
        except (OperationalError, InterfaceError):
            # Database unreachable: the last offset read keeps the clock going, so that a
            # webhook can still be verified and spooled (R53).
            return value
        value = float(raw) if raw else 0.0
        self._cached = (value, time.monotonic())
        return value

    def move(self, *, advance_seconds: float = 0.0, offset_seconds: float | None = None) -> float:
        """Jump forward by `advance_seconds`, or set the offset outright; the new offset."""
        with self._sessions.begin() as session:
            row = session.get(ServiceState, CLOCK_OFFSET_KEY)
            current = float(row.value) if row else 0.0
            current = offset_seconds if offset_seconds is not None else current + advance_seconds
            if row is None:
                session.add(ServiceState(key=CLOCK_OFFSET_KEY, value=str(current)))
            else:
                row.value = str(current)
            # Work put off until a time the jump passed is due now: idle workers on
            # PostgreSQL wait for a NOTIFY (worker/idle.py), not for the clock.
            wake_workers(session.connection())
        self._cached = (current, time.monotonic())
        return current

    def forget(self) -> None:
        """Read the database again next time (after the demo's reset emptied it)."""
        self._cached = (0.0, -1.0)


def build_services(settings: Settings | None = None, *, clock: Clock | None = None,
                   for_the_worker: bool = False) -> Services:
    """`for_the_worker`: no ping of a pooled connection before each transaction (a round
    trip per transaction on PostgreSQL, issue 17 item 3); the worker retries a transaction
    that met a connection lost meanwhile instead (worker/runner.py `on_a_live_connection`)."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url,
                         **({"pool_pre_ping": False} if for_the_worker else {}))
    sessions = make_session_factory(engine)
    # Only a sandbox-mode service can have its clock moved (issue 6): a service configured
    # for the real HubSpot and Aircall always runs on system time.
    clock_offset: StoredClockOffset | None = None
    if clock is None:
        clock_offset = StoredClockOffset(engine, sessions) if settings.sandbox_mode else None
        clock = OffsetClock(clock_offset) if clock_offset is not None else SystemClock()
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        cipher=TokenCipher(settings.secret_keys),
        sandbox_clock_offset=clock_offset,
        rate_limiter=DatabaseRateLimiter(engine) if settings.client_pacing else None,
    )

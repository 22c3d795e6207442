"""The service's one settings object, read from the environment (and an optional `.env`).

Every variable is documented in the README's table; keep the two in step.

When no HubSpot and no Aircall credentials are given, the service runs in *sandbox mode*:
it talks to the built-in emulators (started by `whatsapp-helpdesk serve`) with the
emulators' published demo credentials. With credentials set, it talks only to the
configured bases, so the same program can be pointed at any server that speaks the
documented APIs.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whatsapp_helpdesk.hubspot.api_paths import DEFAULT_API_VERSION, ApiVersion

PLACEHOLDER_SECRET = "change-me"

# The sandbox emulators' fixed demo credentials. They are public by design (the sandbox
# is a local demo); they are repeated here rather than imported because the bridge never
# imports the sandbox (the emulators stay an independent check of the bridge).
SANDBOX_HUBSPOT_APP_ID = "1001"
SANDBOX_HUBSPOT_CLIENT_ID = "sandbox-hubspot-client-id"
SANDBOX_HUBSPOT_CLIENT_SECRET = "sandbox-hubspot-client-secret"
SANDBOX_HUBSPOT_DEVELOPER_API_KEY = "sandbox-developer-api-key"
SANDBOX_AIRCALL_CLIENT_ID = "sandbox-aircall-client-id"
SANDBOX_AIRCALL_CLIENT_SECRET = "sandbox-aircall-client-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    database_url: str = Field(
        "sqlite:///var/whatsapp-helpdesk.sqlite3",
        title="Database URL",
        description="SQLAlchemy URL. SQLite file by default; postgresql+psycopg://… in production.",
    )
    public_url: str = Field(
        "",
        title="Public URL",
        description="Base URL at which HubSpot and Aircall reach this service (webhooks, "
        "OAuth callbacks, the connect pop-up). Signatures are checked against it. Unset: "
        "http://HOST:PORT (127.0.0.1 when HOST is 0.0.0.0), so PORT alone moves every URL.",
    )
    secret_key: SecretStr = Field(
        SecretStr(PLACEHOLDER_SECRET),
        title="Secret key",
        description="Signs sessions and derives the key that encrypts OAuth tokens at rest. "
        "Several keys, comma-separated, newest first, rotate it: the first encrypts, any "
        "decrypts; `whatsapp-helpdesk rotate-keys` re-encrypts with the first.",
    )
    host: str = Field("127.0.0.1", description="Interface the web app listens on.")
    port: int = Field(8700, description="Port the web app listens on.")
    web_keep_alive_seconds: float = Field(
        75.0, gt=0, description="How long the web app keeps an idle HTTP connection open; "
        "longer than its clients and proxies keep one (httpx 5 s, load balancers 60 s), so "
        "that a request is never sent on a connection the server is closing.")
    ingest_mode: Literal["spool", "direct"] = Field(
        "spool",
        description="How a web process acknowledges an Aircall inbound WhatsApp message for a "
        "connected number: `spool` (fsync'ed to the webhook spool, answered, then stored in the "
        "database in batches by the drain; docs/decisions/0011-spool-first-ingest.md) or "
        "`direct` (answered after the database commit holding it). Other deliveries always "
        "take the direct path.")
    spool_backlog_max_records: int = Field(
        20_000, ge=1,
        description="Spooled deliveries a web process may hold before the database has them; "
        "beyond it the fast path's answers wait for the drain (then 503, so Aircall retries).")
    ingest_writers: int = Field(
        0, ge=0, le=32,
        description="Threads of a web process that store Aircall webhooks, each committing "
        "what queued as one transaction (group commit). 0: one on SQLite (writes are "
        "serialised anyway), four on PostgreSQL (a batch waiting on a row lock or a round "
        "trip does not hold up the others).")

    hubspot_api_base: str = Field("https://api.hubapi.com", description="HubSpot API base URL.")
    hubspot_api_version: ApiVersion = Field(
        DEFAULT_API_VERSION,
        description="HubSpot API version spoken: `2026-03` (current) or `v3` (legacy custom "
        "channels, supported until September 2027); selects the paths of custom channels, "
        "CRM, files and OAuth (R50).",
    )
    hubspot_auth_base: str = Field(
        "https://app.hubspot.com", description="HubSpot base URL for the OAuth consent page."
    )
    hubspot_app_id: str = Field("", description="HubSpot public app id.")
    hubspot_client_id: str = Field("", description="HubSpot app OAuth client id.")
    hubspot_client_secret: SecretStr = Field(
        SecretStr(""), description="HubSpot app client secret; also verifies webhook signatures."
    )
    hubspot_developer_api_key: SecretStr = Field(
        SecretStr(""), description="HubSpot developer API key (registers the custom channel)."
    )
    hubspot_channel_id: str = Field(
        "",
        description="Id of the registered custom channel (printed by `hubspot register-channel`).",
    )

    aircall_api_base: str = Field("https://api.aircall.io", description="Aircall API base URL.")
    aircall_auth_base: str = Field(
        "https://dashboard.aircall.io", description="Aircall base URL for the OAuth consent page."
    )
    aircall_client_id: str = Field("", description="Aircall OAuth client id.")
    aircall_client_secret: SecretStr = Field(
        SecretStr(""), description="Aircall OAuth client secret."
    )

    ticket_inactivity_hours: float = Field(
        24, gt=0,
        description="Hours of inactivity after which a customer message starts a new ticket (R20).",
    )
    reorder_grace_seconds: float = Field(
        1.0,
        ge=0,
        description="How long an inbound message waits before publication so that messages "
        "Aircall delivered out of order can be put back in the customer's order (R15).",
    )
    worker_concurrency: int = Field(
        4, ge=1, description="Deliveries one worker process runs at once."
    )
    worker_niceness: int = Field(
        10, ge=0, le=19,
        description="OS scheduling niceness the worker process takes at start (0: as started). "
        "On a machine it shares with a web process, the web's acknowledgements then get the "
        "CPU first and the worker takes what they leave (issue 17 item 2): its backlog waits "
        "a little longer, the webhooks' answers less. Never raised above what the process was "
        "started with.")
    # `batch` by default, not `idle`: under SCHED_IDLE a worker on a core kept busy by anything
    # else (a flood of webhooks, PostgreSQL's backends, another service) gets almost nothing
    # and the backlog stops moving; SCHED_BATCH only stops its wake-ups from taking the core
    # from a running web process, and niceness still guarantees it its share. `idle` is for a
    # machine where the web's acknowledgements must always come first.
    worker_cpu_policy: Literal["normal", "batch", "idle"] = Field(
        "batch",
        description="Linux scheduling policy the worker process takes at start, beside its "
        "niceness: `idle` (SCHED_IDLE: the worker runs when nothing else on its core wants to, "
        "and a waking web process takes the core from it at once), `batch` (SCHED_BATCH: "
        "its own wake-ups never take the core from a running process) or `normal` (as "
        "started). At niceness 10 the kernel still owes the worker about a tenth of a core "
        "it shares with the web, which it takes in turns of several milliseconds while "
        "acknowledgements wait (issue 17 item 2). Never raised above what the process was "
        "started with; ignored where the system has no such policy.")
    worker_lease_seconds: float = Field(
        60, gt=0, description="How long a worker holds a job before another may take it over "
        "(a killed worker's jobs are retried after this)."
    )
    spool_dir: str = Field(
        "",
        description="Directory of the webhook spool that keeps authenticated deliveries while "
        "the database is unreachable (R53); shared by the web processes of one database. "
        "Empty: var/spool/<digest of DATABASE_URL>.",
    )
    spool_max_bytes: int = Field(
        64 * 1024 * 1024, ge=4096,
        description="Most bytes the spool holds; when full, webhooks are answered 503 so that "
        "the provider retries (R53).",
    )
    spool_replay_interval_seconds: float = Field(
        1.0, gt=0,
        description="How often a web process checks whether the database is back and replays "
        "the spool (R53).",
    )
    aircall_webhook_check_seconds: float = Field(
        180, gt=0,
        description="How often the worker checks our Aircall webhook registrations and "
        "re-enables (or recreates) one Aircall disabled or deleted (R53).",
    )
    delivery_retry_hours: float = Field(
        24, gt=0,
        description="How long a delivery failing with temporary errors (5xx, timeouts) is "
        "retried, from the first of them, before it fails for good; waits asked by a rate "
        "limit (429) never spend it; a reply also stops when WhatsApp's 24 h window closes "
        "(R44).",
    )
    # The providers' limits (R44), in this one place. HubSpot: 110 requests / 10 s per portal
    # for public apps (reference hubspot §7, usage guidelines). Aircall: per company, 120 / min
    # in the current API reference, 60 / min in older texts, and shared with every other
    # integration of the company (reference aircall §A3): 60 is the safe default.
    hubspot_rate_limit: int = Field(
        110, ge=1, description="HubSpot calls allowed per portal per "
        "`HUBSPOT_RATE_WINDOW_SECONDS` (public apps: 110 / 10 s); the workers pace below it."
    )
    hubspot_rate_window_seconds: float = Field(
        10, gt=0, description="The window of `HUBSPOT_RATE_LIMIT`, in seconds."
    )
    aircall_rate_limit: int = Field(
        60, ge=1, description="Aircall calls allowed per company per "
        "`AIRCALL_RATE_WINDOW_SECONDS` (documented 120 / min, older texts 60; the budget is "
        "shared with the company's other integrations)."
    )
    aircall_rate_window_seconds: float = Field(
        60, gt=0, description="The window of `AIRCALL_RATE_LIMIT`, in seconds."
    )
    numbers_refresh_budget_share: float = Field(
        0.5, gt=0, le=1, description="Share of `AIRCALL_RATE_LIMIT` that \"Refresh numbers "
        "from Aircall\" (two calls per number) may use, so that replies sent meanwhile are "
        "not starved; 0.5 reads 5,000 numbers in about 6 hours at 60 / min. The install's "
        "first read keeps to it too, after an opening burst when the budget was unused."
    )
    client_pacing: bool = Field(
        True, description="Workers pace their HubSpot and Aircall calls under those limits, "
        "through buckets shared in the database. Off only to measure the difference."
    )
    media_retry_seconds: float = Field(
        120, gt=0,
        description="How long, from its arrival, an inbound photo, voice note or document is "
        "fetched from Aircall and uploaded to HubSpot before it is published with a "
        "placeholder and the reason; the conversation's later messages wait at most this "
        "long behind it (R51).",
    )
    webhook_payload_retention_days: float = Field(
        30, gt=0, description="How long the raw payload of a received webhook, and a "
        "delivery once done, are kept; the worker then empties the payload (the event's row "
        "stays, so a late redelivery is still a duplicate) and deletes the done delivery "
        "(failed ones stay)."
    )
    sandbox_hubspot_port: int = Field(
        8701, description="Port of the sandbox HubSpot (sandbox mode)."
    )
    sandbox_aircall_port: int = Field(
        8702, description="Port of the sandbox Aircall (sandbox mode)."
    )
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING…).")
    supervisor_state_file: str = Field(
        "", description="Set by `serve` for its children: the JSON file where it keeps their "
        "state (pid, restarts, last exit), shown by `/healthz`. Leave unset."
    )

    @property
    def secret_keys(self) -> list[str]:
        """SECRET_KEY's keys, newest first (one, or several comma-separated)."""
        return [k.strip() for k in self.secret_key.get_secret_value().split(",") if k.strip()]

    @property
    def sandbox_clocks(self) -> list[str]:
        """Sandbox mode: the clocks the customer phone's "jump the clock" moves with its own
        (the sandbox HubSpot's and this service's)."""
        return [f"{self.hubspot_api_base}/_sandbox/clock", f"{self.public_url}/_sandbox/clock"]

    @cached_property
    def sandbox_mode(self) -> bool:
        """No HubSpot and no Aircall credentials: run against the built-in emulators."""
        return not (
            self.hubspot_client_id
            or self.hubspot_client_secret.get_secret_value()
            or self.aircall_client_id
            or self.aircall_client_secret.get_secret_value()
        )

    @model_validator(mode="after")
    def _sandbox_defaults_and_guards(self) -> Settings:
        if self.sandbox_mode:
            sandbox_hubspot = f"http://127.0.0.1:{self.sandbox_hubspot_port}"
            sandbox_aircall = f"http://127.0.0.1:{self.sandbox_aircall_port}"
            fields = self.model_fields_set
            if "hubspot_api_base" not in fields:
                self.hubspot_api_base = sandbox_hubspot
            if "hubspot_auth_base" not in fields:
                self.hubspot_auth_base = sandbox_hubspot
            if "aircall_api_base" not in fields:
                self.aircall_api_base = sandbox_aircall
            if "aircall_auth_base" not in fields:
                self.aircall_auth_base = sandbox_aircall
            self.hubspot_app_id = self.hubspot_app_id or SANDBOX_HUBSPOT_APP_ID
            self.hubspot_client_id = SANDBOX_HUBSPOT_CLIENT_ID
            self.hubspot_client_secret = SecretStr(SANDBOX_HUBSPOT_CLIENT_SECRET)
            if not self.hubspot_developer_api_key.get_secret_value():
                self.hubspot_developer_api_key = SecretStr(SANDBOX_HUBSPOT_DEVELOPER_API_KEY)
            self.aircall_client_id = SANDBOX_AIRCALL_CLIENT_ID
            self.aircall_client_secret = SecretStr(SANDBOX_AIRCALL_CLIENT_SECRET)
        elif not self.secret_keys or PLACEHOLDER_SECRET in self.secret_keys:
            raise ValueError(
                "SECRET_KEY is still the placeholder. Set SECRET_KEY to a long random value "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        self.public_url = (self.public_url or _url_of(self.host, self.port)).rstrip("/")
        self.hubspot_api_base = self.hubspot_api_base.rstrip("/")
        self.hubspot_auth_base = self.hubspot_auth_base.rstrip("/")
        self.aircall_api_base = self.aircall_api_base.rstrip("/")
        self.aircall_auth_base = self.aircall_auth_base.rstrip("/")
        return self

    @property
    def ticket_inactivity_seconds(self) -> float:
        return self.ticket_inactivity_hours * 3600


def _url_of(host: str, port: int) -> str:
    """The URL this machine reaches the web app at (issue 15: PORT alone moves it)."""
    # Listening on every interface: loopback is one of them.
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"

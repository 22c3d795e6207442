"""R41 (issue 12, item 2): after a full run — install, a message in, a reply out, a token
refresh, a re-authorisation through the pages — no OAuth token, client secret or webhook
token the run used is found in clear in the database files (SQLite file and its WAL; every
text column on PostgreSQL) or in anything logged, at DEBUG."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import structlog
from harness.pages import signed_in
from harness.stack import PORTAL, Stack
from security_helpers import agent_replies, conversation_started, wait_for
from sqlalchemy import String, Text, cast, select
from sqlalchemy.engine import make_url

from whatsapp_helpdesk.db.models import Base
from whatsapp_helpdesk.logging_redaction import configure_logging, settings_secrets
from whatsapp_helpdesk.settings import (
    SANDBOX_AIRCALL_CLIENT_SECRET,
    SANDBOX_HUBSPOT_CLIENT_SECRET,
    SANDBOX_HUBSPOT_DEVELOPER_API_KEY,
    Settings,
)

SECRET_FIELDS = ("access_token", "refresh_token", "token", "client_secret")


class SecretsSeen:
    """Every credential that crossed HTTP in this process (the bridge's calls to both
    sandboxes, and the sandbox Aircall's webhook deliveries to the bridge)."""

    def __init__(self) -> None:
        self.values: set[str] = {SANDBOX_HUBSPOT_CLIENT_SECRET, SANDBOX_AIRCALL_CLIENT_SECRET,
                                 SANDBOX_HUBSPOT_DEVELOPER_API_KEY}

    def note(self, content: bytes) -> None:
        fields: dict[str, Any] = {}
        try:
            parsed = json.loads(content)
            if isinstance(parsed, dict):
                fields = parsed
        except (ValueError, UnicodeDecodeError):
            fields = dict(parse_qsl(content.decode("utf-8", "replace")))
        for key in SECRET_FIELDS:
            value = fields.get(key)
            if isinstance(value, str) and len(value) >= 8:
                self.values.add(value)


@pytest.fixture
def secrets_seen(monkeypatch: pytest.MonkeyPatch) -> SecretsSeen:
    seen = SecretsSeen()
    original = httpx.AsyncClient.send

    async def recording(client: httpx.AsyncClient, request: httpx.Request,
                        **kwargs: Any) -> httpx.Response:
        response = await original(client, request, **kwargs)
        # A streamed upload (not read) carries no credential of ours.
        with contextlib.suppress(httpx.RequestNotRead):
            seen.note(request.content)
        if not kwargs.get("stream"):
            seen.note(response.content)
        return response

    monkeypatch.setattr(httpx.AsyncClient, "send", recording)
    return seen


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """The service's own logging configuration (as `whatsapp-helpdesk` sets it) at DEBUG,
    written to a buffer for the length of the test."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    handler = configure_logging("DEBUG", secrets=settings_secrets(settings), stream=buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name in ("httpx", "httpcore", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        structlog.reset_defaults()


def _reinstall_through_the_pages(stack: Stack) -> None:
    """An admin re-authorises HubSpot then Aircall from the service's install link."""
    client, _ = signed_in(stack)
    step = client.get("/oauth/hubspot/install")
    for extra in (f"&portal_id={PORTAL}", "&company_id=1"):
        assert step.status_code == 303, step.text
        consent = httpx.get(step.headers["location"] + extra, follow_redirects=False)
        assert consent.status_code == 302, consent.text
        step = client.get(consent.headers["location"])
        if step.headers.get("location") == "/oauth/aircall/install":
            step = client.get("/oauth/aircall/install")
    assert step.status_code in (200, 303), step.text


def _database_text(stack: Stack) -> bytes:
    url = make_url(stack.settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    chunks: list[str] = []
    with stack.services.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [cast(c, Text) for c in table.columns
                       if isinstance(c.type, String | Text)]
            for row in connection.execute(select(*columns)):
                chunks.extend(str(v) for v in row if v is not None)
    return "\n".join(chunks).encode()


def test_R41_no_secret_in_clear_in_database_or_logs_after_a_full_run(
        secrets_seen: SecretsSeen, service_logs: io.StringIO, stack: Stack) -> None:
    thread_id = conversation_started(stack)
    agent_replies(stack, thread_id)
    # Past the HubSpot token's 30 minutes: the worker refreshes it for the next message.
    for side in (stack.bridge, stack.hubspot, stack.aircall):
        side.post("/_sandbox/clock", json={"advance_seconds": 31 * 60})
    stack.customer_says("after the refresh")
    stack.wait_deliveries()
    stack.drain()
    wait_for(lambda: any(m["text"] == "after the refresh"
                         for t in stack.tickets() for m in t["messages"]))
    _reinstall_through_the_pages(stack)

    used = {s for s in secrets_seen.values if s}
    # The run did use OAuth tokens and a webhook token (else the search proves nothing).
    assert len(used) >= 8, used
    database = _database_text(stack)
    logs = service_logs.getvalue()
    assert logs, "nothing was logged"
    in_database = sorted(s for s in used if s.encode() in database)
    in_logs = sorted(s for s in used if s in logs)
    assert in_database == [], in_database
    assert in_logs == [], in_logs

"""R41 (issue 12, item 2): bound parameters never reach a log — not through a database
error's message (which SQLAlchemy fills with the statement's parameters) — and the log
configuration redacts secrets in structlog events and standard-library records alike."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from whatsapp_helpdesk.db.models import ServiceState
from whatsapp_helpdesk.logging_redaction import REDACTED, configure_logging

# On SQLite and PostgreSQL (tests/conftest.py): each driver's own error and statement logging.
pytestmark = pytest.mark.both_databases

SECRET = "webhook-token-4f2a9c1e7d"


def test_R41_a_database_error_never_carries_bound_parameters(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(ServiceState.__table__.insert().values(key="k", value=SECRET))
    with pytest.raises(IntegrityError) as caught, migrated_engine.begin() as connection:
        connection.execute(ServiceState.__table__.insert().values(key="k", value=SECRET))
    assert SECRET not in str(caught.value)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", secrets=["client-secret-of-this-deployment"],
                                stream=buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


def test_R41_structlog_events_are_redacted_by_key_and_by_content(logs: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info("oauth.exchanged", access_token="at-123456789", refresh_token="rt-123456789",
             code="code-123456789", headers={"Authorization": "Bearer bt-123456789"},
             url="https://api.example/x?hapikey=hk-123456789&limit=1",
             detail="sent with client-secret-of-this-deployment", installation_id=7)
    text_logged = logs.getvalue()
    for secret in ("at-123456789", "rt-123456789", "code-123456789", "bt-123456789",
                   "hk-123456789", "client-secret-of-this-deployment"):
        assert secret not in text_logged
    assert REDACTED in text_logged and '"installation_id": 7' in text_logged


def test_R41_standard_library_records_are_redacted(logs: io.StringIO) -> None:
    # A library's logger (uvicorn's own may be silenced by an earlier test's server).
    library = logging.getLogger("some.library")
    library.warning(
        "GET /signin/callback?code=%s&state=%s", "code-987654321", "st-987654321")
    try:
        raise RuntimeError('token exchange failed: {"access_token": "at-987654321"}')
    except RuntimeError:
        library.exception("boom")
    text_logged = logs.getvalue()
    assert "code-987654321" not in text_logged and "st-987654321" not in text_logged
    assert "at-987654321" not in text_logged
    assert "/signin/callback?code=" in text_logged  # the line itself is kept


def test_R41_engine_statement_log_is_off_even_at_debug(logs: io.StringIO,
                                                        migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        connection.execute(text("SELECT :value"), {"value": SECRET})
    assert SECRET not in logs.getvalue()


def test_R45_a_logged_crash_carries_its_traceback_with_secrets_redacted(
    logs: io.StringIO,
) -> None:
    """`log.exception` (the worker's job_crashed, loop_error) must say where it crashed: the
    JSON line used to hold only `"exc_info": true`. The traceback is redacted like the rest."""
    import json

    def crash() -> None:
        raise RuntimeError("boom near client-secret-of-this-deployment")

    try:
        crash()
    except RuntimeError:
        structlog.get_logger("test").exception("worker.job_crashed", kind="publish_inbound")
    [line] = [json.loads(raw) for raw in logs.getvalue().splitlines() if "job_crashed" in raw]
    assert "Traceback" in line["exception"] and "in crash" in line["exception"]
    assert "client-secret-of-this-deployment" not in json.dumps(line)

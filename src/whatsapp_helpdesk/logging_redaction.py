"""Logging with secrets redacted, for every log the service writes (R41; issue 12, item 2).

One configuration for structlog and the standard library: structlog events pass through
`redact_event`, standard-library records through `RedactingFilter` on the one handler.
Redacted are: values under secret-looking keys (`token`, `access_token`, `code`, …), bearer
credentials and secret query parameters inside any text, and the deployment's own secrets
(client secrets, developer key, SECRET_KEY) wherever they appear. SQLAlchemy's statement
log, which would print bound parameters, stays off (and the engine hides parameters from
its error messages: db/session.py).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Final, TextIO

import structlog

REDACTED: Final = "[redacted]"

SECRET_KEYS: Final = frozenset({
    "token", "access_token", "refresh_token", "id_token", "code", "client_secret",
    "authorization", "proxy-authorization", "cookie", "set-cookie", "secret", "secret_key",
    "password", "api_key", "hapikey", "developer_api_key", "account_token", "accounttoken",
    "webhook_token", "x-hubspot-signature-v3", "signature",
})

_IN_TEXT: Final = (
    # Authorization: Bearer …, Basic …
    re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{4,}"),
    # ?code=…&access_token=… in URLs and form bodies
    re.compile(r"(?i)([?&;](?:code|token|access_token|refresh_token|client_secret|hapikey"
               r"|accountToken|state)=)[^&\s\"'<>]+"),
    # "token": "…" in JSON-looking text
    re.compile(r"(?i)(\"(?:token|access_token|refresh_token|client_secret|accountToken)\"\s*:"
               r"\s*\")[^\"]*"),
    # token=… / access_token: … in repr-looking text
    re.compile(r"(?i)(\b(?:access_token|refresh_token|client_secret)\s*[=:]\s*'?)[^\s,'\")]+"),
)

# Literal secrets of this deployment (settings), replaced wherever they appear.
_known: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Secrets to replace wherever they appear in a log line (short ones are ignored)."""
    _known.update(v for v in values if v and len(v) >= 8)


def redact_text(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _IN_TEXT:
        text = pattern.sub(rf"\1{REDACTED}", text)
    return text


def redact(value: Any, key: str | None = None) -> Any:
    if key is not None and key.lower() in SECRET_KEYS and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, MutableMapping | dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: every key and value of the event, redacted."""
    return {key: redact(value, key) for key, value in event_dict.items()}


class RedactingFilter(logging.Filter):
    """Standard-library records (uvicorn, httpx, libraries) rendered, then redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def settings_secrets(settings: Any) -> list[str]:
    """The deployment's own secrets (a Settings), to be replaced wherever they appear."""
    return [settings.hubspot_client_secret.get_secret_value(),
            settings.hubspot_developer_api_key.get_secret_value(),
            settings.aircall_client_secret.get_secret_value(),
            *settings.secret_keys]


def configure_logging(level: str, *, secrets: Iterable[str] = (),
                      stream: TextIO | None = None) -> logging.Handler:
    """The service's logging: JSON lines on `stream` (stderr), secrets redacted."""
    register_secrets(secrets)
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every URL at INFO (HubSpot's developer key and token-info calls carry
    # secrets in the URL); SQLAlchemy's statement log prints bound parameters: both off.
    for noisy in ("httpx", "httpcore", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            # The traceback of `log.exception` as text first, so that it is redacted too.
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    return handler

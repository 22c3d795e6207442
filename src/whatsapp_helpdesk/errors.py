"""The small error tree the worker acts on (after httpx's `_exceptions.py`).

    DeliveryError                 something went wrong talking to HubSpot or Aircall
    ├── Retryable                 try again later (5xx, timeout, dropped connection)
    │   └── RateLimited           429: try again after `retry_after` seconds
    ├── Permanent                 a 4xx that will not change by retrying; keep the reason
    │   └── WindowClosed          WhatsApp's 24 h customer-service window is closed (131047)
    ├── AuthExpired               the access token expired: refresh it, then retry
    └── AuthRevoked               the grant is gone (refresh failed, 401/403 after refresh):
                                  the installation must re-authenticate (R8)

Clients raise these; flows and the worker decide what to do. Every error carries a
message a person understands, because it ends up on the dashboard and in HubSpot.
"""

from __future__ import annotations


class DeliveryError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail


class Retryable(DeliveryError):
    def __init__(self, message: str, *, status_code: int | None = None,
                 detail: str | None = None, retry_in: float | None = None):
        super().__init__(message, status_code=status_code, detail=detail)
        # When the job knows better than exponential backoff (a budget of its own, R51).
        self.retry_in = retry_in


class RateLimited(Retryable):
    def __init__(self, message: str, *, retry_after: float, status_code: int | None = 429,
                 detail: str | None = None):
        super().__init__(message, status_code=status_code, detail=detail)
        self.retry_after = retry_after


class Permanent(DeliveryError):
    """A 4xx that will not change by retrying: the entry fails with its reason."""


class WindowClosed(Permanent):
    """WhatsApp's 24 h customer-service window is closed (131047)."""


class TemplateRefused(Permanent):
    """WhatsApp (through Aircall) refused a template send: paused, missing, not approved or
    wrong parameters (R52). `code` is Meta's error code when the answer names one."""

    def __init__(self, message: str, *, code: int | None, status_code: int | None = None,
                 detail: str | None = None):
        super().__init__(message, status_code=status_code, detail=detail)
        self.code = code


class AuthExpired(DeliveryError):
    """The access token expired: refresh it, then retry."""


class AuthRevoked(DeliveryError):
    """The grant is gone: the installation must re-authenticate (R8)."""

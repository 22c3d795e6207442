"""Errors in Aircall's two body shapes: `{"message"}` and `{"error", "troubleshoot"}` (§A1)."""

from __future__ import annotations

from typing import Any

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.kit.errors import SandboxApiError


class ApiError(SandboxApiError):
    """Raised by routes; rendered as JSON by the app's exception handler."""


def bad_request(troubleshoot: str, *, error: str = "Bad Request") -> ApiError:
    return ApiError(400, {"error": error, "troubleshoot": troubleshoot})


def unprocessable(error: str, troubleshoot: str, **extra: Any) -> ApiError:
    return ApiError(422, {"error": error, "troubleshoot": troubleshoot, **extra, "success": False})


def not_found() -> ApiError:
    return ApiError(404, dict(constants.NOT_FOUND_BODY))


def conflict(troubleshoot: str) -> ApiError:
    return ApiError(409, {"error": "Conflict", "troubleshoot": troubleshoot})

"""Errors in Aircall's two body shapes: `{"message"}` and `{"error", "troubleshoot"}` (§A1)."""

from __future__ import annotations

from typing import Any

from whatsapp_helpdesk.sandbox.aircall import constants


class ApiError(Exception):
    """Raised by routes; rendered as JSON by the app's exception handler."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {body}")
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}


def bad_request(troubleshoot: str, *, error: str = "Bad Request") -> ApiError:
    return ApiError(400, {"error": error, "troubleshoot": troubleshoot})


def unprocessable(error: str, troubleshoot: str, **extra: Any) -> ApiError:
    return ApiError(422, {"error": error, "troubleshoot": troubleshoot, **extra, "success": False})


def not_found() -> ApiError:
    return ApiError(404, dict(constants.NOT_FOUND_BODY))


def conflict(troubleshoot: str) -> ApiError:
    return ApiError(409, {"error": "Conflict", "troubleshoot": troubleshoot})

"""HubSpot's error bodies, and the exception routes raise to answer with one.

Standard body (OpenAPI `Error` schema, plus the `status: "error"` HubSpot adds in practice):
`{"status": "error", "message", "correlationId" (uuid), "category", "subCategory"?,
"context"?, "errors"?, "links"?}`. Shapes of the 401/403 bodies follow captured real
responses (issue threads: airbytehq/airbyte#74726, HubSpot/hubspot-api-nodejs#268).
"""

from __future__ import annotations

import uuid
from typing import Any

from whatsapp_helpdesk.sandbox.kit.errors import SandboxApiError

SCOPES_DOC_URL = "https://developers.hubspot.com/scopes"


class HubSpotApiError(SandboxApiError):
    """Answer the request with `status_code` and a HubSpot JSON error body."""

    @staticmethod
    def describe(status_code: int, body: dict[str, Any]) -> str:
        return str(body.get("message", ""))


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(
    message: str,
    category: str,
    *,
    sub_category: str | None = None,
    context: dict[str, list[str]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    }
    if sub_category is not None:
        body["subCategory"] = sub_category
    if context is not None:
        body["context"] = context
    if errors is not None:
        body["errors"] = errors
    if links is not None:
        body["links"] = links
    return body


def validation_error(message: str, *, sub_category: str | None = None) -> HubSpotApiError:
    return HubSpotApiError(
        400, error_body(message, "VALIDATION_ERROR", sub_category=sub_category)
    )


def not_found(message: str) -> HubSpotApiError:
    return HubSpotApiError(404, error_body(message, "OBJECT_NOT_FOUND"))


def conflict(message: str, *, sub_category: str | None = None) -> HubSpotApiError:
    return HubSpotApiError(409, error_body(message, "CONFLICT", sub_category=sub_category))


def invalid_authentication() -> HubSpotApiError:
    message = (
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
        "oauth-overview"
    )
    return HubSpotApiError(401, error_body(message, "INVALID_AUTHENTICATION"))


def expired_authentication(seconds_ago: int, expire_time: str) -> HubSpotApiError:
    message = f"The OAuth token used to make this call expired {seconds_ago} second(s) ago."
    return HubSpotApiError(
        401,
        error_body(message, "EXPIRED_AUTHENTICATION", context={"expire time": [expire_time]}),
    )


def missing_scopes(required_any_of: list[str]) -> HubSpotApiError:
    message = (
        "This app hasn't been granted all required scopes to make this call. "
        f"Read more about required scopes here: {SCOPES_DOC_URL}."
    )
    detail = {
        "message": "One or more of the following scopes are required.",
        "context": {"requiredScopes": list(required_any_of)},
    }
    return HubSpotApiError(
        403,
        error_body(message, "MISSING_SCOPES", errors=[detail], links={"scopes": SCOPES_DOC_URL}),
    )


def category_for_status(status_code: int) -> str:
    """Category used when a fault injects a bare status."""
    return {
        400: "VALIDATION_ERROR",
        401: "INVALID_AUTHENTICATION",
        403: "MISSING_SCOPES",
        404: "OBJECT_NOT_FOUND",
        409: "CONFLICT",
        429: "RATE_LIMITS",
    }.get(status_code, "INTERNAL_ERROR" if status_code >= 500 else "BAD_REQUEST")

"""Reading request bodies and query parameters with Aircall-style 400s."""

from __future__ import annotations

import json

from starlette.requests import Request

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import bad_request, not_found


async def json_object(request: Request, *, allow_empty: bool = False) -> Json:
    raw = await request.body()
    if not raw.strip() and allow_empty:
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad_request("The request body is not valid JSON") from error
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def int_field(payload: Json, name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or value is None:
        raise bad_request(f"{name} is required and must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise bad_request(f"{name} must be an integer")


def path_id(raw: str) -> int:
    """Numeric path ids; anything else is simply not found."""
    if not raw.isdigit():
        raise not_found()
    return int(raw)


def pagination(request: Request) -> tuple[int, int]:
    """`page` (1-based) and `per_page` (default 20, clamped to 50) (§A1)."""
    try:
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", str(constants.DEFAULT_PER_PAGE)))
    except ValueError as error:
        raise bad_request("page and per_page must be integers") from error
    if page < 1 or per_page < 1:
        raise bad_request("page and per_page must be positive")
    return page, min(per_page, constants.MAX_PER_PAGE)

"""Request bodies: JSON read after authentication, checked with pydantic, errors in HubSpot form."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from whatsapp_helpdesk.sandbox.hubspot.errors import HubSpotApiError, error_body

ModelT = TypeVar("ModelT", bound=BaseModel)


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        value = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HubSpotApiError(
            400, error_body(f"Invalid input JSON: {exc}", "VALIDATION_ERROR")
        ) from exc
    if not isinstance(value, dict):
        raise HubSpotApiError(
            400, error_body("Invalid input JSON: expected an object", "VALIDATION_ERROR")
        )
    return value


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    return validate(await json_object(request), model)


def validate(value: dict[str, Any], model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = [
            {
                "message": f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}",
                "in": ".".join(str(p) for p in item["loc"]),
                "code": "INVALID_INPUT",
            }
            for item in exc.errors()
        ]
        summary = "; ".join(d["message"] for d in details)
        raise HubSpotApiError(
            400, error_body(f"Invalid input: {summary}", "VALIDATION_ERROR", errors=details)
        ) from exc

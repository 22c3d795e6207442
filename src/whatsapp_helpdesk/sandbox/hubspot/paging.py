"""HubSpot's list paging: `after` / `limit` in, `paging.next.after` out (offset cursors)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from whatsapp_helpdesk.sandbox.hubspot import errors

DEFAULT_PAGE = 100


def page(items: list[Any], request: Request) -> tuple[list[Any], dict[str, Any] | None]:
    """Offset paging with `after` / `limit`, returned as HubSpot's `paging.next`."""
    try:
        limit = int(request.query_params.get("limit") or DEFAULT_PAGE)
        start = int(request.query_params.get("after") or 0)
    except ValueError as exc:
        raise errors.validation_error("limit and after must be integers") from exc
    chunk = items[start:start + max(limit, 1)]
    following = start + len(chunk)
    if following < len(items):
        return chunk, {"next": {"after": str(following)}}
    return chunk, None


def collection(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """`CollectionResponseWithTotal…`."""
    chunk, paging = page(items, request)
    body: dict[str, Any] = {"total": len(items), "results": chunk}
    if paging is not None:
        body["paging"] = paging
    return body


def forward_page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """`CollectionResponse…ForwardPaging` (no total)."""
    chunk, paging = page(items, request)
    body: dict[str, Any] = {"results": chunk}
    if paging is not None:
        body["paging"] = paging
    return body

"""Conversations API v3: inboxes and threads (conversations-v3.json)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from whatsapp_helpdesk.sandbox.hubspot import errors, messaging
from whatsapp_helpdesk.sandbox.hubspot.auth import PortalAuth, SandboxDep, requires
from whatsapp_helpdesk.sandbox.hubspot.constants import (
    SCOPE_CONVERSATIONS_READ,
    SCOPE_CONVERSATIONS_WRITE,
)
from whatsapp_helpdesk.sandbox.hubspot.paging import collection, forward_page
from whatsapp_helpdesk.sandbox.hubspot.parsing import parse_body
from whatsapp_helpdesk.sandbox.hubspot.serializers import inbox_json, message_json, thread_json

router = APIRouter()

READ = requires(SCOPE_CONVERSATIONS_READ)
WRITE = requires(SCOPE_CONVERSATIONS_WRITE)


class ThreadUpdateIn(BaseModel):
    """`PublicThreadUpdateRequest`."""

    status: Literal["OPEN", "CLOSED"] | None = None
    archived: bool | None = None


@router.get("/conversations/v3/conversations/inboxes")
async def list_inboxes(request: Request, auth: PortalAuth = READ) -> Any:
    return collection([inbox_json(i) for i in auth.portal.inboxes], request)


@router.get("/conversations/v3/conversations/inboxes/{inbox_id}")
async def get_inbox(inbox_id: str, auth: PortalAuth = READ) -> Any:
    inbox = auth.portal.inbox(inbox_id)
    if inbox is None:
        raise errors.not_found(f"Inbox {inbox_id} not found")
    return inbox_json(inbox)


def _wants_ticket(request: Request) -> bool:
    return "TICKET" in request.query_params.getlist("association")


@router.get("/conversations/v3/conversations/threads/{thread_id}")
async def get_thread(
    thread_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = READ
) -> Any:
    thread = messaging.portal_thread(sandbox, auth.portal_id, thread_id)
    return thread_json(sandbox.state, thread, with_ticket=_wants_ticket(request))


@router.patch("/conversations/v3/conversations/threads/{thread_id}")
async def patch_thread(
    thread_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = WRITE
) -> Any:
    thread = messaging.portal_thread(sandbox, auth.portal_id, thread_id)
    body = await parse_body(request, ThreadUpdateIn)
    if body.status == "CLOSED":
        messaging.close(sandbox, thread)
    elif body.status == "OPEN":
        messaging.reopen(sandbox, thread)
    if body.archived is not None:
        thread.archived = body.archived
    return thread_json(sandbox.state, thread, with_ticket=False)


@router.get("/conversations/v3/conversations/threads/{thread_id}/messages")
async def list_thread_messages(
    thread_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = READ
) -> Any:
    """`CollectionResponsePublicMessageForwardPaging`, oldest first."""
    thread = messaging.portal_thread(sandbox, auth.portal_id, thread_id)
    messages = [message_json(m) for m in sandbox.state.thread_messages(thread.id)]
    return forward_page(messages, request)

"""Server-rendered help-desk screens: what an admin and an agent see inside HubSpot.

Settings > Help Desk > Channels (connect a channel through the integration's pop-up, R2),
the ticket list and the ticket view (conversation, statuses, Channel drop-down, reply,
R13/R21/R23), and the contact record (R22, R30). Forms work without JavaScript; a small
inline script opens the pop-up and refreshes the live part of each page every 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from whatsapp_helpdesk.sandbox.hubspot import (
    connections,
    constants,
    errors,
    messaging,
    routes_files,
)
from whatsapp_helpdesk.sandbox.hubspot.auth import SandboxDep
from whatsapp_helpdesk.sandbox.hubspot.clock import from_unix
from whatsapp_helpdesk.sandbox.hubspot.crm import tickets_of_contact
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Channel,
    ChannelAccount,
    Contact,
    Message,
    Portal,
    SandboxState,
    Thread,
    Ticket,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


# --- view models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileView:
    """A `FILE` attachment held in the File Manager: shown inline when it is an image,
    otherwise as a link; both go through a fresh signed URL (the file is PRIVATE)."""

    name: str
    href: str
    image: bool


@dataclass(frozen=True)
class MessageView:
    message: Message
    author: str
    status_label: str
    status_kind: str  # css modifier: received / sending / sent / read / failed
    failure: str | None
    files: tuple[FileView, ...] = ()
    other_attachments: tuple[dict[str, Any], ...] = ()

    @property
    def outgoing(self) -> bool:
        return self.message.direction == "OUTGOING"


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    thread: Thread | None
    contact: Contact | None
    channel: Channel | None
    account: ChannelAccount | None
    last: MessageView | None

    @property
    def stage(self) -> str:
        stage = self.ticket.properties.get("hs_pipeline_stage", "")
        return constants.TICKET_STAGE_LABELS.get(stage, stage or "—")

    @property
    def closed(self) -> bool:
        return self.ticket.properties.get("hs_pipeline_stage") == constants.STAGE_CLOSED

    @property
    def customer(self) -> str:
        if self.contact is not None:
            return self.contact.display_name
        if self.thread is not None:
            return self.thread.customer_name or self.thread.customer.value
        return "No contact"


def message_view(state: SandboxState, message: Message) -> MessageView:
    sender = message.senders[0] if message.senders else None
    author = (sender.name if sender and sender.name else None) or (
        sender.delivery_identifier.value if sender and sender.delivery_identifier else "Unknown"
    )
    status = message.status.status_type if message.status else None
    if message.direction == "INCOMING":
        label, kind = "Received", "received"
    elif status is None:
        label, kind = "Sending…", "sending"
    else:
        label, kind = {"SENT": ("Sent", "sent"), "READ": ("Read", "read"),
                       "FAILED": ("Failed", "failed")}.get(status, (status.title(), "sent"))
    failure = message.status.error_message if message.status and status == "FAILED" else None
    files, others = [], []
    for attachment in message.attachments:
        stored = state.files.get(str(attachment.get("fileId"))) if (
            attachment.get("type") == "FILE") else None
        if stored is None:
            others.append(attachment)
            continue
        files.append(FileView(
            name=str(attachment.get("name") or stored.name),
            href=f"/help-desk/{stored.portal_id}/files/{stored.id}",
            image=stored.content_type.startswith("image/"),
        ))
    return MessageView(message, author, label, kind, failure, tuple(files), tuple(others))


def ticket_row(state: SandboxState, ticket: Ticket) -> TicketRow:
    thread = state.threads.get(ticket.thread_id or "")
    contact = state.contacts.get(ticket.contact_ids[0]) if ticket.contact_ids else None
    messages = state.thread_messages(thread.id) if thread else []
    return TicketRow(
        ticket=ticket,
        thread=thread,
        contact=contact,
        channel=state.channels.get(thread.channel_id) if thread else None,
        account=state.channel_accounts.get(thread.channel_account_id) if thread else None,
        last=message_view(state, messages[-1]) if messages else None,
    )


class PageNotFound(Exception):
    """A help-desk page about a record that does not exist (rendered as an HTML 404)."""


def not_found_page(request: Request, what: str) -> Response:
    return _render(request, "not_found.html", {"portal": None, "what": what}, 404)


def install(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> Response:
        return not_found_page(request, str(exc))

    app.add_exception_handler(PageNotFound, not_found)


async def _portal(portal_id: int, sandbox: SandboxDep) -> Portal:
    """The portal of the page's path, or the page saying there is none (async: it reads the
    state on the event loop, as the routes do)."""
    portal = sandbox.state.portals.get(portal_id)
    if portal is None:
        raise PageNotFound(f"There is no HubSpot account {portal_id}.")
    return portal


PortalPage = Annotated[Portal, Depends(_portal)]


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    base = {
        "portals": list(sandbox.state.portals.values()),
        "now": sandbox.clock.now(),
        "clock_offset": sandbox.clock.offset_seconds,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


# --- pages ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, sandbox: SandboxDep) -> Response:
    channels = [c for c in sandbox.state.channels.values() if not c.archived]
    return _render(request, "home.html", {
        "portal": None, "channels": channels, "base_url": sandbox.base_url,
        "app_id": constants.APP_ID, "client_id": constants.CLIENT_ID,
    })


@router.get("/help-desk/{portal_id}/settings/channels", response_class=HTMLResponse)
async def channel_settings(portal: PortalPage, request: Request, sandbox: SandboxDep) -> Response:
    state = sandbox.state
    accounts = sorted(
        (a for a in state.portal_accounts(portal.id) if not a.archived), key=lambda a: int(a.id)
    )
    connected = state.staging_tokens.get(request.query_params.get("connected", ""))
    just_connected = (
        state.channel_accounts.get(connected.channel_account_id or "")
        if connected is not None and connected.portal_id == portal.id else None
    )
    return _render(request, "channels.html", {
        "portal": portal,
        "section": "settings",
        "accounts": accounts,
        "channels_by_id": state.channels,
        "inboxes": {i.id: i for i in portal.inboxes},
        "available": [c for c in state.channels.values() if not c.archived],
        "just_connected": just_connected,
        "pending_token": connected if connected is not None and just_connected is None else None,
    })


@router.post("/help-desk/{portal_id}/settings/channels/connect", response_class=HTMLResponse)
async def connect_channel(portal: PortalPage, request: Request, sandbox: SandboxDep) -> Response:
    """No-JS path of "Connect a channel": make the staging token, offer the pop-up link."""
    form = await request.form()
    try:
        started = connections.start_connection(
            sandbox, portal_id=portal.id, channel_id=str(form.get("channelId", "")),
            user_id=int(str(form.get("userId") or portal.agents[0].user_id)),
        )
    except errors.HubSpotApiError as exc:
        return _render(request, "connect.html", {
            "portal": portal, "section": "settings", "error": exc.body["message"],
            "started": None, "channel": None}, status=exc.status_code)
    channel = sandbox.state.channels[started.token.channel_id]
    return _render(request, "connect.html", {
        "portal": portal, "section": "settings", "error": None, "started": started,
        "channel": channel, "expires_at": from_unix(started.token.expires_at)})


@router.post("/help-desk/{portal_id}/settings/channels/{account_id}/disconnect")
async def disconnect_account(portal: PortalPage, account_id: str, sandbox: SandboxDep) -> Response:
    account = _of_portal(sandbox.state.channel_accounts, portal.id, account_id, "channel account")
    connections.archive_account(sandbox, account)
    return RedirectResponse(f"/help-desk/{portal.id}/settings/channels", status_code=303)


@router.get("/help-desk/{portal_id}/tickets", response_class=HTMLResponse)
async def ticket_list(portal: PortalPage, request: Request, sandbox: SandboxDep) -> Response:
    state = sandbox.state
    rows = [ticket_row(state, t) for t in state.portal_tickets(portal.id)]
    rows.sort(key=lambda r: (r.last.message.created_at if r.last else r.ticket.created_at),
              reverse=True)
    return _render(request, "tickets.html", {"portal": portal, "section": "tickets",
                                             "rows": rows})


class _PortalRecord(Protocol):
    portal_id: int


RecordT = TypeVar("RecordT", bound=_PortalRecord)


def _of_portal(records: dict[str, RecordT], portal_id: int, record_id: str, what: str) -> RecordT:
    """The record of this portal, or the page saying there is none."""
    found = records.get(record_id)
    if found is None or found.portal_id != portal_id:
        raise PageNotFound(f"There is no {what} {record_id}.")
    return found


def _portal_ticket(sandbox: Sandbox, portal_id: int, ticket_id: str) -> Ticket:
    return _of_portal(sandbox.state.tickets, portal_id, ticket_id, "ticket")


@router.get("/help-desk/{portal_id}/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_view(
    portal: PortalPage, ticket_id: str, request: Request, sandbox: SandboxDep
) -> Response:
    state = sandbox.state
    ticket = _portal_ticket(sandbox, portal.id, ticket_id)
    row = ticket_row(state, ticket)
    thread = row.thread
    messages = [message_view(state, m) for m in state.thread_messages(thread.id)] if thread else []
    channel_accounts = sorted(
        (a for a in state.portal_accounts(portal.id)
         if thread is not None and a.channel_id == thread.channel_id and a.active),
        key=lambda a: int(a.id),
    )
    return _render(request, "ticket.html", {
        "portal": portal, "section": "tickets", "row": row, "messages": messages,
        "channel_accounts": channel_accounts, "error": request.query_params.get("error"),
    })


@router.get("/help-desk/{portal_id}/files/{file_id}")
async def file_link(portal: PortalPage, file_id: str, sandbox: SandboxDep) -> Response:
    """An attachment's link in the ticket: a short-lived signed URL to the PRIVATE file."""
    stored = _of_portal(sandbox.state.files, portal.id, file_id, "file")
    url, _ = routes_files.signed_url(sandbox, stored, 300)
    return RedirectResponse(url, status_code=302)


@router.post("/help-desk/{portal_id}/tickets/{ticket_id}/reply")
async def ticket_reply(
    portal_id: int, ticket_id: str, request: Request, sandbox: SandboxDep
) -> Response:
    """The reply form of the ticket view (R21): same path as the replies control."""
    ticket = _portal_ticket(sandbox, portal_id, ticket_id)
    if ticket.thread_id is None:
        raise PageNotFound(f"There is no ticket {ticket_id}.")
    form = await request.form()
    reply = messaging.AgentReplyIn(
        text=str(form.get("text", "")),
        channelAccountId=str(form.get("channelAccountId") or "") or None,
        agentId=int(str(form.get("agentId") or 1)),
    )
    target = f"/help-desk/{portal_id}/tickets/{ticket_id}"
    try:
        messaging.agent_reply(sandbox, portal_id=portal_id, thread_id=ticket.thread_id,
                              reply=reply)
    except errors.HubSpotApiError as exc:
        return RedirectResponse(f"{target}?{urlencode({'error': exc.body['message']})}",
                                status_code=303)
    return RedirectResponse(f"{target}#composer", status_code=303)


@router.post("/help-desk/{portal_id}/tickets/{ticket_id}/close")
async def ticket_close(portal_id: int, ticket_id: str, sandbox: SandboxDep) -> Response:
    ticket = _portal_ticket(sandbox, portal_id, ticket_id)
    thread = sandbox.state.threads.get(ticket.thread_id or "")
    if thread is not None:
        messaging.close(sandbox, thread)
    return RedirectResponse(f"/help-desk/{portal_id}/tickets/{ticket_id}", status_code=303)


@router.get("/help-desk/{portal_id}/contacts/{contact_id}", response_class=HTMLResponse)
async def contact_view(
    portal: PortalPage, contact_id: str, request: Request, sandbox: SandboxDep
) -> Response:
    state = sandbox.state
    contact = _of_portal(state.contacts, portal.id, contact_id, "contact")
    threads = [t for t in state.threads.values() if t.contact_id == contact.id]
    messages = sorted(
        (m for t in threads for m in state.thread_messages(t.id)),
        key=lambda m: (m.created_at, m.sequence),
    )
    return _render(request, "contact.html", {
        "portal": portal, "section": "contacts", "contact": contact,
        "tickets": [ticket_row(state, t) for t in tickets_of_contact(state, contact)],
        "messages": [message_view(state, m) for m in messages],
    })


@router.get("/help-desk/{portal_id}/contacts", response_class=HTMLResponse)
async def contact_list(portal: PortalPage, request: Request, sandbox: SandboxDep) -> Response:
    contacts = sorted(sandbox.state.portal_contacts(portal.id), key=lambda c: int(c.id))
    return _render(request, "contacts.html", {"portal": portal, "section": "contacts",
                                              "contacts": contacts})

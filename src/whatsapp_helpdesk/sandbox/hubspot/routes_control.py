"""`/_sandbox/...`: controls and inspection for tests, the demo and the lead's CLI.

These are not HubSpot APIs; they play the parts a person plays inside HubSpot (an admin
connecting a channel, an agent replying in a ticket) and expose the state to assert on.
Errors use the same JSON body as the API.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from whatsapp_helpdesk.sandbox.hubspot import connections, constants, errors, messaging
from whatsapp_helpdesk.sandbox.hubspot.auth import SandboxDep
from whatsapp_helpdesk.sandbox.hubspot.clock import from_unix, to_iso
from whatsapp_helpdesk.sandbox.hubspot.config import ConfigError, apply_changes
from whatsapp_helpdesk.sandbox.hubspot.crm import tickets_of_contact
from whatsapp_helpdesk.sandbox.hubspot.parsing import json_object, parse_body
from whatsapp_helpdesk.sandbox.hubspot.routes_oauth import revoke_refresh
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.serializers import account_json, channel_json, message_json
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Agent,
    Inbox,
    Message,
    Portal,
    SandboxState,
    Ticket,
)
from whatsapp_helpdesk.sandbox.hubspot.webhooks import delivery_json
from whatsapp_helpdesk.sandbox.kit.faults import Fault, fault_json
from whatsapp_helpdesk.sandbox.kit.runtime import SnapshotBusy

router = APIRouter(prefix=constants.CONTROL_PREFIX, include_in_schema=False)


class ChannelConnectionIn(BaseModel):
    channelId: str
    userId: int = 1


class ClockIn(BaseModel):
    advance_seconds: float | None = None
    offset_seconds: float | None = None


class FaultIn(BaseModel):
    path_prefix: str = Field(min_length=1)
    method: str | None = None
    mode: Literal["status", "rate_limit", "slow", "drop"]
    status: int = Field(default=503, ge=100, le=599)
    delay_seconds: float = Field(default=2.0, ge=0)
    times: int | None = Field(default=1, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)


class AccountAdminIn(BaseModel):
    """What an admin can do to a connected account in HubSpot's settings (R6)."""

    authorized: bool | None = None
    archived: Literal[True] | None = None


def portal_or_404(sandbox: Sandbox, portal_id: int) -> Portal:
    portal = sandbox.state.portals.get(portal_id)
    if portal is None:
        raise errors.not_found(f"Portal {portal_id} not found")
    return portal


# --- whole sandbox ------------------------------------------------------------------------------


@router.post("/reset")
async def reset(sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.reset()
    return {"status": "reset", "now": to_iso(sandbox.clock.now())}


@router.post("/snapshot", status_code=201)
async def snapshot(sandbox: SandboxDep) -> dict[str, Any]:
    """A sandbox extension: keep the state (and the clock's offset) to come back to with
    `/_sandbox/restore`; 409 while webhook deliveries are in flight."""
    try:
        return {"snapshot": sandbox.snapshot(), "now": to_iso(sandbox.clock.now())}
    except SnapshotBusy as busy:
        raise errors.conflict(f"{busy}: wait for them, or reset") from busy


class RestoreIn(BaseModel):
    snapshot: str


@router.post("/restore")
async def restore(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """A sandbox extension: back to a snapshot, as `/_sandbox/reset` goes back to the seed
    (webhook deliveries in flight cancelled; `webhook_transport`, set from Python, stays)."""
    wanted = await parse_body(request, RestoreIn)
    try:
        sandbox.restore(wanted.snapshot)
    except KeyError:
        raise errors.not_found(f"Snapshot {wanted.snapshot} not found") from None
    return {"status": "restored", "snapshot": wanted.snapshot,
            "now": to_iso(sandbox.clock.now())}


@router.get("/config")
async def get_config(sandbox: SandboxDep) -> dict[str, Any]:
    return sandbox.config.as_json()


@router.post("/config")
async def set_config(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    try:
        apply_changes(sandbox.config, await json_object(request))
    except ConfigError as exc:
        raise errors.validation_error(str(exc)) from exc
    return sandbox.config.as_json()


def clock_json(sandbox: Sandbox) -> dict[str, Any]:
    return {"now": to_iso(sandbox.clock.now()), "offset_seconds": sandbox.clock.offset_seconds}


@router.get("/clock")
async def get_clock(sandbox: SandboxDep) -> dict[str, Any]:
    return clock_json(sandbox)


@router.post("/clock")
async def set_clock(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    body = await parse_body(request, ClockIn)
    if (body.advance_seconds is None) == (body.offset_seconds is None):
        raise errors.validation_error("Give exactly one of advance_seconds or offset_seconds")
    if body.advance_seconds is not None:
        sandbox.clock.advance(body.advance_seconds)
    else:
        sandbox.clock.set_offset(float(body.offset_seconds or 0.0))
    return clock_json(sandbox)


@router.post("/faults", status_code=201)
async def add_fault(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    body = await parse_body(request, FaultIn)
    fault = Fault(
        id=sandbox.state.fault_ids.next(),
        path_prefix=body.path_prefix,
        method=body.method.upper() if body.method else None,
        mode=body.mode,
        status=body.status,
        delay_seconds=body.delay_seconds,
        times=body.times,
        probability=body.probability,
    )
    sandbox.state.faults.append(fault)
    return fault_json(fault)


@router.get("/faults")
async def list_faults(sandbox: SandboxDep) -> dict[str, Any]:
    return {"faults": [fault_json(f) for f in sandbox.state.faults]}


@router.delete("/faults")
async def clear_faults(sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.state.faults.clear()
    return {"faults": []}


@router.get("/webhook-deliveries")
async def list_deliveries(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """Every webhook event, oldest first; filters: `event_type`, `portal_id`, `state`."""
    params = request.query_params
    found = [
        d for d in sandbox.state.deliveries
        if params.get("event_type") in (None, d.event_type)
        and params.get("portal_id") in (None, str(d.portal_id))
        and params.get("state") in (None, d.state)
    ]
    return {"deliveries": [delivery_json(d) for d in found]}


@router.post("/webhook-deliveries/{delivery_id}/replay", status_code=202)
async def replay_delivery(delivery_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    delivery = next((d for d in sandbox.state.deliveries if d.id == delivery_id), None)
    if delivery is None:
        raise errors.not_found(f"Delivery {delivery_id} not found")
    if not delivery.url:
        raise errors.validation_error("The channel has no webhookUrl")
    sandbox.webhooks.replay(delivery)
    return delivery_json(delivery)


@router.get("/channels")
async def list_channels(sandbox: SandboxDep) -> dict[str, Any]:
    """Registered custom channels (no developer key needed here)."""
    return {"channels": [
        {**channel_json(c), "archived": c.archived} for c in sandbox.state.channels.values()
    ]}


@router.get("/portals")
async def list_portals(sandbox: SandboxDep) -> dict[str, Any]:
    return {"portals": [
        {
            "id": p.id,
            "name": p.name,
            "inboxes": [{"id": i.id, "name": i.name, "type": i.type} for i in p.inboxes],
            "agents": [
                {"id": a.user_id, "name": a.name, "email": a.email, "actorId": a.actor_id}
                for a in p.agents
            ],
        }
        for p in sandbox.state.portals.values()
    ]}


@router.post("/portals", status_code=201)
async def add_portal(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """A sandbox extension: one more HubSpot account (`{id, name}`), with an inbox, a help
    desk and one agent, for tests and benchmarks that need many portals (each has its own
    rate-limit window, as in HubSpot). Gone at the next reset."""
    body = await json_object(request)
    portal_id, name = body.get("id"), body.get("name")
    if not isinstance(portal_id, int) or isinstance(portal_id, bool) or portal_id < 1:
        raise errors.validation_error("id must be a positive integer")
    if not isinstance(name, str) or not name.strip():
        raise errors.validation_error("name must be a non-empty string")
    if portal_id in sandbox.state.portals:
        raise errors.conflict(f"Portal {portal_id} already exists")
    now = sandbox.clock.now()
    sandbox.state.portals[portal_id] = Portal(
        id=portal_id, name=name, domain=f"portal-{portal_id}.example",
        inboxes=[Inbox(id=f"{portal_id}0", name="Inbox", type="INBOX", created_at=now),
                 Inbox(id=f"{portal_id}1", name="Help Desk", type="HELP_DESK", created_at=now)],
        agents=[Agent(user_id=portal_id * 10 + 1, name=f"{name} Agent",
                      email=f"agent@portal-{portal_id}.example")],
    )
    return {"id": portal_id, "name": name}


# --- one portal ---------------------------------------------------------------------------


@router.post("/portals/{portal_id}/channel-connections", status_code=201)
async def start_channel_connection(
    portal_id: int, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    """An admin clicks Settings > Help Desk > Channels > Connect a channel > <channel> (R2)."""
    portal_or_404(sandbox, portal_id)
    body = await parse_body(request, ChannelConnectionIn)
    started = connections.start_connection(
        sandbox, portal_id=portal_id, channel_id=body.channelId, user_id=body.userId
    )
    return {
        "accountToken": started.token.account_token,
        "popupUrl": started.popup_url,
        "returnUrl": started.return_url,
        "inboxId": started.token.inbox_id,
        "expiresAt": to_iso(from_unix(started.token.expires_at)),
    }


@router.post("/portals/{portal_id}/threads/{thread_id}/replies", status_code=201)
async def agent_reply(
    portal_id: int, thread_id: str, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    """An agent sends a reply from the ticket (R21); returns the `PublicConversationsMessage`."""
    portal_or_404(sandbox, portal_id)
    reply = await parse_body(request, messaging.AgentReplyIn)
    message = messaging.agent_reply(
        sandbox, portal_id=portal_id, thread_id=thread_id, reply=reply
    )
    return message_json(message)


@router.post("/portals/{portal_id}/threads/{thread_id}/close")
async def close_thread(portal_id: int, thread_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    """An agent closes the ticket: thread CLOSED, ticket stage Closed."""
    portal_or_404(sandbox, portal_id)
    thread = messaging.portal_thread(sandbox, portal_id, thread_id)
    messaging.close(sandbox, thread)
    return {"threadId": thread.id, "status": thread.status}


@router.get("/portals/{portal_id}/tickets")
async def inspect_tickets(portal_id: int, sandbox: SandboxDep) -> dict[str, Any]:
    portal_or_404(sandbox, portal_id)
    tickets = sorted(sandbox.state.portal_tickets(portal_id), key=lambda t: int(t.id))
    return {"tickets": [ticket_summary(sandbox.state, t) for t in tickets]}


def ticket_summary(state: SandboxState, ticket: Ticket) -> dict[str, Any]:
    thread = state.threads.get(ticket.thread_id or "")
    stage = ticket.properties.get("hs_pipeline_stage", "")
    if thread is not None:
        status = thread.status
    else:
        status = "CLOSED" if stage == constants.STAGE_CLOSED else "OPEN"
    messages = state.thread_messages(thread.id) if thread is not None else []
    return {
        "id": ticket.id,
        "subject": ticket.properties.get("subject", ""),
        "status": status,
        "stage": constants.TICKET_STAGE_LABELS.get(stage, stage),
        "pipeline": ticket.properties.get("hs_pipeline"),
        "contactId": ticket.contact_ids[0] if ticket.contact_ids else None,
        "contactIds": list(ticket.contact_ids),
        "threadId": ticket.thread_id,
        "channelId": thread.channel_id if thread else None,
        "channelAccountId": thread.channel_account_id if thread else None,
        "integrationThreadId": thread.integration_thread_id if thread else None,
        "customer": thread.customer.as_json() if thread else None,
        "createdAt": to_iso(ticket.created_at),
        "messages": [message_summary(m) for m in messages],
    }


def message_summary(message: Message) -> dict[str, Any]:
    failure = None
    if message.status is not None and message.status.status_type == "FAILED":
        failure = {"errorMessage": message.status.error_message}
    return {
        "id": message.id,
        "direction": message.direction,
        "text": message.text,
        "timestamp": to_iso(message.created_at),
        "status": message.status.status_type if message.status else None,
        "failureDetails": failure,
        "senders": [s.as_json() for s in message.senders],
        "recipients": [r.as_json() for r in message.recipients],
        "channelAccountId": message.channel_account_id,
        "attachments": message.attachments,
    }


@router.get("/portals/{portal_id}/contacts")
async def inspect_contacts(portal_id: int, sandbox: SandboxDep) -> dict[str, Any]:
    portal_or_404(sandbox, portal_id)
    state = sandbox.state
    contacts = sorted(state.portal_contacts(portal_id), key=lambda c: int(c.id))
    return {"contacts": [
        {
            "id": c.id,
            "name": c.display_name,
            "properties": c.properties,
            "ticketIds": [t.id for t in tickets_of_contact(state, c)],
            "threadIds": [t.id for t in state.threads.values() if t.contact_id == c.id],
            "createdAt": to_iso(c.created_at),
        }
        for c in contacts
    ]}


@router.get("/portals/{portal_id}/channel-accounts")
async def inspect_accounts(portal_id: int, sandbox: SandboxDep) -> dict[str, Any]:
    portal_or_404(sandbox, portal_id)
    accounts = sorted(sandbox.state.portal_accounts(portal_id), key=lambda a: int(a.id))
    return {"channelAccounts": [
        {**account_json(a), "portalId": a.portal_id,
         "channelName": sandbox.state.channels[a.channel_id].name}
        for a in accounts
    ]}


@router.patch("/portals/{portal_id}/channel-accounts/{account_id}")
async def admin_update_account(
    portal_id: int, account_id: str, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    """An admin de-authorises or disconnects (archives) an account in HubSpot (R6)."""
    portal_or_404(sandbox, portal_id)
    account = sandbox.state.channel_accounts.get(account_id)
    if account is None or account.portal_id != portal_id:
        raise errors.not_found(f"Channel account {account_id} not found")
    body = await parse_body(request, AccountAdminIn)
    if body.authorized is not None:
        connections.update_account(sandbox, account, name=None, authorized=body.authorized)
    if body.archived:
        connections.archive_account(sandbox, account)
    return account_json(account)


@router.post("/portals/{portal_id}/oauth/revoke")
async def revoke_portal_tokens(portal_id: int, sandbox: SandboxDep) -> dict[str, Any]:
    """The app is uninstalled from the portal: every token stops working (R8)."""
    portal_or_404(sandbox, portal_id)
    revoked = 0
    for refresh in sandbox.state.refresh_tokens.values():
        if refresh.portal_id == portal_id and not refresh.revoked:
            revoke_refresh(sandbox, refresh)
            revoked += 1
    return {"revokedRefreshTokens": revoked}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
async def unknown_control(rest: str) -> Response:
    return JSONResponse(
        errors.error_body(f"Unknown sandbox control /_sandbox/{rest}", "OBJECT_NOT_FOUND"),
        status_code=404,
    )

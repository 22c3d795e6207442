"""CRM contacts and tickets (crm-{contacts,tickets}-v3.json; mounted again at
`/crm/objects/2026-03/...` for crm-*-2026-03.json by versions.py, R50)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from whatsapp_helpdesk.sandbox.hubspot import crm, errors
from whatsapp_helpdesk.sandbox.hubspot.auth import PortalAuth, SandboxDep, requires
from whatsapp_helpdesk.sandbox.hubspot.constants import (
    SCOPE_CONTACTS_READ,
    SCOPE_CONTACTS_WRITE,
    SCOPE_TICKETS,
)
from whatsapp_helpdesk.sandbox.hubspot.paging import forward_page
from whatsapp_helpdesk.sandbox.hubspot.parsing import json_object, parse_body
from whatsapp_helpdesk.sandbox.hubspot.serializers import crm_object_json
from whatsapp_helpdesk.sandbox.hubspot.state import Contact, SandboxState, Ticket

router = APIRouter()

CONTACTS_READ = requires(SCOPE_CONTACTS_READ)  # the spec's security: read only
CONTACTS_WRITE = requires(SCOPE_CONTACTS_WRITE)
TICKETS = requires(SCOPE_TICKETS)
PropertyValue = str | int | float | bool | None


class CreateIn(BaseModel):
    """`SimplePublicObjectInputForCreate` (associations optional in practice)."""

    properties: dict[str, PropertyValue]
    associations: list[dict[str, Any]] = Field(default_factory=list)

    def text_properties(self) -> dict[str, str]:
        return _as_text(self.properties)


class UpdateIn(BaseModel):
    """`SimplePublicObjectInput`."""

    properties: dict[str, PropertyValue]

    def text_properties(self) -> dict[str, str]:
        return _as_text(self.properties)


def _as_text(properties: dict[str, PropertyValue]) -> dict[str, str]:
    def text(value: PropertyValue) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return {name: text(value) for name, value in properties.items()}


def _listed(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, repeated or comma-separated."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def _contact_json(
    state: SandboxState, contact: Contact, request: Request | None,
    properties: list[str] | None = None,
) -> dict[str, Any]:
    wanted = properties if properties is not None else (
        _listed(request, "properties") if request else []
    )
    associations = None
    if request is not None and "tickets" in _listed(request, "associations"):
        associations = {"tickets": crm.contact_associations(state, contact)}
    return crm_object_json(
        contact, properties=wanted, default_properties=crm.CONTACT_DEFAULT_PROPERTIES,
        associations=associations,
    )


def _ticket_json(
    ticket: Ticket, request: Request | None, properties: list[str] | None = None
) -> dict[str, Any]:
    wanted = properties if properties is not None else (
        _listed(request, "properties") if request else []
    )
    associations = None
    if request is not None and "contacts" in _listed(request, "associations"):
        associations = {"contacts": crm.ticket_associations(ticket)}
    return crm_object_json(
        ticket, properties=wanted, default_properties=crm.TICKET_DEFAULT_PROPERTIES,
        associations=associations,
    )


async def _search_response(
    request: Request, state: SandboxState, records: list[Contact] | list[Ticket]
) -> dict[str, Any]:
    body = await json_object(request)
    found, total, after = crm.search(records, body)
    properties = [str(p) for p in body.get("properties") or []]
    results = [
        _contact_json(state, r, None, properties) if isinstance(r, Contact)
        else _ticket_json(r, None, properties)
        for r in found
    ]
    response: dict[str, Any] = {"total": total, "results": results}
    if after is not None:
        response["paging"] = {"next": {"after": after}}
    return response


def _written_json(record: Contact | Ticket) -> dict[str, Any]:
    """A created or updated object as HubSpot answers the write: every property it holds."""
    defaults = (crm.CONTACT_DEFAULT_PROPERTIES if isinstance(record, Contact)
                else crm.TICKET_DEFAULT_PROPERTIES)
    return crm_object_json(record, properties=list(record.properties),
                           default_properties=defaults)


# --- contacts -----------------------------------------------------------------------------------

CONTACTS = "/crm/v3/objects/contacts"


@router.get(CONTACTS)
async def list_contacts(
    request: Request, sandbox: SandboxDep, auth: PortalAuth = CONTACTS_READ
) -> Any:
    contacts = sorted(sandbox.state.portal_contacts(auth.portal_id), key=lambda c: int(c.id))
    return forward_page([_contact_json(sandbox.state, c, request) for c in contacts], request)


@router.post(CONTACTS)
async def create_contact(
    request: Request, sandbox: SandboxDep, auth: PortalAuth = CONTACTS_WRITE
) -> Response:
    body = await parse_body(request, CreateIn)
    contact = crm.create_contact(sandbox, auth.portal_id, body.text_properties())
    return JSONResponse(_written_json(contact), status_code=201)


@router.post(CONTACTS + "/search")
async def search_contacts(
    request: Request, sandbox: SandboxDep, auth: PortalAuth = CONTACTS_READ
) -> Any:
    return await _search_response(request, sandbox.state,
                                  sandbox.state.portal_contacts(auth.portal_id))


def _path_contact(
    contact_id: str, request: Request, state: SandboxState, auth: PortalAuth
) -> Contact:
    """The contact a path names: by id, or by the property `?idProperty=` says (email)."""
    return crm.contact_by_id_property(
        state, auth.portal_id, contact_id, request.query_params.get("idProperty")
    )


@router.get(CONTACTS + "/{contact_id}")
async def get_contact(
    contact_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = CONTACTS_READ
) -> Any:
    contact = _path_contact(contact_id, request, sandbox.state, auth)
    return _contact_json(sandbox.state, contact, request)


@router.patch(CONTACTS + "/{contact_id}")
async def patch_contact(
    contact_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = CONTACTS_WRITE
) -> Any:
    contact = _path_contact(contact_id, request, sandbox.state, auth)
    body = await parse_body(request, UpdateIn)
    changes = body.text_properties()
    email = changes.get("email")
    if email:
        other = crm.find_contact_by_email(sandbox.state, auth.portal_id, email)
        if other is not None and other.id != contact.id:
            raise errors.conflict(f"Contact already exists. Existing ID: {other.id}")
    crm.update_properties(sandbox, contact, changes)
    return _written_json(contact)


# --- tickets ------------------------------------------------------------------------------------

TICKETS_PATH = "/crm/v3/objects/tickets"


@router.get(TICKETS_PATH)
async def list_tickets(request: Request, sandbox: SandboxDep, auth: PortalAuth = TICKETS) -> Any:
    tickets = sorted(sandbox.state.portal_tickets(auth.portal_id), key=lambda t: int(t.id))
    return forward_page([_ticket_json(t, request) for t in tickets], request)


@router.post(TICKETS_PATH)
async def create_ticket(request: Request, sandbox: SandboxDep, auth: PortalAuth = TICKETS) -> Any:
    """Native tickets (R35). HubSpot requires a pipeline stage; the default pipeline is "0"."""
    body = await parse_body(request, CreateIn)
    properties = body.text_properties()
    if not properties.get("hs_pipeline_stage"):
        raise errors.validation_error("Property values were not valid: hs_pipeline_stage is "
                                      "required")
    properties.setdefault("hs_pipeline", "0")
    contact_ids = crm.contact_ids_from_associations(
        sandbox.state, auth.portal_id, body.associations
    )
    ticket = crm.create_ticket(sandbox, auth.portal_id, properties, contact_ids=contact_ids)
    return JSONResponse(_written_json(ticket), status_code=201)


@router.post(TICKETS_PATH + "/search")
async def search_tickets(request: Request, sandbox: SandboxDep, auth: PortalAuth = TICKETS) -> Any:
    return await _search_response(request, sandbox.state,
                                  sandbox.state.portal_tickets(auth.portal_id))


@router.get(TICKETS_PATH + "/{ticket_id}")
async def get_ticket(
    ticket_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = TICKETS
) -> Any:
    return _ticket_json(crm.portal_ticket(sandbox.state, auth.portal_id, ticket_id), request)


@router.patch(TICKETS_PATH + "/{ticket_id}")
async def patch_ticket(
    ticket_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = TICKETS
) -> Any:
    ticket = crm.portal_ticket(sandbox.state, auth.portal_id, ticket_id)
    body = await parse_body(request, UpdateIn)
    crm.update_properties(sandbox, ticket, body.text_properties())
    return _written_json(ticket)

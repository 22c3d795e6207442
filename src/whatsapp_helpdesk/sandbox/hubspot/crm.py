"""CRM contacts and tickets of a portal (the slice of HubSpot's CRM the bridge touches)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from whatsapp_helpdesk.sandbox.hubspot import constants, errors
from whatsapp_helpdesk.sandbox.hubspot.clock import to_iso
from whatsapp_helpdesk.sandbox.hubspot.phone import phone_digits, same_phone
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.seed import crm_properties
from whatsapp_helpdesk.sandbox.hubspot.state import Contact, SandboxState, Ticket

CONTACT_DEFAULT_PROPERTIES = (
    "firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id",
)
TICKET_DEFAULT_PROPERTIES = (
    "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
    "hs_ticket_category", "createdate", "hs_lastmodifieddate", "hs_object_id",
)
# [INF] Searching a phone property compares digits only, so "+33 6 12 34 56 78" finds
# "+33612345678". HubSpot's own normalisation rules are not documented in our sources.
RecordT = TypeVar("RecordT", Contact, Ticket)
PHONE_PROPERTIES = frozenset({"phone", "mobilephone", "hs_whatsapp_phone_number"})
SEARCH_MAX_LIMIT = 200


# --- contacts --------------------------------------------------------------------------------


def create_contact(sandbox: Sandbox, portal_id: int, properties: dict[str, str]) -> Contact:
    state = sandbox.state
    email = properties.get("email")
    if email:
        existing = find_contact_by_email(state, portal_id, email)
        if existing is not None:
            raise errors.conflict(f"Contact already exists. Existing ID: {existing.id}")
    contact = _new_record(sandbox, Contact, state.contact_ids.next(), portal_id, properties)
    state.contacts[contact.id] = contact
    return contact


def _new_record(sandbox: Sandbox, kind: type[RecordT], record_id: str, portal_id: int,
                properties: dict[str, str]) -> RecordT:
    """A CRM object as HubSpot creates it: the given properties plus its id and the time."""
    now = sandbox.clock.now()
    return kind(id=record_id, portal_id=portal_id, created_at=now, updated_at=now,
                properties=crm_properties(record_id, _clean(properties), now))


def update_properties(sandbox: Sandbox, record: Contact | Ticket, changes: dict[str, str]) -> None:
    """Set properties. A contact's new phone never moves its ticket associations (R30)."""
    now = sandbox.clock.now()
    record.properties.update(_clean(changes))
    record.properties["lastmodifieddate"] = to_iso(now)
    record.properties["hs_lastmodifieddate"] = to_iso(now)
    record.updated_at = now


def _clean(properties: dict[str, str]) -> dict[str, str]:
    protected = {"hs_object_id", "createdate"}
    return {k: v for k, v in properties.items() if k not in protected}


def find_contact_by_email(state: SandboxState, portal_id: int, email: str) -> Contact | None:
    wanted = email.strip().lower()
    return next(
        (c for c in state.portal_contacts(portal_id)
         if c.properties.get("email", "").strip().lower() == wanted),
        None,
    )


def find_contact_by_phone(state: SandboxState, portal_id: int, phone: str) -> Contact | None:
    """Oldest contact whose phone or mobile phone has the same digits."""
    for contact in sorted(state.portal_contacts(portal_id), key=lambda c: int(c.id)):
        for name in PHONE_PROPERTIES:
            value = contact.properties.get(name)
            if value and same_phone(value, phone):
                return contact
    return None


class _CrmObject(Protocol):
    portal_id: int
    archived: bool


CrmObjectT = TypeVar("CrmObjectT", bound=_CrmObject)


def _portal_object(objects: dict[str, CrmObjectT], portal_id: int, object_id: str) -> CrmObjectT:
    """A live object of this portal, or HubSpot's 404 (the same for every object type)."""
    found = objects.get(object_id)
    if found is None or found.portal_id != portal_id or found.archived:
        raise errors.not_found(f"Object not found.  objectId are usually numeric. {object_id}")
    return found


def portal_contact(state: SandboxState, portal_id: int, contact_id: str) -> Contact:
    return _portal_object(state.contacts, portal_id, contact_id)


def contact_by_id_property(
    state: SandboxState, portal_id: int, value: str, id_property: str | None
) -> Contact:
    if id_property in (None, "", "hs_object_id"):
        return portal_contact(state, portal_id, value)
    if id_property == "email":
        found = find_contact_by_email(state, portal_id, value)
        if found is not None:
            return found
    raise errors.not_found(f"Object not found: {id_property}={value}")


def tickets_of_contact(state: SandboxState, contact: Contact) -> list[Ticket]:
    return [t for t in state.portal_tickets(contact.portal_id) if contact.id in t.contact_ids]


def split_name(full_name: str | None) -> dict[str, str]:
    """firstname/lastname from a display name ("Jane Doe" -> Jane / Doe)."""
    words = (full_name or "").split()
    if not words:
        return {}
    if len(words) == 1:
        return {"firstname": words[0]}
    return {"firstname": " ".join(words[:-1]), "lastname": words[-1]}


# --- search ------------------------------------------------------------------------------------


def search(
    records: Sequence[Contact | Ticket], body: dict[str, Any]
) -> tuple[list[Contact | Ticket], int, str | None]:
    """Apply a `PublicObjectSearchRequest`: groups are ORed, filters inside a group ANDed.

    Returns (page, total, next `after` cursor or None).
    """
    groups = body.get("filterGroups") or []
    matched = [
        r for r in sorted(records, key=lambda r: int(r.id))
        if not groups or any(_group_matches(r, g) for g in groups)
    ]
    limit = min(int(body.get("limit") or 10), SEARCH_MAX_LIMIT)
    start = int(body.get("after") or 0)
    page = matched[start:start + limit]
    following = start + limit
    return list(page), len(matched), (str(following) if following < len(matched) else None)


def _group_matches(record: Contact | Ticket, group: dict[str, Any]) -> bool:
    return all(_filter_matches(record, f) for f in group.get("filters") or [])


def _filter_matches(record: Contact | Ticket, condition: dict[str, Any]) -> bool:
    name = str(condition.get("propertyName", ""))
    operator = str(condition.get("operator", "EQ"))
    actual = record.properties.get(name)
    if name == "hs_object_id":
        actual = record.id
    if operator == "HAS_PROPERTY":
        return bool(actual)
    if operator == "NOT_HAS_PROPERTY":
        return not actual
    if actual is None:
        return operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
    key = _comparable(name)
    value = condition.get("value")
    values = [str(v) for v in condition.get("values") or []]
    if operator == "EQ":
        return key(actual) == key(str(value))
    if operator == "NEQ":
        return key(actual) != key(str(value))
    if operator == "IN":
        return key(actual) in {key(v) for v in values}
    if operator == "NOT_IN":
        return key(actual) not in {key(v) for v in values}
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(value).strip("*").lower()
        found = token in actual.lower()
        return found if operator == "CONTAINS_TOKEN" else not found
    return _ordered(actual, operator, value, condition.get("highValue"))


def _comparable(name: str) -> Callable[[str], str]:
    if name in PHONE_PROPERTIES:
        return phone_digits
    return lambda text: text.strip().lower()


def _ordered(actual: str, operator: str, value: Any, high: Any) -> bool:
    def number(text: Any) -> float | str:
        try:
            return float(text)
        except (TypeError, ValueError):
            return str(text)

    left, right = number(actual), number(value)
    if type(left) is not type(right):
        left, right = str(left), str(right)
    comparisons: dict[str, Callable[[], object]] = {
        "GT": lambda: left > right,  # type: ignore[operator]
        "GTE": lambda: left >= right,  # type: ignore[operator]
        "LT": lambda: left < right,  # type: ignore[operator]
        "LTE": lambda: left <= right,  # type: ignore[operator]
        "BETWEEN": lambda: str(value) <= actual <= str(high),
    }
    check = comparisons.get(operator)
    if check is None:
        raise errors.validation_error(f"Unsupported filter operator {operator}")
    return bool(check())


# --- tickets ------------------------------------------------------------------------------------


def create_ticket(
    sandbox: Sandbox,
    portal_id: int,
    properties: dict[str, str],
    *,
    contact_ids: list[str],
    thread_id: str | None = None,
) -> Ticket:
    state = sandbox.state
    ticket = _new_record(sandbox, Ticket, state.ticket_ids.next(), portal_id, properties)
    ticket.contact_ids = list(dict.fromkeys(contact_ids))
    ticket.thread_id = thread_id
    state.tickets[ticket.id] = ticket
    return ticket


def portal_ticket(state: SandboxState, portal_id: int, ticket_id: str) -> Ticket:
    return _portal_object(state.tickets, portal_id, ticket_id)


def contact_ids_from_associations(
    state: SandboxState, portal_id: int, associations: list[dict[str, Any]]
) -> list[str]:
    """Contacts named in a ticket-create `associations` list (only ticket→contact is known).

    R31: tickets are never associated with companies, so any other type is refused.
    """
    found: list[str] = []
    for association in associations:
        target = str((association.get("to") or {}).get("id", ""))
        types = association.get("types") or []
        type_ids = {t.get("associationTypeId") for t in types}
        if type_ids != {constants.ASSOCIATION_TICKET_TO_CONTACT}:
            raise errors.validation_error(
                f"Unsupported association types {sorted(map(str, type_ids))}; the sandbox "
                f"knows ticket-to-contact ({constants.ASSOCIATION_TICKET_TO_CONTACT}) only"
            )
        contact = state.contacts.get(target)
        if contact is None or contact.portal_id != portal_id:
            raise errors.validation_error(f"Association target contact {target} not found")
        found.append(contact.id)
    return found


def ticket_associations(ticket: Ticket) -> list[dict[str, str]]:
    return [{"id": cid, "type": "ticket_to_contact"} for cid in ticket.contact_ids]


def contact_associations(state: SandboxState, contact: Contact) -> list[dict[str, str]]:
    return [
        {"id": t.id, "type": "contact_to_ticket"} for t in tickets_of_contact(state, contact)
    ]

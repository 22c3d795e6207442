"""The fixed starting world of the sandbox (the bridge's settings repeat these ids)."""

from __future__ import annotations

from datetime import datetime

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.clock import to_iso
from whatsapp_helpdesk.sandbox.hubspot.state import Agent, Contact, Inbox, Portal, SandboxState

SEED_CONTACTS: dict[int, list[dict[str, str]]] = {
    constants.DEMO_PORTAL_ID: [
        {"firstname": "Jane", "lastname": "Doe", "phone": "+33612345678",
         "email": "jane.doe@example.com", "company": "Doe Bakery"},
        {"firstname": "John", "lastname": "Smith", "phone": "+14155550123",
         "email": "john.smith@example.com", "company": "Globex"},
    ],
    constants.OTHER_PORTAL_ID: [
        {"firstname": "Olga", "lastname": "Other", "phone": "+447700900123",
         "email": "olga@other.example"},
    ],
}


def _portal(
    portal_id: int, name: str, domain: str, first_inbox_id: int, now: datetime,
    agents: list[Agent],
) -> Portal:
    """A portal with its two inboxes: the Inbox, and the Help Desk next to it."""
    return Portal(
        id=portal_id, name=name, domain=domain,
        inboxes=[
            Inbox(id=str(first_inbox_id), name="Inbox", type="INBOX", created_at=now),
            Inbox(id=str(first_inbox_id + 1), name="Help Desk", type="HELP_DESK", created_at=now),
        ],
        agents=agents,
    )


def seeded_state(now: datetime) -> SandboxState:
    state = SandboxState()
    state.portals = {
        constants.DEMO_PORTAL_ID: _portal(
            constants.DEMO_PORTAL_ID, "Demo Company", "demo-company.example", 5000, now,
            [Agent(user_id=1, name="Alex Agent", email="alex@demo-company.example"),
             Agent(user_id=2, name="Sam Support", email="sam@demo-company.example")],
        ),
        constants.OTHER_PORTAL_ID: _portal(
            constants.OTHER_PORTAL_ID, "Other Company", "other-company.example", 6000, now,
            [Agent(user_id=3, name="Olivia Operator", email="olivia@other.example")],
        ),
    }
    for portal_id, rows in SEED_CONTACTS.items():
        for properties in rows:
            contact_id = state.contact_ids.next()
            state.contacts[contact_id] = Contact(
                id=contact_id,
                portal_id=portal_id,
                properties=crm_properties(contact_id, properties, now),
                created_at=now,
                updated_at=now,
            )
    return state


def crm_properties(object_id: str, given: dict[str, str], now: datetime) -> dict[str, str]:
    """Properties HubSpot adds to every CRM object it creates."""
    stamp = to_iso(now)
    return {
        **given,
        "hs_object_id": object_id,
        "createdate": stamp,
        "lastmodifieddate": stamp,
        "hs_lastmodifieddate": stamp,
    }

"""R31: the sender's company reaches HubSpot, never as an association of the ticket.

HubSpot's custom-channel message has no company field (decision 0004): the documented place
for a company that is not an association is the contact's own "Company name" property
(`company`). When Aircall's webhook names the customer's company (its contact's
`company_name`), the ingest queues this job; the worker finds the contact HubSpot made or
matched for the customer's number when the message was published, and fills its company.

- Queued once per conversation and company, on its own ordering key: a contact HubSpot has
  not created yet is retried with backoff without holding up the conversation's messages.
- A company already on the contact is kept (typed by a person or set by another
  integration: a CRM record is theirs to edit), unless it is the one we set before and
  Aircall now names another: the job carries the name it replaces.
- Nothing here associates a company with a ticket or a thread (R31).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Conversation
from whatsapp_helpdesk.errors import Retryable
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.native_tickets.ports import NativeTicketsDeps

COMPANY_PROPERTY: Final = "company"  # HubSpot's contact property "Company name"
MAX_COMPANY_LENGTH: Final = 200


def queue_if_new(
    session: Session,
    conversation: Conversation,
    company_name: str | None,
    *,
    now: datetime,
    after: timedelta,
) -> bool:
    """Queue the job when Aircall names a company we have not sent for this conversation.

    `after` lets the message's own publication (which makes HubSpot create or match the
    contact) go first."""
    company = " ".join((company_name or "").split())[:MAX_COMPANY_LENGTH]
    if not company or conversation.customer_company == company:
        return False
    replaces, conversation.customer_company = conversation.customer_company, company
    jobs.enqueue(
        session,
        payloads.SetContactCompany(conversation_id=conversation.id, company=company,
                                   replaces=replaces),
        installation_id=conversation.installation_id, now=now,
        ordering_key=f"contact-company:{conversation.id}", delay=after,
    )
    return True


async def set_contact_company(
    services: NativeTicketsDeps, entry: outbox.Claimed, payload: payloads.SetContactCompany
) -> str:
    """Worker job: a short word for the delivery log."""
    company = payload.company
    replaces = payload.replaces or ""

    def customer_of_the_conversation() -> str | None:
        """Read in a thread, off the worker's event loop."""
        with services.sessions() as session:
            conversation = session.get(Conversation, payload.conversation_id)
            if conversation is None or conversation.installation_id != entry.installation_id:
                return None
            return conversation.customer_e164

    customer = await asyncio.to_thread(customer_of_the_conversation)
    if customer is None:
        return "skipped: conversation gone"
    portal = services.hubspot_portal(await hubspot_access_token(services, entry.installation_id),
                                     installation_id=entry.installation_id)
    contact = await portal.search_contact_by_phone(customer)
    if contact is None:
        # HubSpot makes the contact when it takes the message; its search index can lag.
        raise Retryable("HubSpot has no contact for the customer's number yet.")
    current = (contact.properties.get(COMPANY_PROPERTY) or "").strip()
    if current == company:
        return f"contact {contact.id}: company already {company!r}"
    if current and current != replaces:
        return f"contact {contact.id}: kept the company already there"
    await portal.update_contact_properties(contact.id, {COMPANY_PROPERTY: company})
    return f"contact {contact.id}: company set"

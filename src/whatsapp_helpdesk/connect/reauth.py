"""After the admin re-authorises HubSpot: what failed for want of a grant goes again (R8,
issue 11 item 4).

The worker fails an entry whose HubSpot grant was revoked (AuthRevoked) with
`failure_kind = "auth_revoked"`, and flags the installation; meanwhile such an entry holds
back the rest of its conversation (db/outbox.py, decision 0006). When a new grant is stored,
every such entry of the installation is re-queued in its original order (the claim serves
equal `available_at` by id, and each conversation by `ordering_at`), and the messages they
carry are no longer "failed". Replies (`send_reply`) are never marked so (worker/runner.py):
their failure was already reported FAILED in HubSpot with its reason, and the agent decides
whether to send them again.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Message, OutboxEntry

log = structlog.get_logger(__name__)


def requeue_auth_revoked(session: Session, installation_id: int, now: datetime) -> int:
    """In the caller's transaction; returns how many entries were re-queued."""
    entries = session.scalars(
        select(OutboxEntry)
        .where(
            OutboxEntry.installation_id == installation_id,
            OutboxEntry.state == outbox.FAILED,
            OutboxEntry.failure_kind == outbox.AUTH_REVOKED,
        )
        .order_by(OutboxEntry.id)
    ).all()
    message_ids = [e.message_id for e in entries if e.message_id is not None]
    for entry in entries:
        outbox.requeue(session, entry_id=entry.id, installation_id=installation_id, now=now)
    for message in session.scalars(select(Message).where(
            Message.id.in_(message_ids), Message.direction == "inbound",
            Message.status == "failed")):
        message.status = "pending"
        message.failure_reason = None
    if entries:
        log.info("reauth.requeued", installation_id=installation_id, entries=len(entries))
    return len(entries)

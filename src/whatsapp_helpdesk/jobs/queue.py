"""Queue one job: a typed payload in, an outbox row out, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import OutboxEntry
from whatsapp_helpdesk.jobs.payloads import JobPayload


def enqueue(
    session: Session,
    job: JobPayload,
    *,
    installation_id: int,
    now: datetime,
    message_id: int | None = None,
    ordering_key: str | None = None,
    ordering_at: datetime | None = None,
    delay: timedelta = timedelta(0),
) -> OutboxEntry:
    """Add the job in the caller's transaction (never commits). The payload was validated
    when it was built; the kind stored is the payload's `KIND`."""
    kind = getattr(type(job), "KIND", None)
    if not isinstance(kind, str):
        raise TypeError(f"{type(job).__name__} declares no KIND: it is not a job kind")
    return outbox.enqueue(
        session,
        installation_id=installation_id,
        kind=kind,
        now=now,
        message_id=message_id,
        # JSON-ready values (a datetime becomes its ISO text), in the model's field order.
        payload=job.model_dump(mode="json"),
        ordering_key=ordering_key,
        ordering_at=ordering_at,
        delay=delay,
    )

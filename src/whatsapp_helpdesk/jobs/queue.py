"""Queue one job: a typed payload in, an outbox row out, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import OutboxEntry
from whatsapp_helpdesk.db.outbox import QueuedWork
from whatsapp_helpdesk.jobs.payloads import JobPayload

__all__ = ["QueuedWork", "enqueue", "enqueue_many"]


def enqueue(session: Session, job: JobPayload, *, installation_id: int, now: datetime,
            message_id: int | None = None, ordering_key: str | None = None,
            ordering_at: datetime | None = None, delay: timedelta = timedelta(0)) -> OutboxEntry:
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


def enqueue_many(session: Session, job: JobPayload, entries: list[QueuedWork], *,
                 now: datetime, delay: timedelta = timedelta(0)) -> None:
    """`enqueue` of one job for many entries (messages), in one statement, in order."""
    kind = getattr(type(job), "KIND", None)
    if not isinstance(kind, str):
        raise TypeError(f"{type(job).__name__} declares no KIND: it is not a job kind")
    outbox.enqueue_many(session, kind=kind, payload=job.model_dump(mode="json"),
                        entries=entries, now=now, delay=delay)

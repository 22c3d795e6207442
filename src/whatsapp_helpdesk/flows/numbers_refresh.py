""""Refresh numbers from Aircall" as a background job of the worker (issue 17 item 7, R7).

With 5,000 numbers the refresh held one browser request for 56 s (one request per number
for its WhatsApp status, one for its SMS registration). The dashboard now only queues an
outbox entry and returns; the worker runs the refresh, and the dashboard says it is under
way, then when it ended. One refresh per installation is queued at a time: a second click
while one waits adds nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from sqlalchemy import select

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Number, OutboxEntry, ServiceState
from whatsapp_helpdesk.flows.install import sync_numbers
from whatsapp_helpdesk.jobs import payloads

REFRESH_NUMBERS: Final = payloads.RefreshNumbers.KIND
LAST_REFRESH_KEY: Final = "numbers_refresh:{installation_id}"


def request_refresh(services: Services, installation_id: int) -> str:
    """Queue a refresh unless one is queued already; what the admin is told."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        if _queued_at(session, installation_id) is not None:
            return "A refresh of the numbers from Aircall is already under way."
        jobs.enqueue(session, payloads.RefreshNumbers(), installation_id=installation_id,
                     now=now, ordering_key=f"numbers:{installation_id}")
    return ("Refreshing the numbers from Aircall in the background; "
            "this page says when it is done.")


def _queued_at(session, installation_id: int) -> datetime | None:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(OutboxEntry.created_at).where(
            OutboxEntry.installation_id == installation_id,
            OutboxEntry.kind == REFRESH_NUMBERS, OutboxEntry.state == outbox.PENDING,
        ).limit(1)
    )


async def refresh_numbers_job(services: Services, entry: outbox.Claimed) -> str:
    """The worker's job: read the numbers from Aircall, then record when it ended."""
    await sync_numbers(services, entry.installation_id)
    now = services.clock.now()
    key = LAST_REFRESH_KEY.format(installation_id=entry.installation_id)
    with services.sessions.begin() as session:
        count = len(list(session.scalars(
            select(Number.id).where(Number.installation_id == entry.installation_id))))
        value = json.dumps({"at": now.isoformat(), "numbers": count})
        row = session.get(ServiceState, key)
        if row is None:
            session.add(ServiceState(key=key, value=value))
        else:
            row.value = value
    return f"{count} numbers refreshed"


def refresh_status(services: Services, installation_id: int) -> str | None:
    """What the dashboard says about the refresh: under way, or when the last one ended."""
    with services.sessions() as session:
        queued = _queued_at(session, installation_id)
        if queued is not None:
            return (f"Refreshing the numbers from Aircall: under way since "
                    f"{queued:%Y-%m-%d %H:%M} UTC.")
        row = session.get(ServiceState, LAST_REFRESH_KEY.format(installation_id=installation_id))
    if row is None:
        return None
    last = json.loads(row.value)
    at = datetime.fromisoformat(last["at"])
    return f"Numbers refreshed from Aircall at {at:%Y-%m-%d %H:%M} UTC ({last['numbers']} numbers)."

""" "Refresh numbers from Aircall" as a paced, resumable background job, and the number
webhooks that keep the list current without it (issue 17 item 7, R7).

With 5,000 numbers the refresh held one browser request for 56 s (one request per number
for its WhatsApp status, one for its SMS registration). The dashboard only queues an outbox
entry; the worker runs the refresh:

- paced to `NUMBERS_REFRESH_BUDGET_SHARE` of the company's Aircall budget (pacing.SharePacer),
  so that replies sent meanwhile still find slots;
- one number at a time, each written with the refresh's progress in one transaction: a
  worker killed mid-refresh continues at the next number (only the current page's listing
  is read again, never a number's status requests already done);
- in runs of at most `RUN_SECONDS`, well under the worker's lease: the entry is then put
  back (`RefreshContinues`) and claimed again at once, so no other worker takes over a
  refresh that is still running, and the worker's slot is given back between runs.

The dashboard and HubSpot's connection pop-up say "Reading your Aircall numbers: 1,200 of
5,000" while it runs (meta.total of the first page), and list the numbers as they arrive;
the dashboard then says when it ended. One refresh per installation is queued at a time.

Authorising Aircall queues the first read (connect/install.py) rather than reading inline:
with 5,000 numbers that was 10,001 requests fired at once from the OAuth callback, against
Aircall's 60 a minute. That read opens with a burst when the company's bucket was idle
(pacing.OpeningBurst): a small company's numbers (the sandbox's five: eleven calls) are all
there a moment after the install, a large one's first ones, the rest paced.

Aircall's `number.created/opened/closed/deleted` webhooks (§A8.3) update one number:
created, its row appears at once and a `sync_number` job reads its WhatsApp and SMS status
(the event does not carry them); deleted, the row is marked removed (kept for its
conversations) and its channel account disconnected. A full refresh runs only on demand.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.adapter_ports import Database
from whatsapp_helpdesk.aircall.client import (
    PER_PAGE,
    AircallClient,
    AircallNumber,
    SmsRegistration,
    WhatsAppStatus,
)
from whatsapp_helpdesk.aircall.payloads import NumberEvent
from whatsapp_helpdesk.connect.ports import ConnectDeps
from whatsapp_helpdesk.credentials import aircall_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import REFRESH_NUMBERS
from whatsapp_helpdesk.db.models import ChannelAccount, Number, OutboxEntry, ServiceState
from whatsapp_helpdesk.domain.eligibility import whatsapp_line_usable
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.pacing import OpeningBurst, Paced

LAST_REFRESH_KEY: Final = "numbers_refresh:{installation_id}"
PROGRESS_KEY: Final = "numbers_refresh_progress:{installation_id}"
# A run of the refresh job ends after this long and the entry is claimed again: far under
# the worker's lease (60 s by default), so that a running refresh is never taken over.
RUN_SECONDS: Final = 20.0
# numbers.aircall_number_id holds 32 characters; Aircall's ids are far smaller.
MAX_NUMBER_ID: Final = 10**18


class RefreshContinues(Paced):
    """The refresh's run ended, not the refresh: the worker puts the entry back, due now."""

    def __init__(self, progress: Progress):
        super().__init__(
            f"Refreshing the numbers: {_progress_text(progress)} read; continues at once.",
            retry_after=0.0,
        )


@dataclass
class Progress:
    started_at: str  # ISO; numbers not seen since are checked at the end
    page: int = 1  # the listing page being read
    index: int = 0  # numbers of that page already done
    done: int = 0
    total: int | None = None


def request_refresh(services: ConnectDeps, installation_id: int, *,
                    after_install: bool = False, numbers_count: int | None = None) -> str:
    """Queue a refresh of the numbers and their capabilities from Aircall (R7) unless one is
    queued already; what the admin is told. The worker does it (issue 17 item 7: 5,000
    numbers held the request for 56 s). `after_install`: the Aircall authorisation's first
    read, of a company Aircall says has `numbers_count` numbers (shown at once as the total
    to read, and the size of the read's opening burst)."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        if _queued_at(session, installation_id) is not None:
            return "A refresh of the numbers from Aircall is already under way."
        payload = payloads.RefreshNumbers(after_install=after_install,
                                          numbers_count=numbers_count)
        jobs.enqueue(session, payload, installation_id=installation_id,
                     now=now, ordering_key=f"numbers:{installation_id}")
        if numbers_count is not None and _read_progress(session, installation_id) is None:
            _set_state(session, PROGRESS_KEY.format(installation_id=installation_id),
                       json.dumps(asdict(Progress(started_at=now.isoformat(),
                                                  total=numbers_count))))
    return "Refreshing the numbers from Aircall in the background; this page says when it is done."


def _queued_at(session: Session, installation_id: int) -> datetime | None:
    return session.scalar(
        select(OutboxEntry.created_at)
        .where(
            OutboxEntry.installation_id == installation_id,
            OutboxEntry.kind == REFRESH_NUMBERS,
            OutboxEntry.state == outbox.PENDING,
        )
        .limit(1)
    )


def _read_progress(session: Session, installation_id: int) -> Progress | None:
    row = session.get(ServiceState, PROGRESS_KEY.format(installation_id=installation_id))
    return Progress(**json.loads(row.value)) if row is not None else None


def _set_state(session: Session, key: str, value: str | None) -> None:
    row = session.get(ServiceState, key)
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(ServiceState(key=key, value=value))
    else:
        row.value = value


async def refresh_numbers_job(
    services: ConnectDeps, entry: outbox.Claimed, payload: payloads.RefreshNumbers
) -> str:
    """The worker's job: one run of the refresh, from where the last run stopped.

    Its database work runs in threads (the worker's slots share its event loop), each step
    its own transaction as before; Aircall is asked on the loop, between them."""
    installation_id = entry.installation_id
    progress = await asyncio.to_thread(_start_or_resume, services, installation_id)
    started_at = datetime.fromisoformat(progress.started_at)
    # The first read after the install keeps to the same share as any refresh: numbers
    # appear as they are read, the admin connects the first ones while the rest are read,
    # and their replies (and the company's other integrations) need the rest of the budget.
    # What the admin waits for at first is served by the opening burst instead.
    client = services.aircall(
        await asyncio.to_thread(aircall_access_token, services, installation_id),
        installation_id=installation_id,
        budget_share=services.settings.numbers_refresh_budget_share,
        opening_burst=_opening_burst(payload, progress),
    )
    run_ends = time.monotonic() + min(RUN_SECONDS, services.settings.worker_lease_seconds / 3)
    read_this_run = 0  # at least one number per run, however short the run
    while True:
        page = await client.list_numbers_page(progress.page)
        if page.total is not None:
            progress.total = page.total
        for number in page.numbers[progress.index :]:
            if read_this_run and time.monotonic() >= run_ends:
                raise RefreshContinues(progress)
            read_this_run += 1
            whatsapp = await client.get_whatsapp_status(number.id)
            sms = await client.get_sms_registration(number.id)
            progress.index += 1
            progress.done += 1
            await asyncio.to_thread(
                _store_number, services, installation_id, number, whatsapp, sms,
                services.clock.now(), started_at=started_at, progress=progress,
            )
        if not page.has_next:
            break
        progress.page, progress.index = progress.page + 1, 0
        await asyncio.to_thread(_store_progress, services, installation_id, progress)
    await _check_unseen(services, client, installation_id, started_at)
    count = await asyncio.to_thread(_finish_refresh, services, installation_id,
                                    services.clock.now())
    return f"{count} numbers refreshed"


async def read_numbers_here(services: ConnectDeps, installation_id: int, *,
                            timeout: float = 300.0) -> None:
    """The installation's queued refresh run to its end in this process, its pacing waited
    out here; or, when a worker has it already, waited for. For what installs and then needs
    the numbers at once with no worker running yet: the sandbox demo (its switches are set
    by what each number can do) and the benchmarks' and tests' set-ups."""
    me = f"read-numbers-here:{os.getpid()}:{id(asyncio.current_task()):x}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = await asyncio.to_thread(_take_queued_refresh, services, installation_id, me)
        if entry is None:
            if await asyncio.to_thread(_still_queued, services, installation_id):
                await asyncio.sleep(0.1)  # a worker runs it, or it waits out its pacing
                continue
            return
        try:
            await refresh_numbers_job(services, entry, payloads.RefreshNumbers.model_validate(
                entry.payload))
        except Paced as paced:  # a run ended (RefreshContinues), or the next slot is later
            await asyncio.to_thread(_give_back, services, entry.id, me, paced.retry_after)
            await asyncio.sleep(paced.retry_after or 0.0)
            continue
        except BaseException:
            await asyncio.to_thread(_give_back, services, entry.id, me, 0.0)
            raise
        await asyncio.to_thread(_complete, services, entry.id, me)
        return
    raise TimeoutError(f"the numbers of installation {installation_id} were not read "
                       f"within {timeout:.0f} s")


def _take_queued_refresh(services: ConnectDeps, installation_id: int,
                         worker_id: str) -> outbox.Claimed | None:
    now = services.clock.now()
    lease = timedelta(seconds=services.settings.worker_lease_seconds)
    with services.sessions.begin() as session:
        entry_id = session.scalar(
            select(OutboxEntry.id)
            .where(OutboxEntry.installation_id == installation_id,
                   OutboxEntry.kind == REFRESH_NUMBERS, OutboxEntry.state == outbox.PENDING)
            .limit(1)
        )
        if entry_id is None:
            return None
        return outbox.claim_entry(session, entry_id=entry_id, worker_id=worker_id, now=now,
                                  lease=lease)


def _still_queued(services: ConnectDeps, installation_id: int) -> bool:
    with services.sessions() as session:
        return _queued_at(session, installation_id) is not None


def _give_back(services: ConnectDeps, entry_id: int, worker_id: str, after: float) -> None:
    with services.sessions.begin() as session:
        outbox.release(session, entry_id=entry_id, worker_id=worker_id)
        if after > 0:
            session.execute(
                update(OutboxEntry).where(OutboxEntry.id == entry_id)
                .values(available_at=services.clock.now() + timedelta(seconds=after)))


def _complete(services: ConnectDeps, entry_id: int, worker_id: str) -> None:
    with services.sessions.begin() as session:
        outbox.complete(session, entry_id=entry_id, worker_id=worker_id,
                        now=services.clock.now())


def _opening_burst(payload: payloads.RefreshNumbers, progress: Progress) -> OpeningBurst | None:
    """The first read after the install, not started yet, of a company whose count of
    numbers Aircall gave: its calls (listing pages, then two per number) may open at once."""
    if not payload.after_install or payload.numbers_count is None or progress.done \
            or progress.page != 1:
        return None
    count = max(0, payload.numbers_count)
    pages = max(1, math.ceil(count / PER_PAGE))
    return OpeningBurst(calls=pages + 2 * count)


def _start_or_resume(services: ConnectDeps, installation_id: int) -> Progress:
    """The stored progress of the refresh, or a new one stored from now."""
    with services.sessions.begin() as session:
        progress = _read_progress(session, installation_id)
        if progress is None:
            progress = Progress(started_at=services.clock.now().isoformat())
            _set_state(session, PROGRESS_KEY.format(installation_id=installation_id),
                       json.dumps(asdict(progress)))
        return progress


def _store_progress(services: ConnectDeps, installation_id: int, progress: Progress) -> None:
    with services.sessions.begin() as session:
        _set_state(session, PROGRESS_KEY.format(installation_id=installation_id),
                   json.dumps(asdict(progress)))


def _store_number(
    services: ConnectDeps,
    installation_id: int,
    number: AircallNumber,
    whatsapp: WhatsAppStatus | None,
    sms: SmsRegistration | None,
    now: datetime,
    *,
    started_at: datetime,
    progress: Progress | None = None,
) -> None:
    """One number as Aircall described it, with the refresh's progress when given, in one
    transaction."""
    with services.sessions.begin() as session:
        write_number(
            session, installation_id, number, whatsapp, sms, now, removed_since=started_at
        )
        if progress is not None:
            _set_state(session, PROGRESS_KEY.format(installation_id=installation_id),
                       json.dumps(asdict(progress)))


def _finish_refresh(services: ConnectDeps, installation_id: int, now: datetime) -> int:
    """The refresh's end recorded (when, how many numbers), its progress cleared; the count."""
    with services.sessions.begin() as session:
        count = (
            session.scalar(
                select(func.count())
                .select_from(Number)
                .where(Number.installation_id == installation_id, Number.removed_at.is_(None))
            )
            or 0
        )
        _set_state(
            session,
            LAST_REFRESH_KEY.format(installation_id=installation_id),
            json.dumps({"at": now.isoformat(), "numbers": count}),
        )
        _set_state(session, PROGRESS_KEY.format(installation_id=installation_id), None)
    return count


async def _check_unseen(
    services: ConnectDeps,
    client: AircallClient,
    installation_id: int,
    started_at: datetime,
) -> None:
    """Numbers the listing did not show since the refresh began: gone, or shifted to an
    earlier page while it was read (a number deleted meanwhile). One request each tells."""
    unseen = await asyncio.to_thread(_unseen, services, installation_id, started_at)
    for aircall_id in unseen:
        number = await client.get_number(int(aircall_id))
        if number is None:
            await asyncio.to_thread(_remove_gone, services, installation_id, aircall_id)
            continue
        whatsapp = await client.get_whatsapp_status(number.id)
        sms = await client.get_sms_registration(number.id)
        await asyncio.to_thread(
            _store_number, services, installation_id, number, whatsapp, sms,
            services.clock.now(), started_at=started_at,
        )


def _unseen(services: ConnectDeps, installation_id: int, started_at: datetime) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Number.aircall_number_id).where(
                    Number.installation_id == installation_id,
                    Number.removed_at.is_(None),
                    (Number.synced_at.is_(None)) | (Number.synced_at < started_at),
                )
            )
        )


def _remove_gone(services: ConnectDeps, installation_id: int, aircall_id: str) -> None:
    with services.sessions.begin() as session:
        row = _row(session, installation_id, aircall_id)
        if row is not None:
            remove_number(session, row, services.clock.now())


def _row(session: Session, installation_id: int, aircall_id: str) -> Number | None:
    return session.scalars(
        select(Number).where(
            Number.installation_id == installation_id, Number.aircall_number_id == aircall_id
        )
    ).first()


def _new_row(installation_id: int, aircall_id: str) -> Number:
    # Our own switches start off: the admin connects a number on purpose (R3).
    return Number(
        installation_id=installation_id,
        aircall_number_id=aircall_id,
        connected_to_hubspot=False,
        helpdesk_enabled=False,
        native_ticketing=False,
    )


def _describe(row: Number, name: str | None, digits: str | None, country: str | None) -> None:
    if name is not None:
        row.name = name
    if digits is not None:
        row.digits = digits
        try:
            row.e164 = to_e164(digits)
        except InvalidPhoneNumber:
            row.e164 = ""
    if country is not None:
        row.country = country if len(country) == 2 else None  # ISO 3166 alpha-2 (§A5)


def write_number(
    session: Session,
    installation_id: int,
    number: AircallNumber,
    whatsapp: WhatsAppStatus | None,
    sms: SmsRegistration | None,
    now: datetime,
    *,
    removed_since: datetime | None = None,
) -> Number:
    """Store what Aircall says of one number; our own switches are kept (R7).

    A number removed after `removed_since` (a `number.deleted` that came in while this
    refresh read it) stays removed."""
    row = _row(session, installation_id, str(number.id))
    if row is None:
        row = _new_row(installation_id, str(number.id))
        session.add(row)
    elif (
        row.removed_at is not None and removed_since is not None and row.removed_at >= removed_since
    ):
        return row
    row.removed_at = None
    _describe(row, number.name, number.digits, number.country)
    _capabilities(row, whatsapp, sms, now)
    return row


def _capabilities(
    row: Number, whatsapp: WhatsAppStatus | None, sms: SmsRegistration | None, now: datetime
) -> None:
    row.calls_enabled = True  # every Aircall number takes calls
    row.sms_enabled = sms is not None
    row.whatsapp_enabled = whatsapp_line_usable(whatsapp)  # eligibility condition (a)
    row.whatsapp_status = whatsapp.status if whatsapp is not None else None
    row.synced_at = now


def remove_number(session: Session, row: Number, now: datetime) -> None:
    """Aircall deleted the number: out of the lists, switched off, and its channel account
    disconnected (nothing can be sent from it any more). The row and its conversations
    stay; HubSpot keeps the channel account until an admin removes it there."""
    row.removed_at = now
    row.connected_to_hubspot = row.helpdesk_enabled = row.native_ticketing = False
    row.whatsapp_enabled = row.sms_enabled = False
    for account in session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.number_id == row.id, ChannelAccount.disconnected_at.is_(None)
        )
    ):
        account.disconnected_at = now


def on_number_event(
    session: Session, installation_id: int, event: NumberEvent, now: datetime
) -> tuple[str, str | None]:
    """A `number.*` webhook (§A8.3), in the ingest's transaction: no call to Aircall here."""
    data = event.number
    if not 0 < data.id < MAX_NUMBER_ID:
        return ("kept", "number id out of range")
    aircall_id = str(data.id)
    row = _row(session, installation_id, aircall_id)
    if event.event == "number.deleted":
        if row is None or row.removed_at is not None:
            return ("kept", "number not known or already removed")
        remove_number(session, row, now)
        return ("number_removed", None)
    read_status = event.event == "number.created" or row is None or row.removed_at is not None
    if row is None:
        row = _new_row(installation_id, aircall_id)
        session.add(row)
    row.removed_at = None
    _describe(row, data.name, data.e164_digits or data.digits, data.country)
    if read_status:
        # The event has no capabilities (§A5): the worker reads them from Aircall.
        jobs.enqueue(session, payloads.SyncNumber(aircall_number_id=aircall_id),
                     installation_id=installation_id, now=now,
                     ordering_key=f"number:{installation_id}:{aircall_id}")
    return ("number_updated", None)


async def sync_number_job(
    services: ConnectDeps, entry: outbox.Claimed, payload: payloads.SyncNumber
) -> str:
    """The worker's job after `number.created`: the number's WhatsApp and SMS status."""
    installation_id = entry.installation_id
    aircall_id = payload.aircall_number_id
    # The database work runs in threads, off the worker's event loop.
    client = services.aircall(
        await asyncio.to_thread(aircall_access_token, services, installation_id),
        installation_id=installation_id,
    )
    whatsapp = await client.get_whatsapp_status(int(aircall_id))
    sms = await client.get_sms_registration(int(aircall_id))

    def store_capabilities() -> bool:
        """False: the number was removed meanwhile."""
        with services.sessions.begin() as session:
            row = _row(session, installation_id, aircall_id)
            if row is None or row.removed_at is not None:
                return False
            _capabilities(row, whatsapp, sms, services.clock.now())
            return True

    if not await asyncio.to_thread(store_capabilities):
        return "number removed meanwhile"
    return "number status read"


def _progress_text(progress: Progress) -> str:
    if progress.total is not None:
        return f"{progress.done:,} of {progress.total:,} numbers"
    return f"{progress.done:,} numbers"


def reading_status(services: Database, installation_id: int) -> str | None:
    """While the numbers are being read from Aircall, how far it is (None otherwise): the
    dashboard and HubSpot's connection pop-up say so, or an empty list would look broken."""
    with services.sessions() as session:
        return _reading_status(session, installation_id)


def _reading_status(session: Session, installation_id: int) -> str | None:
    queued = _queued_at(session, installation_id)
    if queued is None:
        return None
    progress = _read_progress(session, installation_id)
    if progress is not None and (progress.done or progress.total is not None):
        if progress.total is not None:
            return (f"Reading your Aircall numbers: {progress.done:,} of "
                    f"{progress.total:,}.")
        return f"Reading your Aircall numbers: {progress.done:,} so far."
    return f"Reading your Aircall numbers: under way since {queued:%Y-%m-%d %H:%M} UTC."


def refresh_status(services: Database, installation_id: int) -> str | None:
    """What the dashboard says about the refresh: how far it is, or when the last one ended."""
    with services.sessions() as session:
        reading = _reading_status(session, installation_id)
        if reading is not None:
            return reading
        row = session.get(ServiceState, LAST_REFRESH_KEY.format(installation_id=installation_id))
    if row is None:
        return None
    last = json.loads(row.value)
    at = datetime.fromisoformat(last["at"])
    return f"Numbers refreshed from Aircall at {at:%Y-%m-%d %H:%M} UTC ({last['numbers']} numbers)."

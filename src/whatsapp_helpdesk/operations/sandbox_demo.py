"""The sandbox demo's starting point, and its one-click reset (sandbox mode only, issue 6).

The demo starts installed: both emulators' OAuth consent pages approve on their own, so the
service authorises HubSpot then Aircall exactly as an admin would (same code, same HTTP),
registers the custom channel and sets each number's switches so that every R3 condition
shows somewhere in the connection pop-up. No number is connected to the help desk yet:
connecting one from HubSpot's settings is the story's first step.

Everything here goes over HTTP to the emulators' documented control endpoints
(`POST /_sandbox/reset`); the bridge still never imports the sandbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import delete, func, select, update

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.install import (
    complete_aircall_oauth,
    complete_hubspot_oauth,
    register_channel,
)
from whatsapp_helpdesk.connect.numbers_refresh import read_numbers_here
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Base, Installation, Number, OutboxEntry


class NotInSandboxMode(Exception):
    """Raised instead of touching anything when the service is configured for real APIs."""


@dataclass(frozen=True)
class Switches:
    """Our per-number settings of the dashboard: R3 (d), R3 (e) and R35."""

    connected_to_hubspot: bool
    helpdesk_enabled: bool
    native_ticketing: bool = False


READY = Switches(connected_to_hubspot=True, helpdesk_enabled=True)
HELP_DESK_OFF = Switches(connected_to_hubspot=True, helpdesk_enabled=False)
CLASSIC = Switches(connected_to_hubspot=True, helpdesk_enabled=False, native_ticketing=True)
OFF = Switches(connected_to_hubspot=False, helpdesk_enabled=False)


def demo_switches(numbers: list[Number]) -> dict[str, Switches]:
    """The demo's settings by Aircall number id, chosen by what each number can do (not by
    id, so it follows whatever the sandbox seeds):

    - the first WhatsApp number is ready to connect (the story's number);
    - the other WhatsApp numbers have the Help Desk setting off, R3 (e): switch it on in the
      dashboard and the number appears in the pop-up;
    - a number whose WhatsApp line is not ready yet is switched on, so the pop-up shows that
      R3 (a) alone keeps it out;
    - the first number without WhatsApp is a classic integration number (native tickets for
      calls and SMS, R35); the rest stay off, R3 (a), (d) and (e).
    """
    ordered = sorted(numbers, key=lambda n: (len(n.aircall_number_id), n.aircall_number_id))
    whatsapp = [n for n in ordered if n.whatsapp_enabled]
    line_not_ready = [n for n in ordered if not n.whatsapp_enabled and n.whatsapp_status]
    without = [n for n in ordered if not n.whatsapp_enabled and not n.whatsapp_status]
    chosen: dict[str, Switches] = {}
    for index, number in enumerate(whatsapp):
        chosen[number.aircall_number_id] = READY if index == 0 else HELP_DESK_OFF
    for number in line_not_ready:
        chosen[number.aircall_number_id] = READY
    for index, number in enumerate(without):
        chosen[number.aircall_number_id] = CLASSIC if index == 0 else OFF
    return chosen


def _require_sandbox(services: Services) -> None:
    if not services.settings.sandbox_mode:
        raise NotInSandboxMode(
            "The demo data exists only when the service runs on the built-in sandbox."
        )


async def install_demo(services: Services) -> int:
    """Authorise both sandboxes, register the channel and apply the demo's switches.

    Safe to rerun: an existing installation is kept as it is (only the channel registration
    is refreshed, as the sandbox may have restarted)."""
    _require_sandbox(services)
    # The database work runs in threads: the sandbox's reset awaits this on the web app's
    # event loop.
    existing = await asyncio.to_thread(_installed, services)
    if existing is not None:
        await register_channel(services)
        return existing

    base = services.settings.public_url

    async def code_from(authorize_url: str) -> str:
        # The sandbox consent pages approve at once and redirect with the code.
        response = await services.http.get(authorize_url, follow_redirects=False)
        location = response.headers.get("location", "")
        return str(parse_qs(urlparse(location).query)["code"][0])

    hubspot_cb, aircall_cb = f"{base}/oauth/hubspot/callback", f"{base}/oauth/aircall/callback"
    code = await code_from(services.hubspot_oauth().authorize_url(hubspot_cb, "demo"))
    installation_id = await complete_hubspot_oauth(services, code=code, redirect_uri=hubspot_cb)
    code = await code_from(services.aircall_oauth().authorize_url(aircall_cb, "demo"))
    await complete_aircall_oauth(services, code=code, redirect_uri=aircall_cb,
                                 installation_id=installation_id)
    # The authorisation queued the read of the numbers; the demo's switches depend on what
    # each number can do, so it is read here (the seed's five numbers fit the read's opening
    # burst: a moment, not a paced minute), or waited for if a worker took it first.
    await read_numbers_here(services, installation_id)
    await register_channel(services)
    await asyncio.to_thread(_apply_demo_switches, services, installation_id)
    return installation_id


def _installed(services: Services) -> int | None:
    with services.sessions() as session:
        return session.scalar(select(Installation.id).where(
            Installation.aircall_webhook_token_hash.is_not(None)).order_by(Installation.id))


def _apply_demo_switches(services: Services, installation_id: int) -> None:
    with services.sessions.begin() as session:
        numbers = list(session.scalars(
            select(Number).where(Number.installation_id == installation_id)))
        chosen = demo_switches(numbers)
        for number in numbers:
            switches = chosen[number.aircall_number_id]
            number.connected_to_hubspot = switches.connected_to_hubspot
            number.helpdesk_enabled = switches.helpdesk_enabled
            number.native_ticketing = switches.native_ticketing


def wipe_service_data(services: Services) -> None:
    """Every row of every table, in one transaction (children first); the schema and its
    Alembic version stay. Includes the sandbox clock offset and the registered channel id."""
    _require_sandbox(services)
    with services.sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
    if services.sandbox_clock_offset is not None:
        services.sandbox_clock_offset.forget()


# How long a reset waits for jobs a worker is running to finish before wiping their rows.
IN_FLIGHT_WAIT = timedelta(seconds=20)


def _pause_the_outbox(services: Services) -> None:
    """No worker takes new work: every pending entry is put off (they are all wiped next)."""
    later = services.clock.now() + timedelta(days=1)
    with services.sessions.begin() as session:
        session.execute(update(OutboxEntry).where(OutboxEntry.state == outbox.PENDING)
                        .values(available_at=later))


def _resume_the_outbox(services: Services) -> None:
    """The reset did not happen after all: the put-off work is due again (a retry waiting
    for its backoff too, which only makes it try sooner)."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        session.execute(update(OutboxEntry).where(
            OutboxEntry.state == outbox.PENDING, OutboxEntry.available_at > now)
            .values(available_at=now))


def _jobs_in_flight(services: Services) -> int:
    now = services.clock.now()
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.state == outbox.PENDING, OutboxEntry.locked_until > now)) or 0


async def reset_demo(
    services: Services, progress: Callable[[str], None] | None = None
) -> int:
    """Both sandboxes back to their seed, our database emptied, the demo installed again.

    The outbox is paused first and the jobs workers are running are given time to finish,
    so that none writes its outcome onto a row of the new demo (SQLite reuses the ids of
    deleted rows) or acts on the sandboxes after their reset. A delivery the Aircall sandbox
    was still retrying is dropped by its own reset. Callers run one reset at a time.
    `progress` hears each of the RESET_STEPS as it is done (issue 15: say how far along)."""
    done = iter(range(1, len(RESET_STEPS) + 1))

    def step(what: str) -> None:
        if progress is not None:
            progress(f"{next(done)}/{len(RESET_STEPS)} {what}")

    _require_sandbox(services)
    await asyncio.to_thread(_pause_the_outbox, services)
    step(RESET_STEPS[0])
    deadline = time.monotonic() + IN_FLIGHT_WAIT.total_seconds()
    while await asyncio.to_thread(_jobs_in_flight, services) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    step(RESET_STEPS[1])
    settings = services.settings
    try:
        for base, what in ((settings.hubspot_api_base, RESET_STEPS[2]),
                           (settings.aircall_api_base, RESET_STEPS[3])):
            response = await services.http.post(f"{base}/_sandbox/reset")
            response.raise_for_status()
            step(what)
    except httpx.HTTPError:
        # Nothing of ours was wiped: let the work go on (a retried reset starts over).
        await asyncio.to_thread(_resume_the_outbox, services)
        raise
    await asyncio.to_thread(wipe_service_data, services)
    step(RESET_STEPS[4])
    installation_id = await install_demo(services)
    step(RESET_STEPS[5])
    return installation_id


RESET_STEPS: tuple[str, ...] = (
    "deliveries paused", "jobs in flight finished", "sandbox HubSpot reset",
    "sandbox Aircall reset", "this service's data emptied", "demo installed again",
)

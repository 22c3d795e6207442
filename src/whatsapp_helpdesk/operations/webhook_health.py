"""Our Aircall webhook registrations, checked and mended by the worker (R53).

Aircall disables a webhook after repeated failed deliveries (reference §A8.5) and sends it
nothing new until it is re-enabled; there is no history endpoint to fetch what it did not
send. So every few minutes one worker reads each installation's webhook: a disabled one is
re-enabled (always with our events list: an update without `events` resubscribes to every
event), a deleted one is created again (its new token's digest replaces the old), and what
was done is recorded for the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from whatsapp_helpdesk.adapter_ports import (
    AircallCompanies,
    Configured,
    Database,
    StoredCredentials,
)
from whatsapp_helpdesk.aircall import AIRCALL_EVENTS, CreatedWebhook, token_digest
from whatsapp_helpdesk.credentials import aircall_access_token
from whatsapp_helpdesk.db.models import Installation, ServiceState
from whatsapp_helpdesk.db.session import rows_changed
from whatsapp_helpdesk.errors import DeliveryError

log = structlog.get_logger(__name__)

HEALTH_KEY = "aircall_webhook_health:{installation_id}"
NEXT_CHECK_KEY = "aircall_webhook_check_next_at"

OK, REENABLED, RECREATED, RESUBSCRIBED, FAILED = (
    "ok", "reenabled", "recreated", "resubscribed", "check_failed")


class WebhookHealthDeps(StoredCredentials, Configured, AircallCompanies, Protocol):
    """Aircall's webhook API with a company's token, the public URL it must call, the
    database the result is kept in. (Not `bootstrap.Services`: the dashboard reads the
    result through `read_health`, and slices never import the composition root.)"""


@dataclass(frozen=True)
class WebhookHealth:
    """The last check of one installation's webhook and the last repair it needed."""

    checked_at: datetime | None
    state: str
    detail: str | None = None
    repaired: str | None = None  # REENABLED, RECREATED or RESUBSCRIBED
    repaired_at: datetime | None = None

    def sentence(self) -> str | None:
        """What the dashboard says, when there is anything to say."""
        when = self.repaired_at.strftime("%Y-%m-%d %H:%M UTC") if self.repaired_at else ""
        if self.state == FAILED:
            return f"Could not check the Aircall webhook: {self.detail}"
        if self.repaired == REENABLED:
            return ("Aircall had disabled the webhook after failed deliveries; "
                    f"re-enabled at {when}.")
        if self.repaired == RECREATED:
            return f"The Aircall webhook had been deleted; created again at {when}."
        if self.repaired == RESUBSCRIBED:
            return f"The Aircall webhook's events had been changed; restored at {when}."
        return None


def read_health(services: Database, installation_id: int) -> WebhookHealth | None:
    with services.sessions() as session:
        row = session.get(ServiceState, HEALTH_KEY.format(installation_id=installation_id))
    if row is None:
        return None
    data = json.loads(row.value)
    return WebhookHealth(
        checked_at=_time(data.get("checked_at")), state=data.get("state", OK),
        detail=data.get("detail"), repaired=data.get("repaired"),
        repaired_at=_time(data.get("repaired_at")),
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _record(services: WebhookHealthDeps, installation_id: int, state: str, detail: str | None,
            now: datetime) -> None:
    key = HEALTH_KEY.format(installation_id=installation_id)
    with services.sessions.begin() as session:
        row = session.get(ServiceState, key)
        data: dict[str, Any] = json.loads(row.value) if row is not None else {}
        data.update(checked_at=now.isoformat(), state=state, detail=detail)
        if state in (REENABLED, RECREATED, RESUBSCRIBED):
            data.update(repaired=state, repaired_at=now.isoformat())
        if row is None:
            session.add(ServiceState(key=key, value=json.dumps(data)))
        else:
            row.value = json.dumps(data)


async def check_aircall_webhooks(services: WebhookHealthDeps) -> dict[int, str]:
    """Check (and mend) every installation's Aircall webhook; the state of each."""
    # The database work runs in threads: this runs on the worker's event loop, beside the
    # jobs of its other slots.
    installations = await asyncio.to_thread(_installations, services)
    results: dict[int, str] = {}
    for installation_id, webhook_id in installations:
        now = services.clock.now()
        try:
            state = await _check_one(services, installation_id, webhook_id)
            detail = None
        except DeliveryError as exc:
            state, detail = FAILED, exc.message
        await asyncio.to_thread(_record, services, installation_id, state, detail, now)
        if state != OK:
            log.warning("aircall.webhook_checked", installation_id=installation_id,
                        state=state, detail=detail)
        results[installation_id] = state
    return results


def _installations(services: WebhookHealthDeps) -> list[tuple[int, str | None]]:
    """(id, webhook id) of every installation Aircall has authorised."""
    with services.sessions() as session:
        rows = session.execute(select(Installation.id, Installation.aircall_webhook_id)
                               .where(Installation.aircall_access_token_enc.is_not(None))
                               .order_by(Installation.id)).all()
    return [(installation_id, webhook_id) for installation_id, webhook_id in rows]


async def _check_one(
    services: WebhookHealthDeps, installation_id: int, webhook_id: str | None
) -> str:
    token = await asyncio.to_thread(aircall_access_token, services, installation_id)
    client = services.aircall(token)
    hook = await client.get_webhook(webhook_id) if webhook_id else None
    if hook is None:
        created = await client.create_webhook(
            f"{services.settings.public_url}/webhooks/aircall", AIRCALL_EVENTS,
            "whatsapp-helpdesk")
        await asyncio.to_thread(_store_new_webhook, services, installation_id, created)
        return RECREATED
    if not hook.active:
        await client.reactivate_webhook(hook.webhook_id, AIRCALL_EVENTS)
        return REENABLED
    if set(hook.events) != set(AIRCALL_EVENTS):
        await client.reactivate_webhook(hook.webhook_id, AIRCALL_EVENTS)
        return RESUBSCRIBED
    return OK


def _store_new_webhook(services: WebhookHealthDeps, installation_id: int,
                       created: CreatedWebhook) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is not None:
            installation.aircall_webhook_id = created.webhook_id
            installation.aircall_webhook_token_hash = token_digest(created.token)
            installation.updated_at = services.clock.now()


def claim_check_turn(services: WebhookHealthDeps, interval: timedelta, *,
                     key: str = NEXT_CHECK_KEY) -> bool:
    """Whether this worker runs the check now: with several workers, the one that moves
    the shared "next check" time forward does it, the others skip. `key` names the
    schedule, so other periodic jobs (payload pruning) take turns the same way."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        row = session.get(ServiceState, key)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(ServiceState(key=key, value=(now + interval).isoformat()))
            except IntegrityError:
                return False
            return True
        if datetime.fromisoformat(row.value) > now:
            return False
        moved = session.execute(
            update(ServiceState)
            .where(ServiceState.key == key, ServiceState.value == row.value)
            .values(value=(now + interval).isoformat())
        )
        return bool(rows_changed(moved))


async def run_periodically(services: WebhookHealthDeps, stopping: asyncio.Event) -> None:
    """The worker's webhook check, every AIRCALL_WEBHOOK_CHECK_SECONDS (R53)."""
    interval = services.settings.aircall_webhook_check_seconds
    while not stopping.is_set():
        try:
            if await asyncio.to_thread(claim_check_turn, services, timedelta(seconds=interval)):
                await check_aircall_webhooks(services)
        except Exception:
            # A database or network hiccup must not stop the worker; next round retries.
            log.exception("aircall.webhook_check_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=min(interval, 30.0))

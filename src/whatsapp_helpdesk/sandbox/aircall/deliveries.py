"""Webhook deliveries as Aircall makes them (§A8.2, §A8.5).

Every event goes to every active webhook of the company subscribed to it, in the envelope
`{resource, event, timestamp, token, data}`. Delivery is at least once and unordered (options
for extra copies and random delays), an attempt fails on a non-2xx answer or after the
timeout, failed events are retried on a schedule (up to 50 times), a webhook is
auto-disabled after N consecutive failures (and then gets no new event) and re-enabled by a
later success or by `PUT active:true`, and retries stop once the event is older than 12 h on
the sandbox clock. Every attempt is logged (Saleor-style delivery log).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.clock import SandboxClock, to_iso, to_unix_seconds
from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.state import SandboxState, Webhook

Outcome = Literal["success", "failure", "gave_up", "abandoned"]


class Sandbox(Protocol):
    """What deliveries need of the live sandbox (`runtime.Sandbox`, which owns the
    dispatcher): named here so this module does not import the runtime back."""

    clock: SandboxClock
    state: SandboxState

    @property
    def config(self) -> SandboxConfig: ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None: ...

    def http_client(self) -> httpx.AsyncClient: ...


@dataclass
class Delivery:
    """One event on its way to one webhook (one copy of it, when duplicates are on)."""

    id: int
    event_id: str
    event: str
    webhook_id: str
    payload: Json
    created_at: datetime
    copy: int
    attempts: int = 0
    state: Literal["pending", "delivered", "gave_up", "abandoned"] = "pending"


@dataclass(frozen=True)
class EmittedEvent:
    event_id: str
    event: str
    webhook_ids: tuple[str, ...]


class WebhookDispatcher:
    """Fans events out to webhooks and drives each delivery to success or give-up."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._ids = itertools.count(1)
        self.log: deque[Json] = deque(maxlen=constants.DELIVERY_LOG_LIMIT)
        self.in_flight: dict[int, Delivery] = {}  # finished deliveries leave this map

    def clear(self) -> None:
        self.log.clear()
        self.in_flight.clear()

    # --- fan-out -----------------------------------------------------------------------------

    def emit(
        self,
        *,
        company_id: int,
        event: str,
        data: Json,
        number_id: int | None = None,
        only_webhooks: list[Webhook] | None = None,
    ) -> EmittedEvent:
        """Build the envelope once and start one delivery per subscribed webhook (and copy)."""
        sandbox = self._sandbox
        targets = (
            only_webhooks
            if only_webhooks is not None
            else self.subscribers(company_id=company_id, event=event, number_id=number_id)
        )
        event_id = uuid.uuid4().hex
        now = sandbox.clock.now()
        envelope_base = {
            "resource": event.split(".", 1)[0],
            "event": event,
            "timestamp": to_unix_seconds(now),  # UNIX seconds (§A8.2)
        }
        copies = 1 + sandbox.config.duplicate_deliveries
        for webhook in targets:
            payload = {**envelope_base, "token": webhook.token, "data": data}
            for copy in range(copies):
                delivery = Delivery(
                    id=next(self._ids), event_id=event_id, event=event,
                    webhook_id=webhook.webhook_id, payload=payload, created_at=now, copy=copy,
                )
                self.in_flight[delivery.id] = delivery
                sandbox.spawn(self._drive(delivery))
        return EmittedEvent(event_id, event, tuple(w.webhook_id for w in targets))

    def subscribers(self, *, company_id: int, event: str, number_id: int | None) -> list[Webhook]:
        state = self._sandbox.state
        integration = state.integrations.get(company_id)
        resource = event.split(".", 1)[0]
        found = []
        for webhook in state.webhooks.values():
            if webhook.company_id != company_id or not webhook.active:
                continue
            if state.webhook_retired(webhook):
                continue
            if event not in webhook.events:
                continue
            if webhook.created_by_token is not None and integration is not None:
                if not integration.active:
                    continue  # a disabled integration receives nothing [I]
                filtered = resource in constants.NUMBER_FILTERED_RESOURCES
                if filtered and number_id is not None and number_id not in integration.number_ids:
                    continue
            found.append(webhook)
        return sorted(found, key=lambda w: w.legacy_id)

    # --- one delivery ------------------------------------------------------------------------

    async def _drive(self, delivery: Delivery) -> None:
        try:
            await self._drive_until_done(delivery)
        finally:
            self.in_flight.pop(delivery.id, None)

    async def _drive_until_done(self, delivery: Delivery) -> None:
        sandbox = self._sandbox
        shuffle_ms = sandbox.config.shuffle_window_ms
        if shuffle_ms:
            await asyncio.sleep(random.uniform(0, shuffle_ms / 1000))
        while True:
            webhook = sandbox.state.webhooks.get(delivery.webhook_id)
            if webhook is None:
                self._finish(delivery, "abandoned", "webhook deleted")
                return
            if not webhook.active and not webhook.auto_disabled:
                self._finish(delivery, "abandoned", "webhook disabled by its owner")
                return
            if self._too_old(delivery):
                self._finish(delivery, "gave_up", "older than the retry horizon")
                return
            retries = sandbox.config.retry_max_retries
            if delivery.attempts > retries:
                self._finish(delivery, "gave_up", f"retried {retries} times without success")
                return
            delivery.attempts += 1
            if await self._attempt(delivery, webhook):
                delivery.state = "delivered"
                webhook.consecutive_failures = 0
                if webhook.auto_disabled:  # a success re-enables it (§A8.5)
                    webhook.active, webhook.auto_disabled = True, False
                return
            webhook.consecutive_failures += 1
            threshold = sandbox.config.disable_after_failures
            if webhook.active and webhook.consecutive_failures >= threshold:
                webhook.active, webhook.auto_disabled = False, True
            await asyncio.sleep(sandbox.config.retry_delay(delivery.attempts))

    def _too_old(self, delivery: Delivery) -> bool:
        age = (self._sandbox.clock.now() - delivery.created_at).total_seconds()
        return age >= self._sandbox.config.retry_give_up_after_seconds

    async def _attempt(self, delivery: Delivery, webhook: Webhook) -> bool:
        sandbox = self._sandbox
        timeout = sandbox.config.delivery_timeout_seconds
        client = sandbox.http_client()
        started = time.perf_counter()
        at = sandbox.clock.now()
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                response = await client.post(
                    webhook.url,
                    content=json.dumps(delivery.payload).encode(),
                    headers=constants.DELIVERY_HEADERS,
                    timeout=timeout + 1,
                )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"timeout after {timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = error is None
        self.log.append(
            {
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "event": delivery.event,
                "webhook_id": webhook.webhook_id,
                "url": webhook.url,
                "copy": delivery.copy,
                "attempt": delivery.attempts,
                "at": to_iso(at),
                "status_code": status_code,
                "error": error,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": "success" if ok else "failure",
                "payload": delivery.payload,
            }
        )
        return ok

    def _finish(self, delivery: Delivery, outcome: Outcome, reason: str) -> None:
        delivery.state = "gave_up" if outcome == "gave_up" else "abandoned"
        self.log.append(
            {
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "event": delivery.event,
                "webhook_id": delivery.webhook_id,
                "url": None,
                "copy": delivery.copy,
                "attempt": None,
                "at": to_iso(self._sandbox.clock.now()),
                "status_code": None,
                "error": reason,
                "duration_ms": 0.0,
                "outcome": outcome,
                "payload": delivery.payload,
            }
        )

    def pending_count(self) -> int:
        return len(self.in_flight)

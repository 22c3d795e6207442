"""R53: Aircall disables a webhook after repeated failed deliveries; the worker's periodic
check re-enables it (with our events: an update without them subscribes to everything),
recreates a deleted one, and the dashboard says what was done.

The whole story on both databases: the database goes down, the spool fills, the webhook
gets failures and the sandbox Aircall disables it; the database returns, the spool is
replayed, the check re-enables the webhook, and messages sent after that arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from harness.outage import DatabaseOutage
from harness.pages import wait_for
from harness.stack import Stack

from whatsapp_helpdesk.aircall import AIRCALL_EVENTS
from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.credentials import aircall_access_token
from whatsapp_helpdesk.dashboard.reads import dashboard_view
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.operations import webhook_health
from whatsapp_helpdesk.web.dashboard_routes import DASHBOARD_READS

# On SQLite and PostgreSQL (tests/conftest.py): webhooks repaired around a database outage.
pytestmark = pytest.mark.both_databases

# The outage tests wait longer than the pages' default (a replay follows the database's return).
_wait_for = partial(wait_for, timeout=20.0)


@pytest.fixture
def outage(stack: Stack, database_url: str, request: pytest.FixtureRequest
           ) -> Iterator[DatabaseOutage]:
    server = (request.getfixturevalue("postgres_server")
              if database_url.startswith("postgresql") else None)
    cut = DatabaseOutage(database_url, stack.services.engine, server)
    yield cut
    if cut.is_down:
        cut.restore()


def _our_webhook(stack: Stack, webhook_id: str | None = None) -> dict[str, Any]:
    if webhook_id is None:
        with stack.services.sessions() as session:
            webhook_id = session.get(Installation, stack.installation_id).aircall_webhook_id
    [hook] = [w for w in stack.aircall.get("/_sandbox/webhooks").json()["webhooks"]
              if w["webhook_id"] == webhook_id]
    return dict(hook)


def _texts(stack: Stack) -> list[str]:
    return [m["text"] for t in stack.tickets() for m in t["messages"]]


def _run_periodic_check_until(stack: Stack, done: Callable[[], bool]) -> None:
    """The worker's periodic check (as `Worker.run` runs it), every 0.2 s, until `done`."""
    settings = stack.settings.model_copy(update={"aircall_webhook_check_seconds": 0.2})

    async def main(services: Services) -> None:
        services.settings = settings
        stopping = asyncio.Event()
        task = asyncio.create_task(webhook_health.run_periodically(services, stopping))
        deadline = time.monotonic() + 20
        while not await asyncio.to_thread(done):
            assert time.monotonic() < deadline, "the check did not mend the webhook"
            await asyncio.sleep(0.05)
        stopping.set()
        await task

    stack.run(main)


def _dashboard_note(stack: Stack) -> str | None:
    view = dashboard_view(stack.services, DASHBOARD_READS, stack.installation_id)
    return view.aircall_webhook_note


def test_R53_webhook_disabled_during_an_outage_is_re_enabled_and_nothing_spooled_is_lost(
    stack: Stack, outage: DatabaseOutage
) -> None:
    stack.connect()
    stack.customer_says("before the cut")
    stack.wait_deliveries()
    stack.drain()
    # Aircall disables after consecutive failures; its next retry is far off, so only our
    # check can bring the webhook back within the test.
    stack.aircall.post("/_sandbox/config", json={"disable_after_failures": 3,
                                                 "retry_schedule": [3600]})
    stack.web_app.state.webhook_spool.spool.max_bytes = 2500  # room for a few records

    webhook_id = _our_webhook(stack)["webhook_id"]
    outage.cut()
    sent = 0
    while _our_webhook(stack, webhook_id)["active"]:
        assert sent < 30, "the webhook was never disabled"
        text = f"during the cut {sent}"
        stack.customer_says(text)
        _wait_for(lambda t=text: any(d["payload"]["data"]["body"] == t for d in stack.aircall.get(
            "/_sandbox/deliveries", params={"include_payload": "true"}).json()["deliveries"]),
            what="an attempt")
        sent += 1
    log = stack.aircall.get("/_sandbox/deliveries",
                            params={"include_payload": "true"}).json()["deliveries"]
    spooled = [d["payload"]["data"]["body"] for d in log
               if d["outcome"] == "success" and d["payload"]["data"]["body"].startswith("during")]
    refused = [d for d in log if d["outcome"] == "failure"]
    assert spooled and all(d["status_code"] == 503 for d in refused) and len(refused) >= 3
    stack.customer_says("while disabled")  # Aircall sends nothing to a disabled webhook

    outage.restore()
    _wait_for(lambda: stack.bridge.get("/healthz").json()["spool"]["records"] == 0,
              what="the spool to be replayed")
    _run_periodic_check_until(stack, lambda: _our_webhook(stack)["active"])

    hook = _our_webhook(stack)
    assert sorted(hook["events"]) == sorted(AIRCALL_EVENTS)  # not "everything"
    note = _dashboard_note(stack)
    assert note is not None and note.startswith(
        "Aircall had disabled the webhook after failed deliveries; re-enabled at ")
    stack.customer_says("after the re-enable")
    _wait_for(lambda: any(d["outcome"] == "success" and d["payload"]["data"]["body"]
                          == "after the re-enable" for d in stack.aircall.get(
        "/_sandbox/deliveries", params={"include_payload": "true"}).json()["deliveries"]),
        what="the delivery after the re-enable")
    stack.drain()

    # Every message Aircall got a 2xx for is in the ticket once, in order; the refused ones
    # wait for Aircall's own retries (up to 12 h), the one sent while disabled never came.
    assert _texts(stack) == ["before the cut", *spooled, "after the re-enable"]


def test_R53_a_deleted_webhook_is_created_again_and_its_new_token_is_accepted(
    stack: Stack,
) -> None:
    stack.connect()
    with stack.services.sessions() as session:
        old = session.get(Installation, stack.installation_id)
        old_id, old_digest = old.aircall_webhook_id, old.aircall_webhook_token_hash

    async def delete(services: Services) -> None:
        client = services.aircall(aircall_access_token(services, stack.installation_id))
        await client.delete_webhook(str(old_id))

    stack.run(delete)
    stack.customer_says("nobody listens")  # no webhook: Aircall sends it nowhere

    assert stack.run(webhook_health.check_aircall_webhooks) == {stack.installation_id: "recreated"}

    with stack.services.sessions() as session:
        new = session.get(Installation, stack.installation_id)
        assert new.aircall_webhook_id != old_id
        assert new.aircall_webhook_token_hash != old_digest
    assert sorted(_our_webhook(stack)["events"]) == sorted(AIRCALL_EVENTS)
    assert "created again at" in (_dashboard_note(stack) or "")
    stack.customer_says("heard again")
    stack.wait_deliveries()
    stack.drain()
    assert _texts(stack) == ["heard again"]
    # A check with nothing to mend changes nothing and keeps the last repair on show.
    assert stack.run(webhook_health.check_aircall_webhooks) == {stack.installation_id: "ok"}
    assert "created again at" in (_dashboard_note(stack) or "")

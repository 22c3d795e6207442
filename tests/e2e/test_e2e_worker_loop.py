"""No database call runs on the worker's event loop (issue 13): its job slots share one loop,
so a query there holds up every other slot's HTTP calls. Each job kind is driven through the
real worker (web app, sandboxes, outbox) and every statement made on the worker's loop
thread is recorded (harness/event_loop_guard.py `watch_loop`) and named by its frames: the
jobs read in a thread, await HubSpot and Aircall on the loop, and write in a thread.

The setup of each flow (an earlier conversation, a connected number) is drained unwatched;
only the worker runs that do the flow's own jobs are watched, and the test checks that those
jobs ran.

On the fast Aircall bucket (tests/harness/pacing.py): the flows' Aircall calls (the numbers
refresh, the reply, the template, the photo) go at once instead of waiting for the slots
the install's calls filled on the real 60 / min bucket; the pacing is not what is tested."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from harness.event_loop_guard import watch_loop
from harness.pacing import fast_aircall_bucket
from harness.stack import CUSTOMER, PORTAL, SUPPORT_FR, Stack
from sqlalchemy import func, select
from test_e2e_connect_native_ticketing import SALES_UK, _call, _settings
from test_e2e_reengagement import TEMPLATE_1_VAR, _after_the_window, _choose
from test_e2e_reply import _agent_replies, _conversation_started, _hubspot_message, _phone

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.numbers_refresh import request_refresh
from whatsapp_helpdesk.db.models import DeliveryAttempt, Installation, Number, OutboxEntry
from whatsapp_helpdesk.worker.runner import Worker

SMITH = "+447700900123"  # Aircall contact of "Smith & Co": a set_contact_company job
GONE_AT_AIRCALL = "999999"  # a number row Aircall no longer lists: the refresh checks it

pytestmark = fast_aircall_bucket


class Watched:
    """The worker runs of one flow: the statements on their loop, the kinds they worked."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.calls: list[str] = []
        self.kinds_worked: set[str] = set()

    def drain(self) -> None:
        stack = self.stack
        with stack.services.sessions() as session:
            last_attempt = session.scalar(select(func.max(DeliveryAttempt.id))) or 0

        async def work(services: Services) -> None:
            with watch_loop() as calls:
                await Worker(services, concurrency=4).run_until_idle(timeout=30)
            self.calls.extend(call for call in calls if call not in self.calls)

        stack.run(work)
        with stack.services.sessions() as session:
            self.kinds_worked |= set(session.scalars(
                select(OutboxEntry.kind).join(DeliveryAttempt,
                                              DeliveryAttempt.outbox_id == OutboxEntry.id)
                .where(DeliveryAttempt.id > last_attempt)))

    def settle(self) -> None:
        """Work, let Aircall's echoes and statuses arrive, work what they caused."""
        self.drain()
        self.stack.wait_deliveries()
        self.drain()


def _inbound(stack: Stack, watched: Watched) -> None:
    """A message in (from a contact with a company), and a photo."""
    stack.connect()
    stack.customer_says("Hello from Smith & Co", phone=SMITH)
    stack.customer_says("Voici la photo", type="image")
    stack.wait_deliveries()
    watched.drain()


def _reply(stack: Stack, watched: Watched) -> None:
    """The agent's reply out, its SENT reported to HubSpot, then its READ: a status from
    Aircall's webhook, whose report names no channel (the job reads the registered one)."""
    thread_id = _conversation_started(stack)
    hubspot_id = _agent_replies(stack, thread_id, "We are on it!")
    watched.settle()
    [received] = _phone(stack)
    stack.aircall.post(f"/_sandbox/customer/messages/{received['id']}/read")
    watched.settle()
    assert _hubspot_message(stack, hubspot_id)["status"] == "READ"


def _template(stack: Stack, watched: Watched) -> None:
    """A reply after the window: the number's template goes, and the ticket's note."""
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    _agent_replies(stack, thread_id, "Your parcel left on Monday.")
    watched.settle()


def _native_ticket(stack: Stack, watched: Watched) -> None:
    _settings(stack, SALES_UK, connected_to_hubspot=True, native_ticketing=True)
    _call(stack, SALES_UK, "missed")
    stack.wait_deliveries()
    watched.drain()


def _numbers(stack: Stack, watched: Watched) -> None:
    """A full refresh (with a number Aircall no longer has), then a `number.created`."""
    with stack.services.sessions.begin() as session:
        session.add(Number(installation_id=stack.installation_id,
                           aircall_number_id=GONE_AT_AIRCALL))
    request_refresh(stack.services, stack.installation_id)
    watched.drain()
    answer = stack.aircall.post(f"/_sandbox/numbers/{SUPPORT_FR}/events",
                                json={"event": "number.created"})
    assert answer.status_code < 300, answer.text
    stack.wait_deliveries()
    watched.drain()


def _auth_revoked(stack: Stack, watched: Watched) -> None:
    """HubSpot's grant revoked: the failure marks the installation for re-authentication."""
    stack.connect()
    stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/oauth/revoke")
    for sandbox in (stack.bridge, stack.hubspot):
        sandbox.post("/_sandbox/clock", json={"advance_seconds": 31 * 60})
    stack.customer_says("nobody can publish me now", phone=CUSTOMER)
    stack.wait_deliveries()
    watched.drain()
    with stack.services.sessions() as session:
        installation = session.get(Installation, stack.installation_id)
        assert installation is not None and installation.reauth_required


FLOWS: dict[str, tuple[Callable[[Stack, Watched], None], set[str]]] = {
    "inbound": (_inbound, {"publish_inbound", "set_contact_company", "fetch_media"}),
    "reply": (_reply, {"send_reply", "report_status"}),
    "template": (_template, {"send_reply", "reengagement_note", "report_status"}),
    "native_ticket": (_native_ticket, {"native_ticket"}),
    "numbers": (_numbers, {"refresh_numbers", "sync_number"}),
    "auth_revoked": (_auth_revoked, {"publish_inbound"}),
}


@pytest.mark.both_databases
@pytest.mark.parametrize("flow", FLOWS)
def test_the_worker_keeps_database_calls_off_its_event_loop(stack: Stack, flow: str) -> None:
    run, kinds = FLOWS[flow]
    watched = Watched(stack)
    run(stack, watched)
    assert kinds <= watched.kinds_worked, watched.kinds_worked
    assert watched.calls == [], "database calls on the worker's loop:\n" + "\n".join(
        watched.calls)


def test_watch_loop_names_a_query_on_the_loop_and_not_one_in_a_thread(stack: Stack) -> None:
    """The check itself: a query on the watched loop is named with its frame; the same query
    in a thread the loop hands it to is not recorded."""
    import asyncio

    from sqlalchemy import text

    def query(services: Services) -> int:
        with services.engine.connect() as connection:
            return int(connection.execute(text("SELECT 7")).scalar_one())

    async def on_the_loop_and_in_a_thread(services: Services) -> list[str]:
        with watch_loop() as calls:
            assert await asyncio.to_thread(query, services) == 7
            assert calls == []
            assert query(services) == 7
        return calls

    calls = stack.run(on_the_loop_and_in_a_thread)
    # On SQLite the connection's BEGIN is named too, from the same frame.
    assert len([call for call in calls if call.startswith("SELECT 7")]) == 1, calls
    assert all("test_e2e_worker_loop.py:" in call and " query  <" in call for call in calls), calls

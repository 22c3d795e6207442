"""Issue 6: the sandbox home (what runs, the four screens, the story) and its one-click reset
of all demo data — both sandboxes, our database, every clock — back to the demo's layout,
after which the story can be played again. On both databases, over real HTTP."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from harness.pages import PORTAL, csrf_of, hubspot_accounts, number_settings, text_of
from sqlalchemy import func, select

from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Installation,
    Message,
    OutboxEntry,
    ServiceState,
)

SALES_UK, BERLIN, MADRID, US_PENDING = 1002, 1003, 1004, 1005
DAY = 24 * 3600


def _count(stack: Any, model: Any) -> int:
    return _count_in(stack.services, model)


def _play_a_little(stack: Any) -> None:
    """Some of everything the reset must remove: a channel, a ticket, a reply, moved clocks."""
    stack.connect()
    stack.customer_says("Bonjour, ma commande est en retard")
    stack.wait_deliveries()
    stack.drain()
    assert len(stack.tickets()) == 1
    for client in (stack.hubspot, stack.aircall, stack.bridge):
        assert client.post("/_sandbox/clock", json={"advance_seconds": DAY + 3600}).is_success


def _reset(stack: Any) -> Any:
    home = stack.bridge.get("/")
    return stack.bridge.post("/_sandbox/reset", data={"csrf_token": csrf_of(home.text)})


def test_home_says_what_runs_and_links_the_four_screens(stack) -> None:
    home = stack.bridge.get("/")
    assert home.status_code == 200
    running = text_of(home.text, "what-is-running")
    assert "sandbox HubSpot" in running and "sandbox Aircall" in running
    assert stack.settings.hubspot_api_base in running and stack.settings.aircall_api_base in running
    hub, air = stack.settings.hubspot_api_base, stack.settings.aircall_api_base
    for link in (f'href="{hub}/help-desk/{PORTAL}/settings/channels"',
                 f'href="{hub}/help-desk/{PORTAL}/tickets"',
                 f'href="{air}/phone?also_notify=', 'href="/dashboard"'):
        assert link in home.text, link
    # The phone's clock jump reaches the sandbox HubSpot and this service.
    assert "also_notify=" + "http%3A%2F%2F127.0.0.1%3A" in home.text
    assert stack.settings.public_url.replace(":", "%3A").replace("/", "%2F") in home.text
    # The links lead somewhere.
    assert stack.hubspot.get(f"/help-desk/{PORTAL}/settings/channels").status_code == 200
    assert stack.aircall.get("/phone").status_code == 200


def test_reset_restores_the_demo_and_the_story_plays_again(stack) -> None:
    _play_a_little(stack)
    assert _count(stack, Message) == 1

    reset = _reset(stack)
    assert reset.status_code == 303 and reset.headers["location"] == "/"
    home = stack.bridge.get("/")
    assert "The demo data is back to its starting point" in home.text
    assert "ahead of real time" not in text_of(home.text, "service-clock")

    # Both sandboxes are back to their seed, clocks included.
    assert stack.tickets() == [] and hubspot_accounts(stack) == []
    assert stack.hubspot.get("/_sandbox/clock").json()["offset_seconds"] == 0
    assert stack.aircall.get("/_sandbox/clock").json()["offset_seconds"] == 0
    # Our database: one fresh installation, nothing else of the old story, the clock at 0.
    for model in (Message, Conversation, ChannelAccount):
        assert _count(stack, model) == 0, model
    with stack.services.sessions() as session:
        # The outbox: only the new install's read of the numbers, done by the reset itself.
        assert session.execute(select(OutboxEntry.kind, OutboxEntry.state)).all() == [
            ("refresh_numbers", "done")]
    with stack.services.sessions() as session:
        installations = session.scalars(select(Installation)).all()
        keys = set(session.scalars(select(ServiceState.key)))
    assert [i.hubspot_portal_id for i in installations] == [str(PORTAL)]
    stack.installation_id = installations[0].id
    assert all("clock" not in key for key in keys), keys
    assert abs((stack.services.clock.now() - _real_now()).total_seconds()) < 60
    # The channel is registered again, on the sandbox HubSpot too.
    channel_id = stack.services.channel_id()
    assert channel_id is not None
    assert [c["id"] for c in stack.hubspot.get("/_sandbox/channels").json()["channels"]] == [
        channel_id]

    # The demo's layout: each R3 condition shows somewhere.
    def switches(number: int) -> tuple[bool, bool, bool]:
        row = number_settings(stack, number)
        return row.connected_to_hubspot, row.helpdesk_enabled, row.native_ticketing

    assert switches(1001) == (True, True, False)  # ready: the story's number
    assert switches(BERLIN) == (True, False, False)  # R3 (e)
    assert switches(US_PENDING) == (True, True, False)  # R3 (a) alone: line pending
    assert switches(SALES_UK) == (True, False, True)  # classic integration (R35)
    assert switches(MADRID) == (False, False, False)  # R3 (a), (d), (e)

    # And the story plays again from the start.
    stack.connect()
    stack.customer_says("Me revoilà")
    stack.wait_deliveries()
    stack.drain()
    tickets = stack.tickets()
    assert len(tickets) == 1


def test_reset_needs_the_pages_form_token(stack) -> None:
    _play_a_little(stack)
    refused = stack.bridge.post("/_sandbox/reset", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert "Nothing was reset" in refused.text
    assert len(stack.tickets()) == 1 and _count(stack, Message) == 1


def test_reset_says_so_when_a_sandbox_does_not_answer(tmp_path) -> None:
    """`serve` was stopped, or a sandbox died: the page says what to do, nothing is wiped."""
    import asyncio
    import socket

    import httpx

    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db.migrate import upgrade
    from whatsapp_helpdesk.settings import Settings
    from whatsapp_helpdesk.web.app import create_app

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = silent.getsockname()[1]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/s.db", sandbox_hubspot_port=port,
                        sandbox_aircall_port=port, _env_file=None)
    services = build_services(settings)
    upgrade(services.engine)
    with services.sessions.begin() as session:
        session.add(ServiceState(key="kept", value="yes"))

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            home = await client.get("/")
            return await client.post("/_sandbox/reset",
                                     data={"csrf_token": csrf_of(home.text)})

    try:
        answer = asyncio.run(main())
    finally:
        silent.close()
        services.engine.dispose()
    assert answer.status_code == 502
    assert "The demo could not be reset" in answer.text and "serve" in answer.text
    assert _count_in(services, ServiceState) == 1


def _count_in(services: Any, model: Any) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def _real_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.both_databases
def test_reset_waits_for_the_job_a_worker_is_running(stack) -> None:
    """A job in flight finishes before its rows are wiped: otherwise it would write its
    outcome onto a row of the new demo (SQLite reuses deleted ids) or act on the reset
    sandboxes. Meanwhile no new work is taken."""
    import threading
    import time
    from datetime import timedelta

    from sqlalchemy import update

    _play_a_little(stack)
    stack.customer_says("Waiting in the outbox")
    stack.customer_says("Waiting behind it")  # work that must not be taken meanwhile
    stack.wait_deliveries()
    with stack.services.sessions.begin() as session:
        entry = session.scalars(select(OutboxEntry).where(
            OutboxEntry.state == "pending").order_by(OutboxEntry.id)).first()
        entry.locked_by, entry.locked_until = "worker-x", stack.services.clock.now() + \
            timedelta(seconds=60)
        leased = entry.id
    answers: list[Any] = []
    resetting = threading.Thread(target=lambda: answers.append(_reset(stack)))
    resetting.start()

    def other_work_paused() -> bool:
        with stack.services.sessions() as session:
            others = session.scalars(select(OutboxEntry).where(
                OutboxEntry.id != leased, OutboxEntry.state == "pending")).all()
        later = stack.services.clock.now() + timedelta(hours=1)
        return bool(others) and all(e.available_at > later for e in others)

    # The reset holds the rest of the work back, then waits for the job in flight.
    deadline = time.monotonic() + 10
    while not other_work_paused():
        assert time.monotonic() < deadline, "the reset never held the other work back"
        time.sleep(0.05)
    assert not answers and len(stack.tickets()) == 1  # still waiting, nothing reset
    with stack.services.sessions.begin() as session:  # the worker finishes its job
        session.execute(update(OutboxEntry).where(OutboxEntry.id == leased).values(
            state="done", locked_until=None))
    resetting.join(timeout=30)
    assert answers and answers[0].status_code == 303
    assert stack.tickets() == []


def test_a_reset_that_could_not_reach_the_sandboxes_lets_the_work_go_on(tmp_path) -> None:
    import asyncio
    import socket
    from datetime import timedelta

    import httpx

    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db import outbox
    from whatsapp_helpdesk.db.migrate import upgrade
    from whatsapp_helpdesk.operations.sandbox_demo import reset_demo
    from whatsapp_helpdesk.settings import Settings

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    services = build_services(Settings(
        database_url=f"sqlite:///{tmp_path}/s.db", sandbox_hubspot_port=port,
        sandbox_aircall_port=port, _env_file=None))
    upgrade(services.engine)
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                 created_at=services.clock.now(),
                                 updated_at=services.clock.now()))
        session.flush()
        outbox.enqueue(session, installation_id=1, kind="publish_inbound",
                       now=services.clock.now())

    async def main() -> None:
        try:
            await reset_demo(services)
        finally:
            await services.aclose()

    try:
        try:
            asyncio.run(main())
            raise AssertionError("the reset should have failed")
        except httpx.HTTPError:
            pass
        with services.sessions() as session:
            [entry] = session.scalars(select(OutboxEntry)).all()
        assert entry.available_at <= services.clock.now() + timedelta(seconds=1)
    finally:
        silent.close()
        services.engine.dispose()


def test_issue15_reset_says_what_it_did_step_by_step(stack) -> None:
    """Issue 15 item 13 (R40): a reset takes a few seconds; the page then says each step it
    went through, counted, and how long it took."""
    _play_a_little(stack)

    assert _reset(stack).status_code == 303
    said = html.unescape(" ".join(stack.bridge.get("/").text.split()))

    steps = re.findall(r"(\d)/(\d) ([a-z][^;.()]+)", said)
    assert [(n, total) for n, total, _ in steps] == [(str(k), "6") for k in range(1, 7)]
    assert [what.strip() for *_, what in steps] == [
        "deliveries paused", "jobs in flight finished", "sandbox HubSpot reset",
        "sandbox Aircall reset", "this service's data emptied", "demo installed again"]
    assert re.search(r"Reset in \d+\.\d s", said)

"""Issue 17 item 7 (R7): "Refresh numbers from Aircall" is a background job of the worker;
the request only queues it (never waits for Aircall), the dashboard says it is under way,
then when it was done; a second click while one is queued queues nothing more."""

from __future__ import annotations

from harness.pages import number_settings, post_form, signed_in
from sqlalchemy import func, select, update

from whatsapp_helpdesk.connect.numbers_refresh import REFRESH_NUMBERS
from whatsapp_helpdesk.db.models import Number, OutboxEntry

SALES_UK = 1002


def _queued(stack) -> int:
    with stack.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.kind == REFRESH_NUMBERS, OutboxEntry.state == "pending")) or 0


def test_R7_refresh_is_queued_then_done_by_the_worker(stack) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).values(sms_enabled=False, name="old name"))
    client, _ = signed_in(stack)
    assert post_form(client, "/dashboard/numbers/refresh").status_code == 303
    page = client.get("/dashboard").text
    assert "Refreshing the numbers from Aircall in the background" in page
    assert 'id="numbers-refresh"' in page and "under way" in page
    # The request did not wait for Aircall: nothing is read yet, one job is queued.
    assert number_settings(stack, SALES_UK).name == "old name"
    assert _queued(stack) == 1
    post_form(client, "/dashboard/numbers/refresh")
    assert _queued(stack) == 1
    assert "already under way" in client.get("/dashboard").text

    stack.drain()
    sales = number_settings(stack, SALES_UK)
    assert sales.sms_enabled and sales.name == "Sales UK"
    page = client.get("/dashboard").text
    assert "Numbers refreshed from Aircall at" in page and "under way" not in page

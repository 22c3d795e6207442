"""Issue 17 item 7 (R7): "Refresh numbers from Aircall" is a background job of the worker;
the request only queues it (never waits for Aircall), the dashboard says it is under way,
then when it was done; a second click while one is queued queues nothing more."""

from __future__ import annotations

import pytest
from harness.pages import number_settings, post_form, signed_in, text_of
from harness.stack import running_stack
from sqlalchemy import func, select, update

from whatsapp_helpdesk.connect import numbers_refresh
from whatsapp_helpdesk.db.job_kinds import REFRESH_NUMBERS
from whatsapp_helpdesk.db.models import Number, OutboxEntry
from whatsapp_helpdesk.worker.runner import Worker

SALES_UK = 1002


def _queued(stack) -> int:
    with stack.services.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(OutboxEntry.kind == REFRESH_NUMBERS, OutboxEntry.state == "pending")
            )
            or 0
        )


# Aircall's real limit would pace the refresh's reads over 20 s of wall time: what this test
# proves is the queueing and the refresh, not the pacing (test_e2e_numbers_at_scale.py).
@pytest.mark.stack(aircall_rate_limit=6000, aircall_rate_window_seconds=60)
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


# --- progress and resumption (issue 17 item 7) ------------------------------------------------

DEMO_COMPANY = 1
FAST_AIRCALL = {"aircall_rate_limit": 6000, "aircall_rate_window_seconds": 60}


def _status_reads(stack) -> list[str]:
    """The numbers whose WhatsApp status the bridge asked Aircall, once per request."""
    calls = stack.aircall.get(f"/_sandbox/companies/{DEMO_COMPANY}/api-calls").json()["calls"]
    return [c["path"].split("/")[3] for c in calls if c["path"].endswith("/whatsapp_status")]


def test_refresh_shows_its_progress_and_continues_where_it_stopped(
    database_url, tmp_path, monkeypatch
) -> None:
    # Each run of the job reads one number and puts the entry back, as a worker killed
    # between two numbers would leave it.
    monkeypatch.setattr(numbers_refresh, "RUN_SECONDS", 0.0)
    with running_stack(database_url, tmp_path, **FAST_AIRCALL) as stack:
        added = stack.aircall.post(
            f"/_sandbox/companies/{DEMO_COMPANY}/numbers", json={"count": 6, "notify": False}
        ).json()["number_ids"]
        listed = stack.aircall.get(
            "/v1/numbers", params={"per_page": 1}, auth=("sandbox-api-id", "sandbox-api-token")
        )
        total = listed.json()["meta"]["total"]
        before = len(_status_reads(stack))
        client, _ = signed_in(stack)
        post_form(client, "/dashboard/numbers/refresh")

        stack.run(lambda s: Worker(s, concurrency=1).work_once())
        stack.run(lambda s: Worker(s, concurrency=1).work_once())
        shown = text_of(client.get("/dashboard").text, "numbers-refresh")
        assert shown == f"Reading your Aircall numbers: 2 of {total}."
        assert _queued(stack) == 1

        stack.drain()
        reads = _status_reads(stack)[before:]
        # Every number's status was asked exactly once over all the runs: none redone.
        assert len(reads) == total and len(set(reads)) == total
        assert {str(n) for n in added} <= set(reads)
        shown = text_of(client.get("/dashboard").text, "numbers-refresh")
        assert shown.startswith("Numbers refreshed from Aircall at")
        assert shown.endswith(f"({total} numbers).")
        assert number_settings(stack, added[-1]).whatsapp_enabled


def test_refresh_marks_removed_a_number_aircall_no_longer_has(database_url, tmp_path) -> None:
    with running_stack(database_url, tmp_path, **FAST_AIRCALL) as stack:
        # A number whose number.deleted never reached us (our webhook was down that day).
        with stack.services.sessions.begin() as session:
            session.add(
                Number(
                    installation_id=stack.installation_id,
                    aircall_number_id="999999",
                    name="Short-lived line",
                    digits="+33 1 70 00 00 00",
                    e164="+33170000000",
                    whatsapp_enabled=True,
                    connected_to_hubspot=False,
                    helpdesk_enabled=False,
                    native_ticketing=False,
                )
            )
        client, _ = signed_in(stack)
        assert "Short-lived line" in client.get("/dashboard").text

        post_form(client, "/dashboard/numbers/refresh")
        stack.drain()
        assert "Short-lived line" not in client.get("/dashboard").text
        assert number_settings(stack, 999999).removed_at is not None
        # Only that number was asked for, one by one (one request), not the others.
        calls = stack.aircall.get(f"/_sandbox/companies/{DEMO_COMPANY}/api-calls").json()
        assert [
            c["path"]
            for c in calls["calls"]
            if c["path"].startswith("/v1/numbers/") and c["path"].count("/") == 3
        ] == ["/v1/numbers/999999"]

"""Issue 17 item 7: authorising Aircall never waits on the company's numbers. The OAuth
callback stores the grant and the webhook and queues the numbers refresh; the worker reads
the numbers, paced, and the pages the admin sees next say how far it is and list the numbers
as they arrive.

The sandbox Aircall enforces its limit (60 calls a window, as Aircall's 60 / min) over a
shortened window on both sides (sandbox `rate_limit_window_seconds`, our
AIRCALL_RATE_WINDOW_SECONDS), so that the paced read of 85 numbers ends in seconds."""

from __future__ import annotations

import re

import httpx
import pytest
from harness.aircall_budget import api_calls, worker_running
from harness.pages import signed_in, signed_in_popup, text_of, wait_for
from harness.stack import Stack, running_stack
from sqlalchemy import func, select

from whatsapp_helpdesk.connect.numbers_refresh import refresh_status
from whatsapp_helpdesk.db.models import Number

DEMO_COMPANY = 1
LIMIT = 60
WINDOW = 1.0
ADDED = 80
PER_NUMBER_CALL = re.compile(r"^/v1/numbers/\d+")
READING = re.compile(r"Reading your Aircall numbers: (\d+) of (\d+)")
ADDED_LISTED = re.compile(r"<strong>Line \d+</strong>")  # the added numbers' names


def _authorise_aircall(client: httpx.Client) -> httpx.Response:
    """The admin's Install button for Aircall: consent page, then our OAuth callback."""
    step = client.get("/oauth/aircall/install")
    assert step.status_code == 303, step.text
    consent = httpx.get(step.headers["location"] + f"&company_id={DEMO_COMPANY}",
                        follow_redirects=False)
    assert consent.status_code == 302, consent.text
    return client.get(consent.headers["location"])


def _numbers(stack: Stack) -> int:
    with stack.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Number).where(
            Number.installation_id == stack.installation_id)) or 0


@pytest.mark.slow(seconds=10)
def test_install_queues_the_numbers_and_the_pages_show_them_arriving(
    database_url, tmp_path
) -> None:
    with running_stack(database_url, tmp_path, aircall_rate_limit=LIMIT,
                       aircall_rate_window_seconds=WINDOW) as stack:
        stack.aircall.post(f"/_sandbox/companies/{DEMO_COMPANY}/numbers",
                           json={"count": ADDED, "notify": False}).raise_for_status()
        stack.aircall.post("/_sandbox/config", json={
            "rate_limit_per_minute": LIMIT, "rate_limit_window_seconds": WINDOW,
        }).raise_for_status()
        total = ADDED + _numbers(stack)
        earlier = len(api_calls(stack))
        client, _ = signed_in(stack)

        back = _authorise_aircall(client)

        # The callback answered without reading any number: no call per number, no 429.
        assert back.status_code == 303, back.text
        during = api_calls(stack)[earlier:]
        assert not [c["path"] for c in during if PER_NUMBER_CALL.match(c["path"])]
        assert not [c for c in during if c["rate_limited"]]
        # What the admin sees next says the numbers are being read; so does the pop-up.
        page = client.get(back.headers["location"])
        assert page.status_code == 200
        assert "Reading your Aircall numbers" in text_of(page.text, "numbers-refresh")
        _, _, popup = signed_in_popup(stack, client)
        assert "Reading your Aircall numbers" in text_of(popup.text, "numbers-reading")

        def status() -> str:
            """What the dashboard's refresh line says, read as the dashboard reads it: a
            query, not a page (each page also signs the admin in and renders; polling them
            cost more CPU than the read being watched)."""
            return refresh_status(stack.services, stack.installation_id) or ""

        def read_so_far() -> int:
            match = READING.search(status())
            return int(match.group(1)) if match else 0

        with worker_running(stack, concurrency=2):
            def part_way() -> tuple[int, str] | None:
                if read_so_far() <= total - ADDED:  # the page would not be part way yet
                    return None
                shown = text_of(client.get("/dashboard").text, "numbers-refresh")
                match = READING.search(shown)
                # Past the demo's numbers (read first), not at the end yet.
                if match is None or not total - ADDED < int(match.group(1)) < total:
                    return None
                return int(match.group(1)), signed_in_popup(stack, client)[2].text

            _, popup_html = wait_for(part_way, timeout=30, what="the read part way")
            assert int(READING.search(text_of(popup_html, "numbers-reading")).group(2)) == total
            # The pop-up lists the numbers read so far (switched off for now, R3).
            assert 0 < len(ADDED_LISTED.findall(popup_html)) < ADDED
            wait_for(lambda: "Numbers refreshed from Aircall" in status(), timeout=60,
                     what="the read finished")
            assert "Numbers refreshed from Aircall" in text_of(
                client.get("/dashboard").text, "numbers-refresh")

        assert _numbers(stack) == total
        popup_html = signed_in_popup(stack, client)[2].text
        assert "Reading your Aircall numbers" not in popup_html
        assert len(ADDED_LISTED.findall(popup_html)) == ADDED
        calls = api_calls(stack)[earlier:]
        assert len([c for c in calls if c["path"].endswith("/whatsapp_status")]) == total
        assert not [c for c in calls if c["rate_limited"]]

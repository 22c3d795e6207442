"""Issue 17 item 6 (R7, R40): with thousands of numbers the dashboard comes a page at a
time, with a search, and stays small; the confirmation pages find a number on any page;
a failure of a number on another page is not shown as "other" on this one."""

from __future__ import annotations

from harness.pages import number_row, signed_in
from sqlalchemy import insert

from whatsapp_helpdesk.dashboard.reads import PAGE_SIZE
from whatsapp_helpdesk.db.models import Number

EXTRA = 1200


def _add_numbers(stack) -> None:
    """EXTRA more numbers, as a large Aircall company has (bulk, like bench/pages.py)."""
    with stack.services.sessions.begin() as session:
        session.execute(insert(Number), [
            {"installation_id": stack.installation_id, "aircall_number_id": str(900000 + i),
             "name": f"Line {i:04d}", "digits": f"+1 555 01{i:04d}", "e164": f"+155501{i:04d}",
             "country": "US", "calls_enabled": True, "sms_enabled": False,
             "whatsapp_enabled": False, "connected_to_hubspot": False,
             "helpdesk_enabled": False, "native_ticketing": False}
            for i in range(EXTRA)
        ])


def test_R7_many_numbers_come_a_page_at_a_time_with_search(stack) -> None:
    _add_numbers(stack)
    client, page = signed_in(stack)
    assert page.count('<tr id="number-') == PAGE_SIZE
    assert len(page.encode()) < 500_000
    assert "Support France" in page  # the first numbers come first
    assert "Page 1 of " in page and 'href="/dashboard?page=2' in page

    last = client.get("/dashboard", params={"page": 10_000})  # past the end: the last page
    assert last.status_code == 200 and "Line 1199" in last.text
    assert "Support France" not in last.text.split('id="numbers"')[1].split("</section>")[0]

    found = client.get("/dashboard", params={"q": "line 0042"})
    assert found.status_code == 200
    assert found.text.count('<tr id="number-') == 1 and "Line 0042" in found.text
    by_digits = client.get("/dashboard", params={"q": "555 011199"})
    assert by_digits.text.count('<tr id="number-') == 1 and "Line 1199" in by_digits.text
    lines = client.get("/dashboard", params={"q": "Line", "page": 2})
    assert lines.text.count('<tr id="number-') == PAGE_SIZE and "Line 0050" in lines.text
    assert 'href="/dashboard?page=3&amp;q=Line"' in lines.text  # the search stays on
    nothing = client.get("/dashboard", params={"q": "100%_"})  # LIKE wildcards are literal
    assert nothing.status_code == 200 and '<tr id="number-' not in nothing.text


def test_R7_a_confirmation_page_finds_a_number_on_any_page(stack) -> None:
    """A guard of the paging itself: the confirmation pages once looked the number up in
    the dashboard's (now first-page-only) list."""
    _add_numbers(stack)
    client, _ = signed_in(stack)
    far = number_row(stack, 900000 + EXTRA - 1)
    answer = client.get(f"/dashboard/numbers/{far}/disconnect")
    assert answer.status_code == 200 and "Line 1199" in answer.text
    assert f'id="number-{far}"' not in client.get("/dashboard").text

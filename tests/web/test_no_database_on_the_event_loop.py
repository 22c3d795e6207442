"""No database call runs on the web app's event loop (issue 13): a blocking query there
stalls every other request the app is serving. Each statement the bridge's engine executes
is checked for a running event loop in its thread; the routes' database work belongs in a
worker thread (run_in_threadpool / asyncio.to_thread).

Walks sign-in, the pop-up's connect, an Aircall webhook, the dashboard, a disconnect and a
reconnect: the async routes that call the database, directly or through an async flow. The sandbox's
movable clock is left out: it exists only in sandbox mode and reads its offset at most
every half second (bootstrap.StoredClockOffset.__call__)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from harness.pages import confirm, csrf_of, number_row, signed_in_popup
from sqlalchemy import event

SUPPORT_FR = 1001


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def statements_on_the_loop(stack: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        stack_now = traceback.extract_stack()
        if _on_a_loop() and not any(
            f.name == "__call__" and f.filename.endswith("bootstrap.py") for f in stack_now
        ):
            ours = [
                f"{frame.filename.rsplit('whatsapp_helpdesk/', 1)[-1]}:{frame.lineno}"
                for frame in stack_now
                if "whatsapp_helpdesk" in frame.filename
            ]
            seen.append(f"{' '.join(statement.split()[:3])} from {' < '.join(ours[::-1][:4])}")

    event.listen(stack.services.engine, "before_cursor_execute", record)
    yield seen
    event.remove(stack.services.engine, "before_cursor_execute", record)


def test_the_routes_keep_database_calls_off_the_event_loop(
    stack: Any, statements_on_the_loop: list[str]
) -> None:
    client, popup, page = signed_in_popup(stack)
    number = number_row(stack, SUPPORT_FR)
    assert confirm(client, popup, page.text, number).status_code == 303
    # A webhook too: Aircall's delivery of a customer's message is stored by the web app.
    stack.customer_says("Hello")
    stack.wait_deliveries()
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    gone = client.post(
        f"/dashboard/numbers/{number}/disconnect", data={"csrf_token": csrf_of(dashboard.text)}
    )
    assert gone.status_code == 303, gone.text
    # Reconnecting it: the confirmation page asks HubSpot, the form re-authorises.
    confirmation = client.get(f"/dashboard/numbers/{number}/reconnect")
    assert confirmation.status_code == 200, confirmation.text
    again = client.post(f"/dashboard/numbers/{number}/reconnect",
                        data={"csrf_token": csrf_of(confirmation.text)})
    assert again.status_code == 303, again.text
    assert "connected again" in client.get("/dashboard").text
    assert statements_on_the_loop == [], "\n".join(statements_on_the_loop)

"""No database call runs on the web app's event loop (issue 13): a blocking query there
stalls every other request the app is serving. Every statement is checked for the thread it
runs on (harness/event_loop_guard.py); the routes' database work belongs in a worker thread
(run_in_threadpool / asyncio.to_thread), their HTTP calls to HubSpot and Aircall stay on the
loop.

One test per flow that reaches the web app end to end, over real HTTP: the install (both
OAuth callbacks), a change of Aircall company, sign-in and the pop-up's connect, the
dashboard's actions, the template refresh, a disconnect and a reconnect, the webhooks
(Aircall's and HubSpot's reply), and the sandbox's home, reset and clock, health and
metrics. Each says which of our frames made an offending call. The worker's periodic webhook
check (operations/webhook_health.py) is held to the same on the worker's loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness.pages import (
    confirm,
    csrf_of,
    number_row,
    post_form,
    signed_in,
    signed_in_popup,
    text_of,
)
from harness.stack import PORTAL, Stack

SUPPORT_FR = 1001
OTHER_COMPANY = 2  # sandbox Aircall "Other Company"


def _consent(client: httpx.Client, install_path: str, **picked: int) -> httpx.Response:
    """Through one of our install buttons to the sandbox's consent page, which approves at
    once, and back to our callback."""
    step = client.get(install_path)
    assert step.status_code == 303, step.text
    choice = "".join(f"&{key}={value}" for key, value in picked.items())
    consent = httpx.get(step.headers["location"] + choice, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    return client.get(consent.headers["location"])


def _install(stack: Stack) -> None:
    """The install again, from the dashboard's button: HubSpot's callback, then Aircall's
    (a new webhook, the old one deleted, the numbers' read queued)."""
    client, _ = signed_in(stack)
    to_aircall = _consent(client, "/oauth/hubspot/install", portal_id=PORTAL)
    assert to_aircall.status_code == 303, to_aircall.text
    assert to_aircall.headers["location"] == "/oauth/aircall/install"
    done = _consent(client, "/oauth/aircall/install", company_id=1)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard", done.text


def _company_change(stack: Stack) -> None:
    client, _ = signed_in(stack)
    page = _consent(client, "/oauth/aircall/install", company_id=OTHER_COMPANY)
    assert page.status_code == 200, page.text
    done = client.post("/oauth/aircall/confirm", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    assert "Other Company" in text_of(done.text, "company-changed")


def _popup_connect(stack: Stack) -> None:
    client, popup, page = signed_in_popup(stack)
    assert confirm(client, popup, page.text, number_row(stack, SUPPORT_FR)).status_code == 303


def _dashboard_actions(stack: Stack) -> None:
    client, _ = signed_in(stack)
    number = number_row(stack, SUPPORT_FR)
    for path, fields in (
        (f"/dashboard/numbers/{number}/settings", {"setting": "native_ticketing",
                                                   "value": "on"}),
        ("/dashboard/company-whatsapp", {"choice": "yes"}),
        ("/dashboard/numbers/refresh", {}),
        ("/dashboard/deliveries/999999/retry", {}),  # not found: still looked up
    ):
        answer = post_form(client, path, **fields)
        assert answer.status_code in (303, 404), (path, answer.text)
    assert client.get("/dashboard?page=1&q=support").status_code == 200
    answer = post_form(client, "/dashboard/sessions/revoke")
    assert answer.status_code == 303, answer.text


def _templates(stack: Stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = signed_in(stack)
    number = number_row(stack, SUPPORT_FR)
    assert post_form(client, f"/dashboard/numbers/{number}/templates/refresh"
                     ).status_code == 303
    assert "Templates refreshed from Aircall" in client.get("/dashboard").text
    assert post_form(client, f"/dashboard/numbers/{number}/templates", template_id="9101",
                     fill="text").status_code == 303


def _disconnect_and_reconnect(stack: Stack) -> None:
    stack.connect(SUPPORT_FR)
    client, _ = signed_in(stack)
    number = number_row(stack, SUPPORT_FR)
    assert client.get(f"/dashboard/numbers/{number}/disconnect").status_code == 200
    gone = post_form(client, f"/dashboard/numbers/{number}/disconnect")
    assert gone.status_code == 303, gone.text
    # The confirmation page asks HubSpot, the form re-authorises.
    page = client.get(f"/dashboard/numbers/{number}/reconnect")
    assert page.status_code == 200, page.text
    again = client.post(f"/dashboard/numbers/{number}/reconnect",
                        data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 303, again.text
    assert "connected again" in client.get("/dashboard").text


def _webhooks(stack: Stack) -> None:
    """Aircall's delivery of the customer's message, then HubSpot's of the agent's reply."""
    stack.connect(SUPPORT_FR)
    stack.customer_says("Hello")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{ticket['threadId']}"
                                "/replies", json={"text": "We are on it!"})
    assert answer.status_code == 201, answer.text
    _wait_for_hubspot_deliveries(stack)
    stack.drain()
    stack.wait_deliveries()  # Aircall's echo and statuses of the reply


def _wait_for_hubspot_deliveries(stack: Stack, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.hubspot.get("/_sandbox/webhook-deliveries",
                            params={"state": "pending"}).json()["deliveries"]:
        assert time.monotonic() < deadline, "HubSpot webhooks still pending"
        time.sleep(0.05)


def _sandbox_home_and_reset(stack: Stack) -> None:
    home = stack.bridge.get("/")
    assert home.status_code == 200, home.text
    reset = stack.bridge.post("/_sandbox/reset", data={"csrf_token": csrf_of(home.text)})
    assert reset.status_code == 303, reset.text
    moved = stack.bridge.post("/_sandbox/clock", json={"advance_seconds": 60})
    assert moved.status_code == 200, moved.text
    assert stack.bridge.get("/healthz").status_code == 200
    assert stack.bridge.get("/metrics").status_code == 200


FLOWS: dict[str, Callable[[Stack], None]] = {
    "install": _install,
    "company_change": _company_change,
    "popup_connect": _popup_connect,
    "dashboard_actions": _dashboard_actions,
    "templates": _templates,
    "disconnect_and_reconnect": _disconnect_and_reconnect,
    "webhooks": _webhooks,
    "sandbox_home_and_reset": _sandbox_home_and_reset,
}


@pytest.mark.both_databases
@pytest.mark.parametrize("flow", FLOWS)
def test_the_web_app_keeps_database_calls_off_its_event_loop(
    database_calls_on_the_web_loop: list[str], stack: Stack, flow: str
) -> None:
    """Watched from before the stack starts: the web app's startup is checked too."""
    FLOWS[flow](stack)
    assert database_calls_on_the_web_loop == [], "\n".join(database_calls_on_the_web_loop)


def test_the_guard_sees_a_query_on_the_loop(
    stack: Any, database_calls_on_the_web_loop: list[str]
) -> None:
    """The check itself: a route of the web app that queries on its loop is named."""
    from sqlalchemy import text

    async def query_on_the_loop() -> dict[str, int]:
        with stack.services.engine.connect() as connection:
            return {"one": int(connection.execute(text("SELECT 1")).scalar_one())}

    stack.web_app.add_api_route("/_test/query-on-the-loop", query_on_the_loop)
    assert stack.bridge.get("/_test/query-on-the-loop").json() == {"one": 1}
    calls = database_calls_on_the_web_loop
    assert [c for c in calls if c.startswith("SELECT 1")] != [], calls
    assert all("tests/web/test_no_database_on_the_event_loop.py:" in c
               and "query_on_the_loop" in c for c in calls), calls
    database_calls_on_the_web_loop.clear()  # seen, as it should be


@pytest.mark.both_databases
def test_the_worker_s_webhook_check_keeps_its_queries_off_the_loop(stack: Stack) -> None:
    """operations/webhook_health.py runs on the worker's loop, beside the jobs of its other
    slots: its reads and writes go to a thread too. A deleted webhook makes it take every
    path: the installations read, the token, the new webhook stored, the outcome recorded."""
    from harness.event_loop_guard import recording_loop_calls

    from whatsapp_helpdesk.bootstrap import Services
    from whatsapp_helpdesk.credentials import aircall_access_token
    from whatsapp_helpdesk.operations import webhook_health

    async def delete_our_webhook(services: Services) -> None:
        token = aircall_access_token(services, stack.installation_id)
        [ours] = [w["webhook_id"] for w in stack.aircall.get("/_sandbox/webhooks").json()[
            "webhooks"] if not w["retired"] and w["url"].startswith(stack.settings.public_url)]
        await services.aircall(token).delete_webhook(str(ours))

    stack.run(delete_our_webhook)
    with recording_loop_calls(served_only=False) as calls:
        checked = stack.run(webhook_health.check_aircall_webhooks)
    assert checked == {stack.installation_id: webhook_health.RECREATED}
    assert calls == [], "\n".join(calls)

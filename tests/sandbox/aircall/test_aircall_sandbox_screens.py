"""The server-rendered screens: home and the customer's phone."""

from __future__ import annotations

import re

from aircall_sandbox_harness import CUSTOMER, Receiver, Sandbox, wait_for

CHAT = {"phone": CUSTOMER, "number_id": "1001"}


def _messages(aircall: Sandbox) -> list[dict]:
    return list(aircall.http.get("/_sandbox/companies/1/messages").json()["messages"])


def test_home_lists_companies_numbers_and_links(aircall: Sandbox) -> None:
    page = aircall.http.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert "Demo Company" in html and "Other Company" in html
    assert "+33 1 76 36 06 95" in html
    assert 'href="/phone"' in html
    assert "PENDING" in html  # 1005's WhatsApp status is visible


def test_phone_screen_offers_whatsapp_numbers_only(aircall: Sandbox) -> None:
    html = aircall.http.get("/phone").text
    options = re.findall(r'<option value="(\d+)"', html)
    assert options == ["1001", "1003", "1005", "2001"]
    assert '<label for="phone">' in html and '<label for="number_id">' in html
    assert "No chat open" in html


def test_sending_from_the_phone_creates_an_inbound_message(aircall: Sandbox) -> None:
    response = aircall.http.post("/phone/send", data={**CHAT, "text": "Hello from the phone"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/phone?phone=%2B33612345678&number_id=1001")
    (message,) = _messages(aircall)
    assert message["direction"] == "inbound"
    assert message["body"] == "Hello from the phone"
    page = aircall.http.get("/phone", params=CHAT).text
    assert "Hello from the phone" in page
    assert "WhatsApp window open" in page


def test_media_placeholder_from_the_phone(aircall: Sandbox) -> None:
    aircall.http.post("/phone/send", data={**CHAT, "text": "", "kind": "document"})
    (message,) = _messages(aircall)
    assert message["type"] == "document"
    assert "[document · document.pdf]" in aircall.http.get("/phone/thread", params=CHAT).text


def test_errors_come_back_as_a_notice(aircall: Sandbox) -> None:
    response = aircall.http.post(
        "/phone/send", data={"phone": CUSTOMER, "number_id": "1005", "text": "hi"}
    )
    assert response.status_code == 303
    page = aircall.http.get(response.headers["location"]).text
    assert 'role="status"' in page and "Not sent" in page


def test_replies_show_ticks_and_can_be_read(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": "We will call you",
    })
    wait_for(lambda: ", delivered" in aircall.http.get("/phone/thread", params=CHAT).text)
    response = aircall.http.post("/phone/read", data=CHAT)
    assert response.status_code == 303
    thread = aircall.http.get("/phone/thread", params=CHAT).text
    assert 'class="tick read"' in thread and ", read" in thread


def test_call_buttons(aircall: Sandbox) -> None:
    for outcome in ("missed", "voicemail"):
        response = aircall.http.post("/phone/call", data={**CHAT, "outcome": outcome})
        assert response.status_code == 303
    assert "Voicemail+left" in response.headers["location"]


def test_sending_or_calling_wants_both_numbers_picked(aircall: Sandbox) -> None:
    for path in ("/phone/send", "/phone/call"):
        response = aircall.http.post(path, data={"number_id": "1001", "text": "hi"})
        assert response.status_code == 303
        assert "Pick+a+customer+number+and+a+business+number+first." in (
            response.headers["location"])
    assert _messages(aircall) == []


def test_clock_jump_also_notifies_other_clocks(aircall: Sandbox, receiver: Receiver) -> None:
    other = f"{receiver.url}/clock"
    page = aircall.http.get("/phone", params={**CHAT, "also_notify": other}).text
    assert f'name="also_notify" value="{other}"' in page
    response = aircall.http.post(
        "/phone/clock", data={**CHAT, "advance_seconds": "90000", "also_notify": other}
    )
    assert response.status_code == 303
    assert aircall.http.get("/_sandbox/clock").json()["offset_seconds"] == 90000
    assert receiver.bodies() == [{"clock": {"advance_seconds": 90000}}]
    assert "also_notify=" in response.headers["location"]
    notice = aircall.http.get(response.headers["location"]).text
    assert "moved too" in notice


def test_clock_jump_reports_an_unreachable_clock(aircall: Sandbox) -> None:
    response = aircall.http.post("/phone/clock", data={
        **CHAT, "advance_seconds": "3600", "also_notify": "http://127.0.0.1:9/clock",
    })
    page = aircall.http.get(response.headers["location"]).text
    assert "failed" in page


def test_window_closes_on_screen_after_25_hours(aircall: Sandbox) -> None:
    aircall.customer_says()
    aircall.http.post("/phone/clock", data={**CHAT, "advance_seconds": str(25 * 3600)})
    assert "window closed" in aircall.http.get("/phone/thread", params=CHAT).text


def test_clock_jump_moves_the_followers_it_was_started_with(receiver: Receiver) -> None:
    """`serve` starts the sandbox with HubSpot's and the service's clocks as followers: the
    phone's jump moves them even when its URL names none, and a reset keeps them."""
    import asyncio

    import httpx

    from whatsapp_helpdesk.sandbox.aircall import create_app

    app = create_app(public_base_url="http://aircall.test",
                     clock_followers=[f"{receiver.url}/clock"])

    async def jump() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aircall.test") as air:
            await air.post("/_sandbox/reset")
            page = (await air.get("/phone", params=CHAT)).text
            assert f"{receiver.url}/clock" in page  # "Also moves: …"
            moved = await air.post("/phone/clock", data={**CHAT, "advance_seconds": "3600"})
            notice = (await air.get(moved.headers["location"])).text
            await app.state.sandbox.aclose()
            return notice

    assert "moved too" in asyncio.run(jump())
    assert receiver.bodies() == [{"clock": {"advance_seconds": 3600}}]

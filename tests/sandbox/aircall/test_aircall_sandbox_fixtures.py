"""Webhook fixtures in tests/fixtures/aircall/ are real sandbox deliveries, kept in step.

Each fixture is captured from a delivery the sandbox made to a real receiver; this test
re-captures them and checks every stored fixture still has exactly the same shape (keys and
value types, recursively). Regenerate after a deliberate change with
`REGENERATE_AIRCALL_FIXTURES=1 pytest tests/sandbox/aircall/test_aircall_sandbox_fixtures.py`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aircall_sandbox_harness import CUSTOMER, Receiver, Sandbox, subscribe, wait_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "aircall"
FIXTURE_BASE_URL = "http://aircall-sandbox.test"
FIXTURE_TOKEN = "45f1c0ffee0ddba11a57"


def _scrub(value: Any, base_url: str, token: str) -> Any:
    """Stable, readable fixtures: fixed host and webhook token."""
    text = json.dumps(value).replace(base_url, FIXTURE_BASE_URL).replace(token, FIXTURE_TOKEN)
    return json.loads(text)


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def _reply(aircall: Sandbox, text: str = "Thanks, we are looking into it.") -> dict[str, Any]:
    return dict(aircall.basic.post("/v1/messages/send/whatsapp/native", json={
        "lineId": 1001, "externalNumber": CUSTOMER, "text": text,
    }).json())


def _call(aircall: Sandbox, outcome: str) -> None:
    aircall.http.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": 1001, "outcome": outcome,
    })


def _first(receiver: Receiver, event: str, predicate: Callable[[dict], bool]) -> dict:
    return dict(wait_for(lambda: [b for b in receiver.bodies(event) if predicate(b["data"])])[0])


def capture(aircall: Sandbox, receiver: Receiver) -> dict[str, dict[str, Any]]:
    """Drive the sandbox through each situation and keep one delivery of each."""
    captured: dict[str, dict[str, Any]] = {}
    token = subscribe(aircall.basic, receiver)["token"]
    with aircall.bearer(aircall.oauth_token()) as client:
        oauth_token = subscribe(client, receiver, ["integration.deleted"])["token"]

    text = aircall.customer_says("Bonjour, ma commande n'est pas arrivée.")
    captured["message_received__whatsapp_text"] = _first(
        receiver, "message.received", lambda d: d["id"] == text["id"])
    for kind in ("image", "location"):
        media = aircall.customer_says("Voici la photo" if kind == "image" else "", type=kind)
        captured[f"message_received__whatsapp_{kind}"] = _first(
            receiver, "message.received", lambda d, i=media["id"]: d["id"] == i)
    sms = aircall.customer_says("Et par SMS ?", channel="sms")
    captured["message_received__sms"] = _first(
        receiver, "message.received", lambda d: d["id"] == sms["id"])

    sent = _reply(aircall)
    captured["message_sent__whatsapp_echo"] = _first(
        receiver, "message.sent", lambda d: d["id"] == sent["id"])
    for status in ("sent", "delivered"):
        captured[f"message_status_updated__{status}"] = _first(
            receiver, "message.status_updated",
            lambda d, s=status: d["id"] == sent["id"] and d["status"] == s)
    aircall.http.post(f"/_sandbox/customer/messages/{sent['id']}/read")
    captured["message_status_updated__read"] = _first(
        receiver, "message.status_updated",
        lambda d: d["id"] == sent["id"] and d["status"] == "read")

    _call(aircall, "missed")
    captured["call_created__inbound"] = _first(receiver, "call.created", lambda d: True)
    captured["call_ended__missed"] = _first(
        receiver, "call.ended", lambda d: d["voicemail"] is None)
    _call(aircall, "voicemail")
    captured["call_voicemail_left__basic"] = _first(receiver, "call.voicemail_left", lambda d: True)
    captured["call_ended__voicemail"] = _first(
        receiver, "call.ended", lambda d: d["voicemail"] is not None)

    for event in ("number.closed", "number.opened"):
        aircall.http.post("/_sandbox/numbers/1001/events", json={"event": event})
        captured[f"{event.replace('.', '_')}__basic"] = _first(receiver, event, lambda d: True)

    aircall.configure(timestamp_format="iso")
    iso = aircall.customer_says("Message with ISO timestamps")
    captured["message_received__iso_timestamps"] = _first(
        receiver, "message.received", lambda d: d["id"] == iso["id"])

    aircall.http.post("/_sandbox/companies/1/uninstall")
    captured["integration_deleted__basic"] = _first(
        receiver, "integration.deleted", lambda d: True)

    return {
        name: _scrub(_scrub(body, aircall.url, token), aircall.url, oauth_token)
        for name, body in captured.items()
    }


def test_fixtures_match_what_the_sandbox_delivers(aircall: Sandbox, receiver: Receiver) -> None:
    captured = capture(aircall, receiver)
    if os.environ.get("REGENERATE_AIRCALL_FIXTURES") == "1":
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for name, body in captured.items():
            (FIXTURES / f"{name}.json").write_text(
                json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    for name, body in captured.items():
        path = FIXTURES / f"{name}.json"
        assert path.exists(), f"missing fixture {path.name}"
        stored = json.loads(path.read_text(encoding="utf-8"))
        assert shape(stored) == shape(body), path.name
        assert stored["event"] == body["event"]


def test_fixture_names_follow_event_double_underscore_variant() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert names, "no Aircall fixtures"
    for name in names:
        assert re.fullmatch(r"[a-z_]+__[a-z0-9_]+", name), name
        stored = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
        assert stored["event"].replace(".", "_") == name.split("__")[0]
        assert stored["token"] == FIXTURE_TOKEN

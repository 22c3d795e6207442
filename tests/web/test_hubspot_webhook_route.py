"""POST /webhooks/hubspot through the web app: signature v3, storage, dedup, every event
fixture of tests/fixtures/hubspot with its exact outcome (R4, R6, R21, R27, R42, R43)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Installation,
    Message,
    Number,
    OutboxEntry,
    Ticket,
    WebhookEvent,
)
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.settings import SANDBOX_HUBSPOT_CLIENT_SECRET, Settings
from whatsapp_helpdesk.web.app import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot"
# Behind a proxy under a path prefix: HubSpot calls this URL, the app sees "/webhooks/…".
PUBLIC_URL = "https://helpdesk.example.com/bridge"
SIGNED_URL = f"{PUBLIC_URL}/webhooks/hubspot"
NOW = datetime(2026, 11, 24, 18, 23, tzinfo=UTC)


class AsgiClient:
    """Requests straight into the ASGI app, over httpx's ASGI transport (Starlette's
    TestClient warns on import, and warnings are errors here)."""

    def __init__(self, app: FastAPI):
        self.app = app

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.post(path, **kwargs)

        return asyncio.run(send())


@dataclass
class Bridge:
    services: Services
    client: AsgiClient
    clock: ManualClock

    def post(self, body: bytes | dict[str, Any] | list[Any], *, url: str = SIGNED_URL,
             path: str = "/webhooks/hubspot", stamp_ms: int | None = None,
             secret: str = SANDBOX_HUBSPOT_CLIENT_SECRET) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        return self.client.post(path, content=raw, headers=signed_headers(raw, url, stamp, secret))

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def count(self, model: type) -> int:
        with self.services.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def account(self) -> ChannelAccount:
        with self.services.sessions() as session:
            return session.scalars(select(ChannelAccount)).one()


def signed_headers(raw: bytes, url: str, stamp_ms: int,
                   secret: str = SANDBOX_HUBSPOT_CLIENT_SECRET) -> dict[str, str]:
    """What HubSpot sends (reference §5), computed here independently of the bridge."""
    stamp = str(stamp_ms)
    signature = base64.b64encode(hmac.new(
        secret.encode(), b"POST" + url.encode() + raw + stamp.encode(), hashlib.sha256
    ).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp,
            "Content-Type": "application/json"}


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


@pytest.fixture
def bridge(database_url: str) -> Iterator[Bridge]:
    app_settings = Settings(database_url=database_url, public_url=PUBLIC_URL,
                            _env_file=None)  # type: ignore[call-arg]
    clock = ManualClock(NOW)
    services = build_services(app_settings, clock=clock)
    upgrade(services.engine)
    _seed(services)
    try:
        yield Bridge(services, AsgiClient(create_app(services)), clock)
    finally:
        services.engine.dispose()


def _seed(services: Services) -> None:
    """The fixtures' world: portal 4242, account 3307400001 on +33123456789, and the
    customer +33612345678 in ticket `conv-1`."""
    with services.sessions.begin() as session:
        installation = Installation(hubspot_portal_id="4242", aircall_company_id="1",
                                    hubspot_scopes="", created_at=NOW, updated_at=NOW)
        session.add(installation)
        session.flush()
        number = Number(installation_id=installation.id, aircall_number_id="1001",
                        e164="+33123456789")
        session.add(number)
        session.flush()
        session.add(ChannelAccount(
            installation_id=installation.id, number_id=number.id, hubspot_channel_id="2930001",
            hubspot_channel_account_id="3307400001", delivery_identifier="+33123456789",
            connected_at=NOW))
        conversation = Conversation(installation_id=installation.id, number_id=number.id,
                                    customer_e164="+33612345678", created_at=NOW)
        session.add(conversation)
        session.flush()
        session.add(Ticket(conversation_id=conversation.id, integration_thread_id="conv-1",
                           started_at=NOW))


# --- one test per fixture ----------------------------------------------------------------------


def test_R21_outgoing_text_is_stored_with_its_send_job(bridge: Bridge) -> None:
    answer = bridge.post(fixture("outgoing_channel_message_created__text"))
    assert (answer.status_code, answer.json()) == (200, {"result": "stored"})
    with bridge.services.sessions() as session:
        reply = session.scalars(select(Message)).one()
        entry = session.scalars(select(OutboxEntry)).one()
        event = session.scalars(select(WebhookEvent)).one()
    assert (reply.direction, reply.status, reply.text) == (
        "outbound", "pending", "Sorry about that — checking now.")
    assert reply.hubspot_message_id == "347b0d3f9f3743b8ae551a1123345826"
    assert reply.sent_at == datetime(2026, 11, 24, 18, 22, 56, 505000, tzinfo=UTC)
    assert reply.sender_name == "Alex Agent" and reply.ticket_id is not None
    assert (entry.kind, entry.message_id) == ("send_reply", reply.id)
    assert (event.source, event.dedupe_key) == (
        "hubspot", "OUTGOING_CHANNEL_MESSAGE_CREATED:347b0d3f9f3743b8ae551a1123345826")


def test_R25_outgoing_with_attachment_is_stored_for_refusal(bridge: Bridge) -> None:
    answer = bridge.post(fixture("outgoing_channel_message_created__attachment"))
    assert answer.json() == {"result": "stored"}
    with bridge.services.sessions() as session:
        payload = json.loads(session.scalars(select(OutboxEntry.payload)).one())
    assert payload["attachment_count"] == 1


def test_R43_outgoing_on_unknown_channel_account_is_acknowledged_and_kept(bridge: Bridge) -> None:
    answer = bridge.post(fixture("outgoing_channel_message_created__delivery_identifier_threading"))
    assert answer.status_code == 200
    assert answer.json()["result"] == "unknown_channel_account"
    assert bridge.count(WebhookEvent) == 1 and bridge.count(Message) == 0
    # Nothing is sent, and HubSpot will show the agent why (R23).
    with bridge.services.sessions() as session:
        entry = session.scalars(select(OutboxEntry)).one()
    assert entry.kind == "report_status"
    assert json.loads(entry.payload)["status"] == "FAILED"


@pytest.mark.both_databases
def test_R4_channel_account_created_records_hubspot_id_once(bridge: Bridge) -> None:
    with bridge.services.sessions.begin() as session:
        session.scalars(select(ChannelAccount)).one().hubspot_channel_account_id = None
    event = fixture("channel_account_created__staging_token")
    assert bridge.post(event).json() == {"result": "recorded"}
    account = bridge.account()
    assert (account.hubspot_channel_account_id, account.hubspot_inbox_id) == ("3307400001", "5001")
    assert bridge.post(event).json() == {"result": "duplicate"}
    assert bridge.post({**event, "eventId": "another"}).json() == {"result": "already_known"}


@pytest.mark.parametrize("name", ["channel_account_updated__deauthorized",
                                  "channel_account_updated__archived"])
def test_R6_channel_account_stopped_in_hubspot_is_disconnected(bridge: Bridge, name: str) -> None:
    answer = bridge.post(fixture(name))
    assert answer.json()["result"] == "disconnected"
    account = bridge.account()
    assert account.disconnected_at == NOW and account.authorized is False


def test_R6_channel_account_update_that_keeps_it_live_changes_nothing(bridge: Bridge) -> None:
    event = fixture("channel_account_updated__deauthorized")
    event["channelAccount"] = {**event["channelAccount"], "authorized": True, "active": True}
    assert bridge.post(event).json() == {"result": "no_change"}
    assert bridge.account().disconnected_at is None


# --- R27: the same event twice -----------------------------------------------------------------


@pytest.mark.both_databases
def test_R27_same_reply_twice_is_kept_once(bridge: Bridge) -> None:
    event = fixture("outgoing_channel_message_created__text")
    assert bridge.post(event).json() == {"result": "stored"}
    # A retry may come in a fresh envelope: the message id is what identifies the reply.
    again = bridge.post({**event, "eventId": "retry-envelope"})
    assert (again.status_code, again.json()) == (200, {"result": "duplicate"})
    assert bridge.count(Message) == 1 and bridge.count(OutboxEntry) == 1


@pytest.mark.both_databases
def test_issue11_R27_an_event_kept_for_another_portal_does_not_hide_this_one(
    bridge: Bridge,
) -> None:
    """Dedupe is per installation (or portal): an event id already kept for one portal is
    no duplicate of the same id arriving for another's channel account."""
    event = fixture("channel_account_updated__deauthorized")
    elsewhere = {**event, "portalId": "9999", "channelAccountId": "elsewhere",
                 "channelAccount": {**event["channelAccount"], "id": "elsewhere"}}
    assert bridge.post(elsewhere).json()["result"] == "unknown_portal"

    assert bridge.post(event).json()["result"] == "disconnected"
    assert bridge.account().disconnected_at == NOW


# --- R42: the signature -------------------------------------------------------------------------


def test_R42_signature_is_checked_against_public_url_not_host(bridge: Bridge) -> None:
    event = fixture("outgoing_channel_message_created__text")
    as_seen_by_the_app = "http://testserver/webhooks/hubspot"
    assert bridge.post(event, url=as_seen_by_the_app).status_code == 401
    assert bridge.count(WebhookEvent) == 0
    assert bridge.post(event).status_code == 200


def test_R42_query_string_is_signed(bridge: Bridge) -> None:
    event = fixture("channel_account_updated__deauthorized")
    path = "/webhooks/hubspot?source=hubspot%2Fcustom"
    assert bridge.post(event, path=path).status_code == 401  # signed without the query
    # HubSpot decodes %2F before signing (reference §5 step 3).
    answer = bridge.post(event, path=path, url=f"{SIGNED_URL}?source=hubspot/custom")
    assert answer.status_code == 200


@pytest.mark.parametrize("age", [timedelta(minutes=5, seconds=1), timedelta(hours=3),
                                 -timedelta(minutes=6)])
def test_R42_stale_or_future_timestamp_is_401(bridge: Bridge, age: timedelta) -> None:
    stamp = bridge.now_ms() - int(age.total_seconds() * 1000)
    answer = bridge.post(fixture("outgoing_channel_message_created__text"), stamp_ms=stamp)
    assert answer.status_code == 401
    assert bridge.count(WebhookEvent) == 0 and bridge.count(Message) == 0


def test_R42_timestamp_within_five_minutes_is_accepted(bridge: Bridge) -> None:
    stamp = bridge.now_ms() - 4 * 60 * 1000
    assert bridge.post(fixture("channel_account_updated__archived"),
                       stamp_ms=stamp).status_code == 200


def test_R42_wrong_secret_tampered_body_or_missing_headers_is_401(bridge: Bridge) -> None:
    event = fixture("outgoing_channel_message_created__text")
    assert bridge.post(event, secret="sandbox-hubspot-client-secreT").status_code == 401
    assert bridge.client.post("/webhooks/hubspot", json=event).status_code == 401
    signed = json.dumps(event).encode()
    tampered = signed.replace(b"checking now", b"pay me now!!")
    headers = signed_headers(signed, SIGNED_URL, bridge.now_ms())
    assert bridge.client.post("/webhooks/hubspot", content=tampered,
                              headers=headers).status_code == 401
    assert bridge.count(WebhookEvent) == 0 and bridge.count(Message) == 0


# --- R43: bad input -------------------------------------------------------------------------------


def test_R43_unknown_event_type_is_acknowledged_and_recorded(bridge: Bridge) -> None:
    answer = bridge.post({"type": "CHANNEL_ACCOUNT_PURGED", "portalId": "4242",
                          "eventId": "e-1", "channelAccountId": "3307400001"})
    assert (answer.status_code, answer.json()) == (200, {"result": "unsupported"})
    with bridge.services.sessions() as session:
        event = session.scalars(select(WebhookEvent)).one()
    assert (event.event_type, event.outcome) == ("CHANNEL_ACCOUNT_PURGED", "unsupported")


def test_R43_malformed_bodies_get_400(bridge: Bridge) -> None:
    assert bridge.post(b"{not json").status_code == 400
    assert bridge.post(b'"a string"').status_code == 400
    missing_message = {"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "portalId": "4242"}
    answer = bridge.post(missing_message)
    assert answer.status_code == 400 and "message" in answer.json()["detail"]
    with bridge.services.sessions() as session:
        # Signed JSON that is not an event is kept for the record; non-JSON is not.
        assert session.scalars(select(WebhookEvent.outcome)).all() == ["invalid", "invalid"]


def test_R43_oversized_body_is_413(bridge: Bridge) -> None:
    assert bridge.post(b"x" * (1024 * 1024 + 1)).status_code == 413


def test_R43_array_body_keeps_each_event(bridge: Bridge) -> None:
    answer = bridge.post([fixture("outgoing_channel_message_created__text"),
                          fixture("channel_account_updated__archived")])
    assert answer.status_code == 200
    assert answer.json() == {"result": "batch", "detail": "stored, disconnected"}
    assert bridge.count(WebhookEvent) == 2


def test_R43_signed_random_json_never_500(bridge: Bridge) -> None:
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=12,
    )
    types = st.sampled_from(["OUTGOING_CHANNEL_MESSAGE_CREATED", "CHANNEL_ACCOUNT_CREATED",
                             "CHANNEL_ACCOUNT_UPDATED", "SOMETHING_ELSE"])

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event_type=types, message=values, extra=values)
    def check(event_type: str, message: object, extra: object) -> None:
        body = {"type": event_type, "portalId": "4242", "message": message,
                "channelAccountId": extra}
        assert bridge.post(body).status_code in (200, 400)

    check()

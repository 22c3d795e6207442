"""The reply flow on a real database, with HubSpot and Aircall replaced by an in-memory
transport (httpx.MockTransport) and time by a manual clock (R15, R20, R21, R23–R25, R27).

Each test drives the real intake (`handle_hubspot_delivery`, `handle_aircall_delivery`) and
the real worker; only the network answers are scripted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from whatsapp_helpdesk.aircall import token_digest
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
from whatsapp_helpdesk.domain.reply_checks import (
    CHANNEL_DISCONNECTED_MESSAGE,
    CHANNEL_NOT_AUTHORISED_MESSAGE,
    SCOPES_MISSING_MESSAGE,
)
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE
from whatsapp_helpdesk.inbound.hubspot_delivery import handle_hubspot_delivery
from whatsapp_helpdesk.inbound.ingest import AircallHandlers, handle_aircall_delivery
from whatsapp_helpdesk.inbound.publish import assign_ticket
from whatsapp_helpdesk.replies.reply import (
    DELIVERY_UNCERTAIN_MESSAGE,
    NO_CONVERSATION_MESSAGE,
    RECONCILE_WINDOW,
)
from whatsapp_helpdesk.replies.statuses import PROVIDER_FAILED_MESSAGE
from whatsapp_helpdesk.settings import SANDBOX_HUBSPOT_CLIENT_SECRET, Settings
from whatsapp_helpdesk.web.webhook_spool import AIRCALL_HANDLERS, HUBSPOT_HANDLERS
from whatsapp_helpdesk.worker.runner import Worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot"
# The ids of the fixtures' world (tests/fixtures/hubspot/*.json).
CHANNEL, ACCOUNT, THREAD_ID, HUBSPOT_THREAD = "2930001", "3307400001", "conv-1", "8765432001"
BUSINESS, CUSTOMER, LINE = "+33123456789", "+33612345678", 1001
WEBHOOK_TOKEN = "aircall-webhook-token"
SEND_PATH = "/v1/messages/send/whatsapp/native"
CUSTOMER_WROTE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ALL_SCOPES = ("conversations.custom_channels.read conversations.custom_channels.write "
              "conversations.read conversations.write tickets")

Answer = httpx.Response | Exception


@dataclass
class FakeProviders:
    """Aircall's send and HubSpot's status PATCH; anything else is a test bug (404)."""

    aircall_answers: list[Answer] = field(default_factory=list)
    hubspot_answers: list[Answer] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == SEND_PATH:
            script, default = self.aircall_answers, httpx.Response(
                200, json={"id": f"AC{len(self.sends)}", "status": "pending",
                           "direction": "outbound"})
        elif request.method == "PATCH" and "/messages/" in request.url.path:
            script, default = self.hubspot_answers, httpx.Response(200, json={})
        else:
            return httpx.Response(404, json={"message": f"unexpected {request.url.path}"})
        answer = script.pop(0) if script else default
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def sends(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == SEND_PATH]

    @property
    def patches(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "PATCH"]


@dataclass
class World:
    services: Services
    clock: ManualClock
    fake: FakeProviders
    installation_id: int = 0

    def work(self) -> None:
        """Run every outbox entry that is due now (one worker, one slot)."""

        async def main() -> None:
            worker = Worker(self.services, concurrency=1)
            while await worker.work_once():
                pass

        asyncio.run(main())

    def later(self, **delta: float) -> None:
        self.clock.advance(**delta)

    def reply(self, text: str = "Sorry about that — checking now.", *,
              message_id: str = "hs-1", envelope: dict[str, Any] | None = None,
              **message: Any) -> str:
        """The agent replies in HubSpot: a signed OUTGOING_CHANNEL_MESSAGE_CREATED."""
        event = json.loads((FIXTURES / "outgoing_channel_message_created__text.json").read_text())
        event.update(envelope or {})
        event["message"].update({"id": message_id, "text": text, "richText": None,
                                 "createdAt": self.clock.now().isoformat(), **message})
        body = json.dumps(event).encode()
        url = f"{self.services.settings.public_url}/webhooks/hubspot"
        stamp = str(int(self.clock.now().timestamp() * 1000))
        signature = base64.b64encode(hmac.new(
            SANDBOX_HUBSPOT_CLIENT_SECRET.encode(), b"POST" + url.encode() + body + stamp.encode(),
            hashlib.sha256).digest()).decode()
        outcome = handle_hubspot_delivery(
            self.services, HUBSPOT_HANDLERS, method="POST", url=url, raw_body=body,
            timestamp_header=stamp, signature_header=signature)
        assert outcome.status_code == 200, outcome
        return outcome.result

    def aircall_says(self, event: str, *, aircall_id: str, status: str,
                     body: str = "Sorry about that — checking now.",
                     handlers: AircallHandlers = AIRCALL_HANDLERS) -> str:
        """Aircall's webhook about an outbound WhatsApp message on our line."""
        data = {"id": aircall_id, "direction": "outbound", "channel": "whatsapp",
                "status": status, "body": body, "type": "text",
                "external_number": "+33 6 12 34 56 78",
                "created_at": int(self.clock.now().timestamp() * 1000),
                "number": {"id": LINE, "digits": "+33 1 23 45 67 89"}}
        raw = json.dumps({"resource": "message", "event": event, "token": WEBHOOK_TOKEN,
                          "timestamp": int(self.clock.now().timestamp()), "data": data})
        outcome = handle_aircall_delivery(self.services, handlers, raw.encode())
        assert outcome.status_code == 200, outcome
        return outcome.result

    def reply_row(self) -> Message:
        with self.services.sessions() as session:
            return session.scalars(select(Message).where(Message.direction == "outbound")).one()

    def change(self, model: type, **values: Any) -> None:
        """Set columns on every row of `model` (the seed has one of each, bar messages)."""
        with self.services.sessions.begin() as session:
            query = select(model)
            if model is Message:
                query = query.where(Message.direction == "outbound")
            for row in session.scalars(query):
                for key, value in values.items():
                    setattr(row, key, value)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    # Pacing books slots in wall-clock time while this world runs on a manual clock: a retry
    # could be deferred past what `world.later` moves (seen once in CI). Pacing has its own
    # tests (tests/worker/test_worker_pacing.py, tests/e2e/test_e2e_pacing.py).
    settings = Settings(database_url=database_url, hubspot_channel_id=CHANNEL,
                        client_pacing=False, _env_file=None)  # type: ignore[call-arg]
    clock = ManualClock(CUSTOMER_WROTE + timedelta(minutes=5))
    services = build_services(settings, clock=clock)
    upgrade(services.engine)
    fake = FakeProviders()
    services._http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    world = World(services, clock, fake)
    world.installation_id = _seed(services, clock.now())
    try:
        yield world
    finally:
        asyncio.run(services.aclose())
        services.engine.dispose()


def _seed(services: Services, now: datetime) -> int:
    """One installation, its WhatsApp line as a live channel account, and a customer who
    wrote at CUSTOMER_WROTE (ticket `conv-1`, already published)."""
    encrypt = services.cipher.encrypt
    with services.sessions.begin() as session:
        installation = Installation(
            hubspot_portal_id="4242", aircall_company_id="1",
            hubspot_access_token_enc=encrypt("hs-access"),
            hubspot_refresh_token_enc=encrypt("hs-refresh"),
            hubspot_token_expires_at=datetime(2100, 1, 1, tzinfo=UTC), hubspot_scopes=ALL_SCOPES,
            aircall_access_token_enc=encrypt("ac-access"), aircall_scopes="public_api",
            aircall_webhook_token_hash=token_digest(WEBHOOK_TOKEN), created_at=now,
            updated_at=now)
        session.add(installation)
        session.flush()
        number = Number(installation_id=installation.id, aircall_number_id=str(LINE),
                        name="Support", digits="+33 1 23 45 67 89", e164=BUSINESS,
                        whatsapp_enabled=True, connected_to_hubspot=True, helpdesk_enabled=True)
        session.add(number)
        session.flush()
        session.add(ChannelAccount(
            installation_id=installation.id, number_id=number.id, hubspot_channel_id=CHANNEL,
            hubspot_channel_account_id=ACCOUNT, delivery_identifier=BUSINESS, authorized=True,
            connected_at=now))
        conversation = Conversation(installation_id=installation.id, number_id=number.id,
                                    customer_e164=CUSTOMER, last_inbound_at=CUSTOMER_WROTE,
                                    created_at=now)
        session.add(conversation)
        session.flush()
        ticket = Ticket(conversation_id=conversation.id, integration_thread_id=THREAD_ID,
                        hubspot_thread_id=HUBSPOT_THREAD, started_at=CUSTOMER_WROTE)
        session.add(ticket)
        session.flush()
        session.add(Message(
            installation_id=installation.id, conversation_id=conversation.id,
            ticket_id=ticket.id, direction="inbound", provider_message_id="IN1",
            hubspot_message_id="hs-in-1", text="Where is my order?", sent_at=CUSTOMER_WROTE,
            stored_at=now, status="published"))
        return installation.id


def _sent(text: str = "Sorry about that — checking now.") -> dict[str, Any]:
    return {"lineId": LINE, "externalNumber": CUSTOMER, "text": text}


SENT = {"statusType": "SENT"}


# --- sending -----------------------------------------------------------------------------------


def test_R21_R23_reply_is_sent_once_and_reported_sent(world: World) -> None:
    assert world.reply() == "stored"
    world.work()
    assert world.fake.sends == [_sent()]
    assert world.fake.patches == [SENT]
    assert world.fake.requests[-1].url.path == (
        f"/conversations/custom-channels/2026-03/{CHANNEL}/messages/hs-1")
    reply = world.reply_row()
    assert (reply.status, reply.provider_message_id) == ("sent", "AC1")


@pytest.mark.both_databases
def test_R27_same_reply_delivered_twice_is_stored_and_sent_once(world: World) -> None:
    assert world.reply() == "stored"
    assert world.reply() == "duplicate"
    world.work()
    assert world.fake.sends == [_sent()]


def _ticket_of_the_customers_next_message(world: World, *, hours_after_first: float) -> tuple[
        int, int]:
    """(the first ticket, the ticket the rule picks for the customer's next message)."""
    reply = world.reply_row()
    with world.services.sessions.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert reply.ticket_id == ticket.id
        later = Message(installation_id=reply.installation_id,
                        conversation_id=reply.conversation_id, direction="inbound",
                        provider_message_id="IN2", text="hello again",
                        sent_at=CUSTOMER_WROTE + timedelta(hours=hours_after_first),
                        stored_at=world.clock.now(), status="pending")
        session.add(later)
        session.flush()
        return ticket.id, assign_ticket(session, later, inactivity=timedelta(hours=24)).id


def test_R20_R22_reply_joins_its_ticket_and_counts_as_activity(world: World) -> None:
    world.later(hours=20)
    world.reply()
    assert world.reply_row().sent_at == world.clock.now()
    # 30 h after the customer's first message but 10 h after the reply: same ticket.
    first, next_one = _ticket_of_the_customers_next_message(world, hours_after_first=30)
    assert next_one == first


def test_R20_R24_refused_reply_is_not_activity_so_the_customer_next_writes_a_new_ticket(
    world: World,
) -> None:
    """A reply refused because the window closed never reached the customer: it must not
    keep the old ticket alive and swallow the customer's next message into it."""
    world.clock.set(CUSTOMER_WROTE + timedelta(hours=24, seconds=1))
    world.reply()
    world.work()
    assert world.reply_row().status == "failed"
    first, next_one = _ticket_of_the_customers_next_message(world, hours_after_first=25)
    assert next_one != first


def test_R20_a_reply_outside_the_window_is_not_activity_even_before_it_is_refused(
    world: World,
) -> None:
    """Same ticket decision whether the customer's next message is placed before or after
    the worker refuses the reply: it is read from the timestamps, not from the status."""
    world.clock.set(CUSTOMER_WROTE + timedelta(hours=24, seconds=1))
    world.reply()  # stored, not worked yet: still pending
    assert world.reply_row().status == "pending"
    first, next_one = _ticket_of_the_customers_next_message(world, hours_after_first=25)
    assert next_one != first


def test_R20_the_activity_facts_of_every_neighbour_are_read_in_one_query(
    world: World,
) -> None:
    """Replies outside the window are not activity, so the rule looks past them to the
    customer's message; their facts, both sides', come in one query, not one per reply
    (nor one per side: issue 17 item 3)."""
    world.clock.set(CUSTOMER_WROTE + timedelta(hours=24, seconds=1))
    for n in range(1, 6):
        world.reply(message_id=f"hs-{n}")
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    with world.services.sessions.begin() as session:
        later = Message(installation_id=world.installation_id,
                        conversation_id=session.scalars(select(Message.conversation_id)).first(),
                        direction="inbound", provider_message_id="IN2", text="hello again",
                        sent_at=CUSTOMER_WROTE + timedelta(hours=25),
                        stored_at=world.clock.now(), status="pending")
        session.add(later)
        session.flush()
        event.listen(world.services.engine, "before_cursor_execute", count)
        try:
            ticket = assign_ticket(session, later, inactivity=timedelta(hours=24))
        finally:
            event.remove(world.services.engine, "before_cursor_execute", count)
        assert ticket.integration_thread_id != THREAD_ID  # 25 h after the last activity
    # The neighbours before and after in one read (the ticket chosen is then loaded once).
    neighbour_reads = [s for s in selects if "FROM messages" in s]
    assert len(neighbour_reads) == 1, selects
    assert len(selects) <= 2, selects


def test_R25_rich_text_is_sent_as_whatsapp_markup(world: World) -> None:
    world.reply("Done", richText="<div><b>Done</b>, see <a href='https://x.io/t'>ticket</a></div>")
    world.work()
    assert world.fake.sends == [_sent("*Done*, see ticket (https://x.io/t)")]


# --- refusals: never reach Aircall ------------------------------------------------------------


def test_R24_reply_24h_and_1s_after_customer_is_failed_never_sent(world: World) -> None:
    world.clock.set(CUSTOMER_WROTE + timedelta(hours=24, seconds=1))
    world.reply()
    world.work()
    assert world.fake.sends == []
    assert world.fake.patches == [{"statusType": "FAILED", "errorMessage": WINDOW_CLOSED_MESSAGE}]
    assert world.reply_row().status == "failed"


def test_R24_window_counts_from_provider_timestamp_not_storage(world: World) -> None:
    # The customer's message was stored hours late (Aircall retries); the window still
    # closed 24 h after the customer sent it.
    world.change(Message, stored_at=CUSTOMER_WROTE + timedelta(hours=5))
    world.clock.set(CUSTOMER_WROTE + timedelta(hours=24, minutes=1))
    world.reply()
    world.work()
    assert world.fake.sends == []


def test_R25_reply_with_attachment_is_failed_never_sent(world: World) -> None:
    world.reply("Here is the invoice.", attachments=[
        {"type": "FILE", "fileId": "1", "name": "invoice.pdf", "url": "https://f.io/i.pdf"}])
    world.work()
    assert world.fake.sends == []
    [patch] = world.fake.patches
    assert patch["statusType"] == "FAILED" and "Attachments" in patch["errorMessage"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"authorized": False}, CHANNEL_NOT_AUTHORISED_MESSAGE),
    ({"disconnected_at": CUSTOMER_WROTE}, CHANNEL_DISCONNECTED_MESSAGE),
])
def test_R6_stopped_channel_account_refuses_replies(world: World, change: dict[str, Any],
                                                    reason: str) -> None:
    world.reply()
    world.change(ChannelAccount, **change)
    world.work()
    assert world.fake.sends == []
    assert world.fake.patches == [{"statusType": "FAILED", "errorMessage": reason}]


def test_R8_installation_without_custom_channel_scopes_refuses(world: World) -> None:
    world.change(Installation, hubspot_scopes="conversations.read tickets")
    world.reply()
    world.work()
    assert world.fake.sends == []
    assert world.fake.patches == [{"statusType": "FAILED", "errorMessage": SCOPES_MISSING_MESSAGE}]


def test_R23_reply_to_unknown_recipient_is_failed_in_hubspot(world: World) -> None:
    stranger = [{"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+4915112345678"}}]
    result = world.reply(envelope={"channelIntegrationThreadIds": []},
                         conversationsThreadId="999", recipients=stranger)
    assert result == "unknown_conversation"
    world.work()
    assert world.fake.sends == []
    assert world.fake.patches == [{"statusType": "FAILED", "errorMessage": NO_CONVERSATION_MESSAGE}]


def test_R21_reply_is_matched_by_recipient_when_thread_ids_are_missing(world: World) -> None:
    assert world.reply(envelope={"channelIntegrationThreadIds": []},
                       conversationsThreadId="999") == "stored"
    world.work()
    assert world.fake.sends == [_sent()]


# --- provider failures ---------------------------------------------------------------------------


def test_R44_aircall_503_is_retried_and_sent_once(world: World) -> None:
    world.fake.aircall_answers = [httpx.Response(503, json={"message": "Service Unavailable"})]
    world.reply()
    world.work()
    assert world.reply_row().status == "pending"  # Aircall said it did nothing
    world.later(minutes=5)
    world.work()
    assert world.fake.sends == [_sent(), _sent()]  # one refused, one accepted
    assert world.fake.patches == [SENT]


def test_R23_aircall_window_refusal_is_failed_with_window_message(world: World) -> None:
    world.fake.aircall_answers = [httpx.Response(422, json={
        "error": "Re-engagement message", "troubleshoot": "(#131047) more than 24 hours",
        "code": 131047, "success": False})]
    world.reply()
    world.work()
    assert world.fake.patches == [{"statusType": "FAILED", "errorMessage": WINDOW_CLOSED_MESSAGE}]
    reply = world.reply_row()
    assert (reply.status, reply.failure_reason) == ("failed", WINDOW_CLOSED_MESSAGE)


def test_R23_aircall_permanent_refusal_reason_reaches_hubspot(world: World) -> None:
    world.fake.aircall_answers = [httpx.Response(422, json={
        "error": "WhatsApp line unavailable", "troubleshoot": "status is PENDING"})]
    world.reply()
    world.work()
    [patch] = world.fake.patches
    assert patch["statusType"] == "FAILED"
    assert "WhatsApp line unavailable" in patch["errorMessage"]


def test_R23_hubspot_failing_after_a_good_send_retries_the_report_never_the_send(
    world: World,
) -> None:
    world.fake.hubspot_answers = [httpx.Response(503, json={"message": "down"})]
    world.reply()
    world.work()
    world.later(minutes=5)
    world.work()
    assert world.fake.sends == [_sent()]
    assert world.fake.patches == [SENT, SENT]


# --- decision 0002: an interrupted send is never sent again -------------------------------------


@pytest.mark.both_databases
def test_R27_timeout_leaves_reply_sending_and_never_resends(world: World) -> None:
    world.fake.aircall_answers = [httpx.ReadTimeout("no answer")]
    world.reply()
    world.work()
    assert world.reply_row().status == "sending"
    world.later(seconds=30)
    world.work()
    assert len(world.fake.sends) == 1 and world.fake.patches == []
    world.later(seconds=RECONCILE_WINDOW.total_seconds())
    world.work()
    assert len(world.fake.sends) == 1
    assert world.fake.patches == [
        {"statusType": "FAILED", "errorMessage": DELIVERY_UNCERTAIN_MESSAGE}]
    assert world.reply_row().status == "failed"


@pytest.mark.both_databases
def test_R27_interrupted_send_is_confirmed_by_aircall_echo(world: World) -> None:
    world.fake.aircall_answers = [httpx.ReadTimeout("no answer")]
    world.reply()
    world.work()
    assert world.aircall_says("message.sent", aircall_id="AC-real", status="pending") == (
        "echo_of_our_reply")
    reply = world.reply_row()
    assert (reply.status, reply.provider_message_id) == ("sent", "AC-real")
    world.later(seconds=30)
    world.work()
    assert len(world.fake.sends) == 1
    assert world.fake.patches == [SENT]


@pytest.mark.both_databases
def test_R27_echo_stored_before_it_could_be_matched_is_adopted_later(world: World) -> None:
    world.reply()
    # The echo arrives while the reply is not yet marked `sending` (it raced the mark):
    # kept as "sent outside the help desk"...
    assert world.aircall_says("message.sent", aircall_id="AC-early", status="pending") == (
        "sent_outside_helpdesk")
    # ...then a worker marked it and died before Aircall's answer came back.
    world.change(Message, status="sending")
    world.later(seconds=5)
    world.work()
    assert world.fake.sends == []
    assert world.reply_row().provider_message_id == "AC-early"
    assert world.fake.patches == [SENT]
    with world.services.sessions() as session:
        outcome = session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.event_type == "message.sent")).one()
    assert outcome == "echo_of_our_reply"


# --- Aircall's echoes and statuses (R15, R23) ---------------------------------------------------


def test_R15_echo_of_our_send_is_recognised_never_published(world: World) -> None:
    world.reply()
    world.work()
    assert world.aircall_says("message.sent", aircall_id="AC1", status="pending") == (
        "echo_of_our_reply")
    with world.services.sessions() as session:
        publishes = session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.kind == "publish_inbound"))
    assert publishes == 0


def test_R23_read_is_reported_and_late_statuses_never_go_back(world: World) -> None:
    world.reply()
    world.work()
    assert world.aircall_says("message.status_updated", aircall_id="AC1",
                              status="delivered") == "status_applied"
    assert world.aircall_says("message.status_updated", aircall_id="AC1",
                              status="read") == "status_applied"
    assert world.aircall_says("message.status_updated", aircall_id="AC1",
                              status="sent") == "status_not_newer"
    world.work()
    assert world.fake.patches == [SENT, {"statusType": "READ"}]
    assert world.reply_row().status == "read"


def test_R23_aircall_failure_after_sent_is_reported_failed(world: World) -> None:
    world.reply()
    world.work()
    world.aircall_says("message.status_updated", aircall_id="AC1", status="failed")
    world.work()
    assert world.fake.patches == [
        SENT, {"statusType": "FAILED", "errorMessage": PROVIDER_FAILED_MESSAGE}]


def test_R23_report_fails_for_good_without_touching_the_sent_reply(world: World) -> None:
    world.fake.hubspot_answers = [httpx.Response(404, json={"message": "no such message"})]
    world.reply()
    world.work()
    assert world.reply_row().status == "sent"
    with world.services.sessions() as session:
        states = dict(session.execute(select(OutboxEntry.kind, OutboxEntry.state)).all())
    assert states == {"send_reply": "done", "report_status": "failed"}


def test_R8_missing_aircall_grant_fails_the_reply_and_flags_reauthentication(
    world: World,
) -> None:
    world.change(Installation, aircall_access_token_enc=None)
    world.reply()
    world.work()
    assert world.fake.sends == []
    [patch] = world.fake.patches
    assert patch["statusType"] == "FAILED" and "Aircall" in patch["errorMessage"]
    with world.services.sessions() as session:
        assert session.scalars(select(Installation.reauth_required)).one()


def test_aircall_events_reach_the_handlers_the_caller_wires_and_an_unwired_one_is_visible(
    world: World,
) -> None:
    """Ingest dispatches through the handlers it is given (issue 13 item 1), and an event no
    handler was wired for is recorded "unsupported", never quietly "stored"."""
    seen: list[tuple[int, str]] = []

    def on_status(session: Any, installation_id: int, event: Any, now: datetime
                  ) -> tuple[str, str | None]:
        seen.append((installation_id, event.event))
        return ("status_seen", None)

    handlers = replace(AIRCALL_HANDLERS, events={"message.status_updated": on_status})
    assert world.aircall_says("message.status_updated", aircall_id="AC9", status="delivered",
                              handlers=handlers) == "status_seen"
    assert seen == [(world.installation_id, "message.status_updated")]

    raw = json.dumps({"resource": "number", "event": "number.opened", "token": WEBHOOK_TOKEN,
                      "timestamp": int(world.clock.now().timestamp()),
                      "data": {"id": LINE, "digits": "+33 1 23 45 67 89"}})
    outcome = handle_aircall_delivery(world.services, handlers, raw.encode())
    assert (outcome.status_code, outcome.result) == (200, "unsupported")
    with world.services.sessions() as session:
        assert session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.event_type == "number.opened")).one() == "unsupported"

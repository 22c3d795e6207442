"""Native ticketing (R35) and its suppression on help-desk channels (R36), end to end:
sandbox customer phone (calls, voicemails, SMS) → Aircall webhooks over HTTP → our web app
→ outbox → worker → HubSpot CRM tickets API of the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from harness.stack import CUSTOMER, Stack
from sqlalchemy import select, update

from whatsapp_helpdesk.dashboard.reads import DashboardView, dashboard_view
from whatsapp_helpdesk.db.models import DeliveryAttempt, Number, WebhookEvent
from whatsapp_helpdesk.web.dashboard_routes import DASHBOARD_READS

SUPPORT_FR, SALES_UK, BERLIN, MADRID = 1001, 1002, 1003, 1004


def _settings(stack: Stack, aircall_number_id: int, **values: bool) -> None:
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).where(
            Number.installation_id == stack.installation_id,
            Number.aircall_number_id == str(aircall_number_id)).values(**values))


def _call(stack: Stack, number_id: int, outcome: str) -> None:
    response = stack.aircall.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": number_id, "outcome": outcome})
    assert response.status_code == 201, response.text


def _sms(stack: Stack, number_id: int, text: str) -> None:
    stack.customer_says(text, number_id=number_id, channel="sms")


def _crm_tickets(stack: Stack) -> list[dict[str, Any]]:
    """The portal's tickets that are not help-desk conversations: the native ones."""
    return [t for t in stack.tickets() if not t.get("threadId")]


def _outcomes(stack: Stack, *event_types: str) -> list[str]:
    with stack.services.sessions() as session:
        return list(session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.event_type.in_(event_types)).order_by(WebhookEvent.id)))


def test_R35_missed_call_voicemail_and_sms_create_crm_tickets(stack: Stack) -> None:
    _settings(stack, SALES_UK, connected_to_hubspot=True, native_ticketing=True)
    _call(stack, SALES_UK, "missed")
    _call(stack, SALES_UK, "voicemail")
    _call(stack, SALES_UK, "answered")  # an answered call is not a ticket
    _sms(stack, SALES_UK, "Can you call me back?")
    stack.wait_deliveries()
    stack.drain()
    tickets = _crm_tickets(stack)
    assert sorted(t["subject"] for t in tickets) == [
        "Missed call from Jane Doe on Sales UK",
        "SMS from Jane Doe on Sales UK",
        "Voicemail from Jane Doe on Sales UK",  # one ticket for the call, not two
    ]
    assert all(t["contactId"] == "501" for t in tickets)  # associated with the caller
    assert {t["pipeline"] for t in tickets} == {"0"}
    with stack.services.sessions() as session:
        details = session.scalars(select(DeliveryAttempt.detail)).all()
    assert sum(1 for d in details if d and d.startswith("ticket ")) == 3
    [sales] = [n for n in _view(stack).numbers if n.name == "Sales UK"]
    assert sales.health.native_tickets == 3 and not sales.helpdesk_rules_apply


def test_R36_a_help_desk_channel_never_gets_a_native_ticket(stack: Stack) -> None:
    stack.connect(SUPPORT_FR)
    # Its own setting says "on": the help desk's rules still win (R36).
    _settings(stack, SUPPORT_FR, native_ticketing=True)
    _call(stack, SUPPORT_FR, "missed")
    _call(stack, SUPPORT_FR, "voicemail")
    _sms(stack, SUPPORT_FR, "SMS to the WhatsApp number")
    stack.wait_deliveries()
    stack.drain()
    assert _crm_tickets(stack) == []
    assert set(_outcomes(stack, "call.ended", "call.voicemail_left")) <= {
        "helpdesk_rules_apply", "ignored"}
    assert "helpdesk_rules_apply" in _outcomes(stack, "call.voicemail_left")
    assert _outcomes(stack, "message.received") == ["helpdesk_rules_apply"]
    [support] = [n for n in _view(stack).numbers if n.name == "Support France"]
    assert support.helpdesk_rules_apply


def test_R35_no_native_ticket_when_switched_off_or_not_connected_to_hubspot(
    stack: Stack,
) -> None:
    _settings(stack, SALES_UK, connected_to_hubspot=True, native_ticketing=False)
    _settings(stack, MADRID, connected_to_hubspot=False, native_ticketing=True)
    _call(stack, SALES_UK, "missed")
    _call(stack, MADRID, "missed")
    stack.wait_deliveries()
    stack.drain()
    assert _crm_tickets(stack) == []
    assert sorted(_outcomes(stack, "call.ended")) == ["native_ticketing_off",
                                                       "not_connected_to_hubspot"]


def test_R36_a_number_that_became_a_channel_before_the_worker_ran_gets_no_ticket(
    stack: Stack,
) -> None:
    _settings(stack, BERLIN, native_ticketing=True)  # connected to HubSpot by the demo setup
    _call(stack, BERLIN, "missed")
    stack.wait_deliveries()
    assert _outcomes(stack, "call.ended") == ["native_ticket_queued"]
    stack.connect(BERLIN)
    stack.drain()
    assert _crm_tickets(stack) == []
    with stack.services.sessions() as session:
        assert session.scalars(select(DeliveryAttempt.detail)).all() == [
            "skipped: helpdesk_rules_apply"]


def test_R35_help_desk_whatsapp_and_native_sms_side_by_side(stack: Stack) -> None:
    """One portal, two numbers: WhatsApp on the channel makes a help-desk ticket, an SMS on
    a native-ticketing number makes a CRM ticket; neither leaks into the other."""
    stack.connect(SUPPORT_FR)
    _settings(stack, SALES_UK, connected_to_hubspot=True, native_ticketing=True)
    stack.customer_says("WhatsApp hello")
    _sms(stack, SALES_UK, "SMS hello")
    stack.wait_deliveries()
    stack.drain()
    tickets = stack.tickets()
    help_desk = [t for t in tickets if t.get("threadId")]
    assert [[m["text"] for m in t["messages"]] for t in help_desk] == [["WhatsApp hello"]]
    assert [t["subject"] for t in _crm_tickets(stack)] == ["SMS from Jane Doe on Sales UK"]


@pytest.mark.both_databases
def test_R35_worker_dying_after_hubspot_made_the_ticket_makes_no_second_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HubSpot's tickets API has no idempotency key: the retry finds the ticket by the
    reference word its content carries."""
    from whatsapp_helpdesk.hubspot import HubSpotPortalClient

    class WorkerDied(BaseException):
        """Not an Exception: nothing in the worker catches it, as with a SIGKILL."""

    made = HubSpotPortalClient.create_ticket

    async def made_then_died(self: Any, *args: Any, **kwargs: Any) -> Any:
        await made(self, *args, **kwargs)
        raise WorkerDied

    _settings(stack, SALES_UK, connected_to_hubspot=True, native_ticketing=True)
    _call(stack, SALES_UK, "missed")
    stack.wait_deliveries()
    monkeypatch.setattr(HubSpotPortalClient, "create_ticket", made_then_died)
    with pytest.raises(WorkerDied):
        stack.drain()
    monkeypatch.undo()
    assert len(_crm_tickets(stack)) == 1
    # The dead worker's lease runs out; the next worker takes the job again.
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": 61})
    stack.drain()
    [ticket] = _crm_tickets(stack)
    with stack.services.sessions() as session:
        details = session.scalars(select(DeliveryAttempt.detail)).all()
    assert f"ticket {ticket['id']} (made by an earlier attempt)" in details


def _view(stack: Stack) -> DashboardView:
    return dashboard_view(stack.services, DASHBOARD_READS, stack.installation_id)

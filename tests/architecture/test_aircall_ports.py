"""Aircall's events reach other slices only through the handlers wired at the edge (issue 13
item 1): every event that parses to something ingest does not handle itself has a handler,
so none of them falls through to "no handler wired"."""

from __future__ import annotations

from whatsapp_helpdesk.aircall.payloads import CALL_EVENTS, MESSAGE_EVENTS, NUMBER_EVENTS
from whatsapp_helpdesk.web.webhook_spool import AIRCALL_HANDLERS


def test_every_event_another_slice_handles_is_wired() -> None:
    # message.received stays in the inbound slice (WhatsApp) or goes to sms_received.
    handed_over = {*MESSAGE_EVENTS, *CALL_EVENTS, *NUMBER_EVENTS} - {"message.received"}
    assert set(AIRCALL_HANDLERS.events) == handed_over


def test_the_handlers_belong_to_the_slices_that_own_the_events() -> None:
    owners = {name: handler.__module__ for name, handler in AIRCALL_HANDLERS.events.items()}
    assert owners["message.sent"] == "whatsapp_helpdesk.replies.statuses"
    assert owners["message.status_updated"] == "whatsapp_helpdesk.replies.statuses"
    assert {owners[name] for name in CALL_EVENTS} == {"whatsapp_helpdesk.native_tickets.tickets"}
    assert {owners[name] for name in NUMBER_EVENTS} == {
        "whatsapp_helpdesk.connect.numbers_refresh"}
    assert AIRCALL_HANDLERS.sms_received.__module__ == "whatsapp_helpdesk.native_tickets.tickets"
    assert AIRCALL_HANDLERS.company_seen.__module__ == (
        "whatsapp_helpdesk.native_tickets.contact_company")

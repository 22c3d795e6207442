"""Inbound: a customer's WhatsApp message becomes a help-desk ticket (R11–R16, R20)."""

from __future__ import annotations

from conftest import CUSTOMER, Stack


def test_R11_R12_customer_message_creates_ticket_with_message(stack: Stack) -> None:
    stack.connect()
    stack.customer_says("Hello, my order has not arrived")
    stack.wait_deliveries()
    stack.drain()
    tickets = stack.tickets()
    assert len(tickets) == 1
    [message] = tickets[0]["messages"]
    assert message["text"] == "Hello, my order has not arrived"
    assert message["direction"] == "INCOMING"
    assert message["senders"][0]["deliveryIdentifier"]["value"] == CUSTOMER

"""The database constraints that make "exactly once" hold under concurrent deliveries
(R14, R15, R27) and "one number, one live channel account" (R4, R5, R6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Message,
    Number,
    WebhookEvent,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _add_number(sessions: sessionmaker[Session], installation_id: int) -> int:
    with sessions.begin() as session:
        number = Number(installation_id=installation_id, aircall_number_id="1001",
                        e164="+33176360695")
        session.add(number)
        session.flush()
        return number.id


def _add_conversation(sessions: sessionmaker[Session], installation_id: int) -> int:
    number_id = _add_number(sessions, installation_id)
    with sessions.begin() as session:
        conversation = Conversation(installation_id=installation_id, number_id=number_id,
                                    customer_e164="+33612345678", created_at=T0)
        session.add(conversation)
        session.flush()
        return conversation.id


def _message(installation_id: int, conversation_id: int, **fields: object) -> Message:
    defaults: dict[str, object] = {"direction": "inbound", "text": "Bonjour", "sent_at": T0,
                                   "stored_at": T0}
    return Message(installation_id=installation_id, conversation_id=conversation_id,
                   **(defaults | fields))


def _insert(sessions: sessionmaker[Session], *rows: object) -> None:
    with sessions.begin() as session:
        session.add_all(rows)


def test_R14_same_provider_message_twice_is_refused(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    conversation_id = _add_conversation(sessions, installation_id)
    _insert(sessions, _message(installation_id, conversation_id, provider_message_id="wamid.1"))

    with pytest.raises(IntegrityError):
        _insert(sessions, _message(installation_id, conversation_id,
                                   provider_message_id="wamid.1"))


def test_R10_same_provider_message_id_in_two_installations_is_allowed(
    sessions: sessionmaker[Session], installation_id: int, new_installation: Callable[[str], int]
) -> None:
    other_installation = new_installation("5151")
    ours = _add_conversation(sessions, installation_id)
    theirs = _add_conversation(sessions, other_installation)

    _insert(
        sessions,
        _message(installation_id, ours, provider_message_id="wamid.1"),
        _message(other_installation, theirs, provider_message_id="wamid.1"),
    )


def test_R14_messages_without_provider_id_yet_do_not_collide(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    # An agent's replies are stored before Aircall has given them an id.
    conversation_id = _add_conversation(sessions, installation_id)

    _insert(
        sessions,
        _message(installation_id, conversation_id, direction="outbound"),
        _message(installation_id, conversation_id, direction="outbound"),
    )


def test_R27_same_hubspot_message_twice_is_refused(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    conversation_id = _add_conversation(sessions, installation_id)
    _insert(sessions, _message(installation_id, conversation_id, hubspot_message_id="hs-9"))

    with pytest.raises(IntegrityError):
        _insert(sessions, _message(installation_id, conversation_id, hubspot_message_id="hs-9"))


def test_R15_same_webhook_delivery_twice_is_refused(sessions: sessionmaker[Session]) -> None:
    def delivery() -> WebhookEvent:
        return WebhookEvent(source="aircall", event_type="message.received",
                            scope="webhook:abc", dedupe_key="wamid.1", outcome="stored",
                            payload="{}", received_at=T0)

    _insert(sessions, delivery())

    with pytest.raises(IntegrityError):
        _insert(sessions, delivery())


def _channel_account(installation_id: int, number_id: int, account: str) -> ChannelAccount:
    return ChannelAccount(installation_id=installation_id, number_id=number_id,
                          hubspot_channel_id="1000", hubspot_channel_account_id=account,
                          delivery_identifier="+33176360695", connected_at=T0)


def test_R5_second_live_channel_account_for_a_number_is_refused(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    number_id = _add_number(sessions, installation_id)
    _insert(sessions, _channel_account(installation_id, number_id, "ca-1"))

    with pytest.raises(IntegrityError):
        _insert(sessions, _channel_account(installation_id, number_id, "ca-2"))


def test_R6_disconnected_number_can_be_connected_again(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    number_id = _add_number(sessions, installation_id)
    _insert(sessions, _channel_account(installation_id, number_id, "ca-1"))
    with sessions.begin() as session:
        session.execute(
            update(ChannelAccount)
            .where(ChannelAccount.hubspot_channel_account_id == "ca-1")
            .values(disconnected_at=T0 + timedelta(hours=1))
        )

    _insert(sessions, _channel_account(installation_id, number_id, "ca-2"))
    # History keeps any number of disconnected accounts, and still one live one only.
    with sessions.begin() as session:
        session.execute(
            update(ChannelAccount)
            .where(ChannelAccount.hubspot_channel_account_id == "ca-2")
            .values(disconnected_at=T0 + timedelta(hours=2))
        )
    _insert(sessions, _channel_account(installation_id, number_id, "ca-3"))
    with pytest.raises(IntegrityError):
        _insert(sessions, _channel_account(installation_id, number_id, "ca-4"))

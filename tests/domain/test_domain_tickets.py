"""The ticket rule (R12, R20, R15): the service cuts a conversation into tickets by
inactivity, placing messages by their provider timestamps.

Edges, with a 24 h inactivity setting: 23:59:59 of silence joins the ticket, 24:00:00 and
24:00:01 start a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.domain.tickets import Activity, JoinTicket, StartTicket, choose_ticket

DAY = timedelta(hours=24)
LAST_ACTIVITY_AT = datetime(2026, 1, 5, 17, 45, 12, tzinfo=UTC)
OPEN_TICKET = 41
LATER_TICKET = 42


def _after_silence(**delta: float) -> datetime:
    clock = ManualClock(LAST_ACTIVITY_AT)
    return clock.advance(**delta)


def _choose_after_last_activity(message_at: datetime) -> object:
    return choose_ticket(
        message_at,
        before=Activity(LAST_ACTIVITY_AT, OPEN_TICKET),
        after=None,
        inactivity=DAY,
    )


def test_R12_first_message_of_a_conversation_starts_a_ticket() -> None:
    assert choose_ticket(LAST_ACTIVITY_AT, before=None, after=None, inactivity=DAY) == (
        StartTicket()
    )


def test_R20_message_soon_after_last_activity_joins_its_ticket() -> None:
    message_at = _after_silence(minutes=3)

    assert _choose_after_last_activity(message_at) == JoinTicket(OPEN_TICKET)


def test_R20_message_at_same_instant_as_last_activity_joins_its_ticket() -> None:
    assert _choose_after_last_activity(LAST_ACTIVITY_AT) == JoinTicket(OPEN_TICKET)


def test_R20_message_at_23h59m59s_joins_the_ticket() -> None:
    message_at = _after_silence(hours=23, minutes=59, seconds=59)

    assert _choose_after_last_activity(message_at) == JoinTicket(OPEN_TICKET)


def test_R20_message_at_24h_exactly_starts_new_ticket() -> None:
    message_at = _after_silence(hours=24)

    assert _choose_after_last_activity(message_at) == StartTicket()


def test_R20_message_at_24h_and_1s_starts_new_ticket() -> None:
    message_at = _after_silence(hours=24, seconds=1)

    assert _choose_after_last_activity(message_at) == StartTicket()


def test_R20_inactivity_period_is_a_setting() -> None:
    one_hour = timedelta(hours=1)
    before = Activity(LAST_ACTIVITY_AT, OPEN_TICKET)

    joins = choose_ticket(
        _after_silence(minutes=59, seconds=59), before=before, after=None, inactivity=one_hour
    )
    starts = choose_ticket(_after_silence(hours=1), before=before, after=None, inactivity=one_hour)

    assert joins == JoinTicket(OPEN_TICKET)
    assert starts == StartTicket()


def test_R15_late_delivered_first_message_of_a_burst_joins_the_ticket_its_successor_opened() -> (
    None
):
    # The customer sent A then B a minute apart; Aircall delivered B first, which opened
    # a ticket. A arrives now: nothing before it, B just after it. One burst, one ticket.
    sent_a = LAST_ACTIVITY_AT
    sent_b = _after_silence(minutes=1)

    decision = choose_ticket(
        sent_a, before=None, after=Activity(sent_b, LATER_TICKET), inactivity=DAY
    )

    assert decision == JoinTicket(LATER_TICKET)


def test_R15_late_message_23h59m59s_before_its_successor_joins_the_successors_ticket() -> None:
    successor_at = _after_silence(hours=23, minutes=59, seconds=59)

    decision = choose_ticket(
        LAST_ACTIVITY_AT,
        before=None,
        after=Activity(successor_at, LATER_TICKET),
        inactivity=DAY,
    )

    assert decision == JoinTicket(LATER_TICKET)


def test_R15_late_message_24h_before_its_successor_starts_its_own_ticket() -> None:
    successor_at = _after_silence(hours=24)

    decision = choose_ticket(
        LAST_ACTIVITY_AT,
        before=None,
        after=Activity(successor_at, LATER_TICKET),
        inactivity=DAY,
    )

    assert decision == StartTicket()


def test_R20_late_message_prefers_the_ticket_of_the_activity_before_it() -> None:
    # Placed between two activities that are both close: time flows forward, so the
    # message continues what came before it.
    message_at = _after_silence(hours=2)

    decision = choose_ticket(
        message_at,
        before=Activity(LAST_ACTIVITY_AT, OPEN_TICKET),
        after=Activity(_after_silence(hours=3), LATER_TICKET),
        inactivity=DAY,
    )

    assert decision == JoinTicket(OPEN_TICKET)


def test_R20_late_message_after_a_long_silence_joins_the_ticket_after_it() -> None:
    # Old ticket 2 days ago; a later message already opened a new ticket; this one, sent a
    # minute before that later message, belongs with it.
    message_at = _after_silence(days=2)

    decision = choose_ticket(
        message_at,
        before=Activity(LAST_ACTIVITY_AT, OPEN_TICKET),
        after=Activity(message_at + timedelta(minutes=1), LATER_TICKET),
        inactivity=DAY,
    )

    assert decision == JoinTicket(LATER_TICKET)


def test_R20_late_message_far_from_both_neighbours_starts_a_new_ticket() -> None:
    message_at = _after_silence(days=2)

    decision = choose_ticket(
        message_at,
        before=Activity(LAST_ACTIVITY_AT, OPEN_TICKET),
        after=Activity(message_at + DAY, LATER_TICKET),
        inactivity=DAY,
    )

    assert decision == StartTicket()

"""The ticket rule (R12, R20, R15): the service cuts a conversation into tickets by
inactivity, placing messages by their provider timestamps.

Edges, with a 24 h inactivity setting: 23:59:59 of silence joins the ticket, 24:00:00 and
24:00:01 start a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.domain.tickets import (
    Activity,
    JoinTicket,
    PlacedMessage,
    StartTicket,
    choose_ticket,
    counts_as_activity,
    nearest_activity,
)

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


# --- What counts as activity (R20, R24): a message exchanged --------------------------------

CUSTOMER_AT = LAST_ACTIVITY_AT
H = timedelta(hours=1)
S = timedelta(seconds=1)


def _placed(
    *, inbound: bool = False, failed: bool = False, after_customer: timedelta | None = H,
    ticket_id: int = OPEN_TICKET,
) -> PlacedMessage:
    """A message placed `after_customer` after the customer's last message (None: the
    customer had not written yet)."""
    sent_at = CUSTOMER_AT + (after_customer if after_customer is not None else H)
    return PlacedMessage(
        ticket_id=ticket_id, inbound=inbound, failed=failed, sent_at=sent_at,
        last_customer_message_at=CUSTOMER_AT if after_customer is not None else None,
    )


@pytest.mark.parametrize(("message", "is_activity"), [
    pytest.param(_placed(inbound=True), True, id="customer-message"),
    pytest.param(_placed(inbound=True, failed=True), True,
                 id="customer-message-even-if-its-publish-failed"),
    pytest.param(_placed(inbound=True, after_customer=None), True,
                 id="customer-first-message-has-no-earlier-one"),
    pytest.param(_placed(after_customer=H), True, id="reply-1h-after-customer"),
    pytest.param(_placed(after_customer=timedelta(0)), True,
                 id="reply-at-the-customers-instant"),
    pytest.param(_placed(after_customer=24 * H - S), True, id="reply-at-23h59m59s"),
    pytest.param(_placed(after_customer=24 * H), False, id="reply-at-24h-window-closed"),
    pytest.param(_placed(after_customer=24 * H + S), False, id="reply-at-24h-and-1s"),
    pytest.param(_placed(after_customer=None), False, id="reply-before-any-customer-message"),
    pytest.param(_placed(failed=True), False, id="failed-reply-inside-the-window"),
    pytest.param(_placed(failed=True, after_customer=48 * H), False,
                 id="failed-reply-outside-the-window"),
])
def test_R20_R24_what_counts_as_activity(message: PlacedMessage, is_activity: bool) -> None:
    assert counts_as_activity(message) is is_activity


@pytest.mark.parametrize(("candidates", "nearest"), [
    pytest.param([], None, id="no-neighbour"),
    pytest.param([_placed(inbound=True)], Activity(CUSTOMER_AT + H, OPEN_TICKET),
                 id="customer-message-is-the-neighbour"),
    pytest.param([_placed(after_customer=2 * H, ticket_id=LATER_TICKET),
                  _placed(inbound=True)],
                 Activity(CUSTOMER_AT + 2 * H, LATER_TICKET),
                 id="first-candidate-wins-when-it-counts"),
    pytest.param([_placed(failed=True, ticket_id=LATER_TICKET),
                  _placed(after_customer=30 * H, ticket_id=LATER_TICKET),
                  _placed(after_customer=2 * H)],
                 Activity(CUSTOMER_AT + 2 * H, OPEN_TICKET),
                 id="replies-that-are-not-activity-are-looked-past"),
    pytest.param([_placed(failed=True), _placed(after_customer=None)], None,
                 id="only-replies-that-are-not-activity"),
])
def test_R20_nearest_activity_is_the_first_candidate_that_counts(
    candidates: list[PlacedMessage], nearest: Activity | None,
) -> None:
    assert nearest_activity(candidates) == nearest

"""R52 (replacing R26 when configured): an agent's reply after WhatsApp's 24 h window goes
as the number's re-engagement template.

The real path, as in test_e2e_reply.py: sandbox help desk → signed webhook → our web app →
database → worker → sandbox Aircall (`templateParams`) → customer phone, and back.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness.pacing import fast_aircall_bucket
from harness.stack import CUSTOMER, SUPPORT_FR, Stack
from harness.work_until import past_the_longest_wait, work_until
from sqlalchemy import select
from test_e2e_reply import (
    _agent_replies,
    _conversation_started,
    _hubspot_message,
    _move_all_clocks,
    _phone,
    _settle,
)

from whatsapp_helpdesk.db.models import Conversation
from whatsapp_helpdesk.domain import reengagement
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE
from whatsapp_helpdesk.replies import reengagement as flow

# Their Aircall sends waited ~14 s for the install's Aircall calls to be paced out
# (tests/harness/pacing.py): these tests are about templates and replies, not the pacing.
pytestmark = fast_aircall_bucket

TEMPLATE_1_VAR = "9101"  # reply_waiting: "Hello, we have answered your request: {{1}} …"
TEMPLATE_0_VAR = "9102"  # we_answered, no variable
DAY_AND_A_BIT = 24 * 3600 + 60
TEMPLATE_1_PREFIX = "Hello, we have answered your request: "


def _number(stack: Stack) -> int:
    return stack._number_row(SUPPORT_FR)


def _refresh(stack: Stack) -> int:
    return stack.run(lambda s: flow.refresh_templates(s, stack.installation_id, _number(stack)))


def _choose(stack: Stack, template_id: str | None, *, fills_text: bool) -> str:
    _refresh(stack)
    return flow.choose_template(stack.services, stack.installation_id, _number(stack),
                                template_id, fills_text)


def _choice(stack: Stack) -> flow.TemplateChoice:
    number_id = _number(stack)  # before: on SQLite a session inside a session waits forever
    with stack.services.sessions() as session:
        return flow.choices_by_number(session, [number_id])[number_id]


def _after_the_window(stack: Stack) -> str:
    thread_id = _conversation_started(stack)
    _move_all_clocks(stack, DAY_AND_A_BIT)
    return thread_id


def _ticket_texts(stack: Stack) -> list[tuple[str, str]]:
    [ticket] = stack.tickets()
    return [(m["direction"], m["text"]) for m in ticket["messages"]]


def _failure(stack: Stack, hubspot_id: str) -> Any:
    message = _hubspot_message(stack, hubspot_id)
    assert message["status"] == "FAILED", message
    return message["failureDetails"]["errorMessage"]


def test_R52_choosing_lists_only_approved_templates_and_refuses_others(stack: Stack) -> None:
    _conversation_started(stack)
    assert _refresh(stack) == 3
    choice = _choice(stack)
    assert [(o.name, o.language, o.category) for o in choice.options] == [
        ("reply_waiting", "en", "UTILITY"), ("we_answered", "fr", "UTILITY"),
        ("order_update", "en", "UTILITY")]
    assert choice.chosen_id is None  # the default: none, R24 stands
    for not_approved in ("9104", "9105", "424242"):  # pending, paused, unknown
        try:
            _choose(stack, not_approved, fills_text=True)
        except flow.ChoiceRefused:
            pass
        else:
            raise AssertionError(f"{not_approved} was accepted")
    assert _choice(stack).chosen_id is None
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    chosen = _choice(stack)
    assert (chosen.chosen_name, chosen.fills_text, chosen.usable) == ("reply_waiting", True, True)


def test_R52_chosen_template_that_leaves_approved_is_flagged_on_refresh(stack: Stack) -> None:
    _conversation_started(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    stack.aircall.post(f"/_sandbox/templates/{TEMPLATE_1_VAR}", json={"status": "PAUSED"})
    _refresh(stack)
    assert _choice(stack).problem == reengagement.left_approved_problem("PAUSED")
    assert not _choice(stack).usable
    stack.aircall.post(f"/_sandbox/templates/{TEMPLATE_1_VAR}", json={"status": "APPROVED"})
    _refresh(stack)
    assert _choice(stack).problem is None


def test_R26_R24_without_a_chosen_template_the_late_reply_fails_and_nothing_goes(
    stack: Stack,
) -> None:
    thread_id = _after_the_window(stack)
    _refresh(stack)  # templates listed, none chosen
    hubspot_id = _agent_replies(stack, thread_id, "Sorry for the delay")
    _settle(stack)
    assert _failure(stack, hubspot_id) == WINDOW_CLOSED_MESSAGE
    assert _phone(stack) == []


def test_R52_reply_on_monday_sends_the_template_with_the_agents_text(stack: Stack) -> None:
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    hubspot_id = _agent_replies(stack, thread_id, "Your parcel left on Monday.\nTrack it here.")
    _settle(stack)

    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    [on_phone] = _phone(stack)
    # Meta refuses line breaks in a parameter: the lines are joined.
    assert on_phone["body"] == (TEMPLATE_1_PREFIX + "Your parcel left on Monday. Track it "
                                "here. Reply to this message to continue the conversation.")
    note = reengagement.ticket_note("reply_waiting", cut=False, fills_text=True)
    assert _ticket_texts(stack)[-1] == ("OUTGOING", note)
    assert "window had closed" in note and "once the customer answers" in note


def test_R52_template_without_variable_leaves_the_text_out(stack: Stack) -> None:
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_0_VAR, fills_text=False)
    hubspot_id = _agent_replies(stack, thread_id, "Here is the answer")
    _settle(stack)
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    [on_phone] = _phone(stack)
    assert on_phone["body"].startswith("Bonjour, nous avons répondu")
    assert "Here is the answer" not in on_phone["body"]


def test_R52_long_reply_is_cut_to_the_parameter_limit_and_the_ticket_says_so(
    stack: Stack,
) -> None:
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    long_text = "word " * 400  # 2,000 characters
    hubspot_id = _agent_replies(stack, thread_id, long_text)
    _settle(stack)
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    [on_phone] = _phone(stack)
    value = on_phone["body"][len(TEMPLATE_1_PREFIX):].split(" Reply to this message")[0]
    assert len(value) == reengagement.TEMPLATE_PARAMETER_LIMIT
    assert value.endswith("…")
    assert _ticket_texts(stack)[-1] == (
        "OUTGOING", reengagement.ticket_note("reply_waiting", cut=True, fills_text=True))


@pytest.mark.both_databases
@pytest.mark.slow(seconds=7)
def test_R52_a_burst_of_replies_sends_one_template_until_the_customer_answers(
    stack: Stack,
) -> None:
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    first = _agent_replies(stack, thread_id, "First answer")
    second = _agent_replies(stack, thread_id, "Second answer")
    third = _agent_replies(stack, thread_id, "Third answer")
    _settle(stack)

    assert _hubspot_message(stack, first)["status"] == "SENT"
    for later in (second, third):
        assert _failure(stack, later) == reengagement.WAITING_FOR_ANSWER_MESSAGE
    assert [m["body"].startswith(TEMPLATE_1_PREFIX + "First answer") for m in _phone(stack)] \
        == [True]

    # The customer answers the template: the window is open again, free text goes.
    stack.customer_says("Thanks, what did you say?", phone=CUSTOMER)
    _settle(stack)
    again = _agent_replies(stack, thread_id, "We said your parcel left.")
    _settle(stack)
    assert _hubspot_message(stack, again)["status"] == "SENT"
    assert _phone(stack)[-1]["body"] == "We said your parcel left."


def test_R52_paused_template_fails_the_reply_with_the_reason_and_is_flagged(
    stack: Stack,
) -> None:
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    # Meta pauses it after the admin chose it, before any refresh: the send is refused.
    stack.aircall.post(f"/_sandbox/templates/{TEMPLATE_1_VAR}", json={"status": "PAUSED"})
    hubspot_id = _agent_replies(stack, thread_id, "Sorry for the delay")
    _settle(stack)
    problem = reengagement.refusal_problem(132015)
    assert _failure(stack, hubspot_id) == reengagement.refused_reply_message(problem)
    assert "paused" in problem
    assert _choice(stack).problem == problem
    assert _phone(stack) == []
    with stack.services.sessions() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.template_sent_at is None  # nothing is awaited: nothing went

    # The next late reply does not try again: the template is known unusable.
    later = _agent_replies(stack, thread_id, "Still there?")
    _settle(stack)
    assert _failure(stack, later) == reengagement.TEMPLATE_UNUSABLE_MESSAGE.format(
        problem=problem)


def test_R52_parameter_mismatch_and_deleted_template_are_failed_with_reasons(
    stack: Stack,
) -> None:
    thread_id = _after_the_window(stack)
    # The admin said the template takes the text; it takes none: WhatsApp's 132000.
    _choose(stack, TEMPLATE_0_VAR, fills_text=True)
    mismatch = _agent_replies(stack, thread_id, "Sorry for the delay")
    _settle(stack)
    assert _failure(stack, mismatch) == reengagement.refused_reply_message(
        reengagement.refusal_problem(132000))

    _choose(stack, TEMPLATE_1_VAR, fills_text=True)  # a fresh choice starts usable
    stack.aircall.post(f"/_sandbox/templates/{TEMPLATE_1_VAR}", json={"deleted": True})
    deleted = _agent_replies(stack, thread_id, "Sorry again")
    _settle(stack)
    assert _failure(stack, deleted) == reengagement.refused_reply_message(
        reengagement.refusal_problem(132001))
    assert _phone(stack) == []  # no free text, ever, outside the window


@pytest.mark.both_databases
def test_R52_R27_worker_dying_after_the_template_went_never_sends_it_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 0002 for a template: Aircall's echo carries the template's text, not the
    reply's, and must still be recognised as the reply's, so the reply ends SENT (with the
    ticket's note) instead of "delivery uncertain", and nothing goes twice."""
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    hubspot_id = _agent_replies(stack, thread_id, "Sent just before the crash")

    class WorkerDied(BaseException):
        """Not an Exception: nothing in the worker catches it, as with a SIGKILL."""

    def die(*_args: object, **_kwargs: object) -> None:
        raise WorkerDied

    monkeypatch.setattr(flow, "_record_template_sent", die)
    with pytest.raises(WorkerDied):
        stack.drain()
    monkeypatch.undo()
    stack.wait_deliveries()
    # Past the dead worker's lease and past the reconciliation window (decision 0002).
    _move_all_clocks(stack, 3 * 60)
    _settle(stack)

    [on_phone] = _phone(stack)
    assert on_phone["body"].startswith(TEMPLATE_1_PREFIX + "Sent just before the crash")
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    assert _ticket_texts(stack)[-1] == (
        "OUTGOING", reengagement.ticket_note("reply_waiting", cut=False, fills_text=True))


def test_R52_R44_a_template_send_refused_by_a_503_is_retried_not_failed_as_window_closed(
    stack: Stack,
) -> None:
    """The window is closed by definition when the template goes: Aircall being briefly
    down must be retried (R44), not end the reply with "window closed" (R24's words)."""
    thread_id = _after_the_window(stack)
    _choose(stack, TEMPLATE_1_VAR, fills_text=True)
    stack.aircall.post("/_sandbox/faults", json={
        "path_prefix": "/v1/messages/send/whatsapp/native", "method": "POST",
        "mode": "status", "status": 503, "times": 2})
    hubspot_id = _agent_replies(stack, thread_id, "Despite the outage")
    # Each refused send's back-off moved past on the bridge's clock, not waited out.
    work_until(stack, lambda: bool(_phone(stack)), what="the template on the phone",
               when_idle=past_the_longest_wait)
    _settle(stack)

    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    [on_phone] = _phone(stack)
    assert on_phone["body"].startswith(TEMPLATE_1_PREFIX + "Despite the outage")
    assert stack.aircall.get("/_sandbox/faults").json()["faults"] == []

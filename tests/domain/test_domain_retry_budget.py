"""Issue 11 item 5 (R44): the retry budget is time, rate-limit waits do not spend it, a
reply stops when the customer-service window would be closed, one clear final status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsapp_helpdesk.domain.retry_budget import (
    GiveUp,
    RetryIn,
    after_temporary_failure,
    gave_up_reason,
)
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BUDGET = timedelta(hours=24)
ERROR_503 = "HubSpot failed to publish a message (503); will retry."
ERROR_429 = "HubSpot rate limit reached while trying to publish a message; will retry."


def _decide(**kwargs) -> RetryIn | GiveUp:  # type: ignore[no-untyped-def]
    base = dict(error=ERROR_503, rate_limited=False, wait=timedelta(seconds=30), now=T0,
                retrying_since=None, budget=BUDGET)
    return after_temporary_failure(**{**base, **kwargs})


def test_R44_fifteen_429s_then_a_503_is_retried_not_failed() -> None:
    """The finding: 15 answers 429 then one 503 failed a message for good."""
    now = T0
    for _ in range(15):
        decision = _decide(error=ERROR_429, rate_limited=True, wait=timedelta(seconds=10),
                           now=now)
        assert decision == RetryIn(timedelta(seconds=10))
        now += timedelta(seconds=10)
    assert _decide(now=now, retrying_since=None) == RetryIn(timedelta(seconds=30))


def test_R44_temporary_errors_are_retried_for_the_budget_then_fail_with_one_reason() -> None:
    assert _decide(now=T0 + timedelta(hours=23), retrying_since=T0) == RetryIn(
        timedelta(seconds=30))
    decision = _decide(now=T0 + timedelta(hours=24), retrying_since=T0)
    assert decision == GiveUp(
        "HubSpot failed to publish a message (503). Gave up after retrying for 24 hours.")
    assert "will retry" not in decision.reason


def test_R44_rate_limit_waits_never_end_the_budget() -> None:
    assert _decide(error=ERROR_429, rate_limited=True, now=T0 + timedelta(hours=30),
                   retrying_since=T0) == RetryIn(timedelta(seconds=30))


def test_R24_R44_a_reply_whose_next_try_is_after_the_window_fails_with_that_reason() -> None:
    last_customer_message = T0 - timedelta(hours=23, minutes=59, seconds=45)
    assert _decide(last_customer_message_at=last_customer_message) == GiveUp(
        WINDOW_CLOSED_MESSAGE)
    assert _decide(error=ERROR_429, rate_limited=True,
                   last_customer_message_at=last_customer_message) == GiveUp(
        WINDOW_CLOSED_MESSAGE)
    assert _decide(last_customer_message_at=T0 - timedelta(hours=2)) == RetryIn(
        timedelta(seconds=30))


def test_R44_final_reason_wording() -> None:
    assert gave_up_reason("Aircall timed out; will retry.", timedelta(hours=1)) == (
        "Aircall timed out. Gave up after retrying for 1 hour.")
    assert gave_up_reason("internal error: boom", timedelta(minutes=90)) == (
        "internal error: boom. Gave up after retrying for 1.5 hours.")
    assert gave_up_reason("x.", timedelta(minutes=10)) == (
        "x. Gave up after retrying for 10 minutes.")


@pytest.mark.parametrize(("error", "budget", "reason"), [
    pytest.param("Boom!", timedelta(hours=2), "Boom! Gave up after retrying for 2 hours.",
                 id="exclamation-ends-the-sentence-two-hours"),
    pytest.param("Why?", timedelta(minutes=1), "Why? Gave up after retrying for 1 minute.",
                 id="question-mark-one-minute"),
    pytest.param("boom  ", timedelta(seconds=20), "boom. Gave up after retrying for 1 minute.",
                 id="trailing-spaces-under-a-minute-is-one-minute"),
    pytest.param("x; will retry.", timedelta(minutes=59, seconds=40),
                 "x. Gave up after retrying for 60 minutes.", id="just-under-an-hour"),
    pytest.param("will retry", timedelta(minutes=2), "will retry. Gave up after retrying for "
                 "2 minutes.", id="only-the-exact-suffix-is-dropped"),
])
def test_R44_final_reason_table(error: str, budget: timedelta, reason: str) -> None:
    assert gave_up_reason(error, budget) == reason


@pytest.mark.parametrize(("kwargs", "decision"), [
    pytest.param(dict(now=T0 + BUDGET - timedelta(seconds=30), retrying_since=T0),
                 RetryIn(timedelta(seconds=30)), id="next-try-exactly-at-the-budget-retries"),
    pytest.param(dict(now=T0 + BUDGET - timedelta(seconds=29), retrying_since=T0),
                 GiveUp("HubSpot failed to publish a message (503). Gave up after retrying "
                        "for 24 hours."), id="one-second-over-the-budget-gives-up"),
    pytest.param(dict(wait=BUDGET + timedelta(seconds=1)),
                 GiveUp("HubSpot failed to publish a message (503). Gave up after retrying "
                        "for 24 hours."), id="first-failure-with-a-wait-beyond-the-budget"),
    pytest.param(dict(last_customer_message_at=T0 - timedelta(hours=24, seconds=-30)),
                 GiveUp(WINDOW_CLOSED_MESSAGE), id="next-try-exactly-at-window-close"),
    pytest.param(dict(last_customer_message_at=T0 - timedelta(hours=24, seconds=-31)),
                 RetryIn(timedelta(seconds=30)), id="next-try-a-second-before-window-close"),
])
def test_R24_R44_retry_or_give_up_edges(kwargs: dict[str, object], decision: object) -> None:
    assert _decide(**kwargs) == decision

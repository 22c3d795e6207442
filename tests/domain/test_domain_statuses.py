"""A reply's status only moves forward, and HubSpot hears of it in its own words (R23).
Pure rules: no database, no network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whatsapp_helpdesk.domain import statuses

# --- R23: statuses never go backwards ----------------------------------------------------------


@pytest.mark.parametrize(("current", "new", "allowed"), [
    ("pending", "sending", True),
    ("sending", "sent", True),
    ("sent", "delivered", True),
    ("delivered", "read", True),
    ("sending", "read", True),  # a late "sent" was lost or comes later
    ("read", "delivered", False),
    ("read", "sent", False),
    ("delivered", "sent", False),
    ("sent", "sent", False),
    ("sent", "failed", True),  # Meta refused after Aircall accepted
    ("pending", "failed", True),
    ("delivered", "failed", False),  # the phone already has it
    ("read", "failed", False),
    ("failed", "sent", False),  # terminal
    ("failed", "read", False),
    ("sent", "whatever", False),
])
def test_R23_status_order(current: str, new: str, allowed: bool) -> None:
    assert statuses.may_advance(current, new) is allowed


@given(st.lists(st.sampled_from(["sending", "sent", "delivered", "read", "failed", "queued"])))
def test_R23_any_sequence_of_updates_only_moves_forward(updates: list[str]) -> None:
    order = ["pending", "sending", "sent", "delivered", "read"]
    status = "pending"
    for update in updates:
        if statuses.may_advance(status, update):
            assert status != "failed"
            if update != "failed":
                assert order.index(update) > order.index(status)
            status = update


@pytest.mark.parametrize(("old", "new", "told"), [
    ("sending", "sent", "SENT"),
    ("sent", "delivered", None),  # HubSpot has no DELIVERED
    ("delivered", "read", "READ"),
    ("sending", "read", "READ"),
    ("sent", "failed", "FAILED"),
    ("pending", "failed", "FAILED"),
    ("pending", "sending", None),
])
def test_R23_what_hubspot_is_told(old: str, new: str, told: str | None) -> None:
    assert statuses.news_for_hubspot(old, new) == told


def test_R23_aircall_status_words() -> None:
    assert [statuses.from_aircall(s) for s in ("sent", "Delivered", "read", "failed")] == [
        "sent", "delivered", "read", "failed"]
    # Unknown words are "nothing new", never a failure (reference aircall §E1).
    assert statuses.from_aircall("pending") is None
    assert statuses.from_aircall(None) is None


# Equivalent mutant (mutation testing, README): in `may_advance`, `>` mutated to `>=` cannot
# change an answer, since `current == new` has already returned False above it.


@pytest.mark.parametrize(("current", "new", "allowed"), [
    pytest.param("sending", "failed", True, id="refused-while-sending"),
    pytest.param("failed", "failed", False, id="failed-twice-is-no-news"),
    pytest.param("pending", "pending", False, id="same-status-is-no-news"),
    pytest.param("queued", "sent", False, id="unknown-current-status"),
    pytest.param("sent", "queued", False, id="unknown-new-status"),
    pytest.param("pending", "read", True, id="straight-to-read"),
])
def test_R23_status_order_edges(current: str, new: str, allowed: bool) -> None:
    assert statuses.may_advance(current, new) is allowed


@pytest.mark.parametrize(("status", "shown"), [
    ("pending", None), ("sending", None), ("sent", "SENT"), ("delivered", "SENT"),
    ("read", "READ"), ("failed", "FAILED"), ("queued", None),
])
def test_R23_what_hubspot_shows_for_each_status(status: str, shown: str | None) -> None:
    assert statuses.hubspot_status(status) == shown


@pytest.mark.parametrize(("old", "new", "told"), [
    pytest.param("read", "read", None, id="same-status-again"),
    pytest.param("delivered", "failed", "FAILED", id="failed-after-delivered-if-asked"),
    pytest.param("sent", "pending", None, id="nothing-to-show-yet"),
])
def test_R23_what_hubspot_is_told_edges(old: str, new: str, told: str | None) -> None:
    assert statuses.news_for_hubspot(old, new) == told


@pytest.mark.parametrize(("word", "status"), [
    pytest.param(" Sent\n", "sent", id="spaces-and-case"),
    pytest.param("DELIVERED", "delivered", id="upper-case"),
    pytest.param("undelivered", "failed", id="undelivered-is-failed"),
    pytest.param("Error", "failed", id="error-is-failed"),
    pytest.param("", None, id="empty"),
    pytest.param("queued", None, id="unknown-word-is-nothing-new"),
])
def test_R23_aircall_status_words_table(word: str, status: str | None) -> None:
    assert statuses.from_aircall(word) == status
# Equivalent mutant: in `from_aircall`, `(status or "")` mutated to `(status or "XXXX")` maps a
# missing status to "xxxx", which is no known word either: None both ways.

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

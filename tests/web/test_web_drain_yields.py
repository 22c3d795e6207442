"""Issue 17 item 2 (decision 0011, "Who gets the core"): the drain yields to acknowledgements.

While a fast-path acknowledgement is in flight the web process's drain stores nothing (it
shares the process's GIL, and usually its core, with the acknowledgements); it stores as
soon as they pause, and regardless once the oldest waiting delivery is DRAIN_MAX_LAG_SECONDS
old, or while the backlog is at half of SPOOL_BACKLOG_MAX_RECORDS or more. The tests stand
in for the ack path by holding its in-flight count (web/ingest_writer.py keeps it while a
request is spooled).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.aircall_webhooks import message_received as _body
from harness.pages import wait_for
from harness.stack import Stack, running_stack
from sqlalchemy import select

from whatsapp_helpdesk.db.models import Message
from whatsapp_helpdesk.web import webhook_spool as webhook_spool_module
from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

pytestmark = pytest.mark.both_databases


class _CountedStop(threading.Event):
    """The drain's stop event, counting the drain's waits on it: each is one round in which
    it let the acknowledgements have the process."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


def _drain_of(stack: Stack) -> tuple[WebhookSpool, _CountedStop]:
    spool: WebhookSpool = stack.web_app.state.webhook_spool
    stop = _CountedStop()
    spool._stop = stop
    return spool, stop


def _spool(stack: Stack, spool: WebhookSpool, *texts: str) -> None:
    """As the fast path does: spooled (fsync'ed) and answered, the drain woken."""
    token = str(stack.aircall.get("/_sandbox/webhooks").json()["webhooks"][0]["token"])
    records = [spool.fast_path_record(_body(token, text)) for text in texts]
    assert all(records)
    assert spool.append_fast([r for r in records if r]).status_code == 200


def _stored(stack: Stack) -> list[str]:
    with stack.services.sessions() as session:
        return sorted(session.scalars(select(Message.text)))


@pytest.fixture
def connected(stack: Stack) -> Iterator[tuple[Stack, WebhookSpool, _CountedStop]]:
    stack.connect()
    spool, stop = _drain_of(stack)
    spool.refresh_digests()
    yield stack, spool, stop
    spool.acks_in_flight = 0


def test_issue17_the_drain_stores_nothing_while_an_acknowledgement_is_in_flight(
        connected: tuple[Stack, WebhookSpool, _CountedStop]) -> None:
    stack, spool, stop = connected
    spool.acks_in_flight = 1
    _spool(stack, spool, "a", "b", "c")

    wait_for(lambda: stop.waits >= 5, what="the drain to yield a few rounds")
    assert _stored(stack) == []
    assert spool.spool.unreplayed() == 3

    spool.acks_in_flight = 0  # the acknowledgements pause: the drain takes its turn
    wait_for(lambda: spool.spool.unreplayed() == 0, what="the drain to store them")
    assert _stored(stack) == ["a", "b", "c"]


def test_issue17_the_drain_stores_once_the_oldest_waited_its_longest_even_under_acks(
        connected: tuple[Stack, WebhookSpool, _CountedStop],
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack, spool, stop = connected
    monkeypatch.setattr(webhook_spool_module, "DRAIN_MAX_LAG_SECONDS", 1.0)
    spool.acks_in_flight = 1  # and it stays so: a burst that never pauses
    _spool(stack, spool, "held back at most a second")

    wait_for(lambda: _stored(stack) == ["held back at most a second"], timeout=30,
             what="the drain to store past its longest lag")
    assert stop.waits >= 1  # it did yield first
    assert spool.acks_in_flight == 1


@pytest.fixture
def bounded(database_url: str, tmp_path: Path
            ) -> Iterator[tuple[Stack, WebhookSpool, _CountedStop]]:
    with running_stack(database_url, tmp_path, spool_backlog_max_records=4) as stack:
        stack.connect()
        spool, stop = _drain_of(stack)
        spool.refresh_digests()
        yield stack, spool, stop
        spool.acks_in_flight = 0


def test_issue17_the_drain_stores_under_acks_once_the_backlog_is_half_its_bound(
        bounded: tuple[Stack, WebhookSpool, _CountedStop],
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack, spool, stop = bounded
    monkeypatch.setattr(webhook_spool_module, "DRAIN_MAX_LAG_SECONDS", 3600.0)  # not that rule
    spool.acks_in_flight = 1
    _spool(stack, spool, "first")
    wait_for(lambda: stop.waits >= 5, what="the drain to yield a few rounds")
    assert _stored(stack) == []

    _spool(stack, spool, "second")  # 2 of 4: half the bound
    # It stores, acknowledgements or not, until the backlog is under half again; the rest
    # waits for a pause as before.
    wait_for(lambda: _stored(stack) == ["first"], timeout=30,
             what="the drain to store at half the bound")
    waits = stop.waits
    wait_for(lambda: stop.waits >= waits + 5, what="the drain to yield again")
    assert _stored(stack) == ["first"]
    assert spool.acks_in_flight == 1

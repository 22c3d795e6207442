"""Issue 17 items 1, 2 (R11, R14, R40): concurrent Aircall deliveries share one commit.

The web process's writer (web/ingest_writer.py) stores whatever queued while it was busy in
one transaction and answers each request only after that commit. Here the first commit is
held by a hook, so the deliveries sent meanwhile are known to queue behind it: released,
they must be kept by ONE more commit, each answered with its own outcome, a failing one
failing only itself, and none answered before its commit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.aircall_webhooks import message_received as _body
from harness.aircall_webhooks import post_to_bridge as _post
from harness.pages import wait_for
from harness.stack import Stack, running_stack
from sqlalchemy import event, func, select

from whatsapp_helpdesk.db.models import Message, WebhookEvent
from whatsapp_helpdesk.db.session import READ_ONLY
from whatsapp_helpdesk.inbound import ingest

WRITER_THREAD = "ingest-writer-"




class _Commits:
    """Commits, and rollbacks of transactions that wrote, made by the writer thread; the
    first commit can be held."""

    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0
        self.wrote = False
        self.hold_first = threading.Event()
        self.first_entered = threading.Event()
        self.synchronous: list[str] = []

    def on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name.startswith(WRITER_THREAD) and statement.lstrip().upper(
        ).startswith("INSERT"):
            self.wrote = True

    def on_commit(self, conn: Any) -> None:
        if not threading.current_thread().name.startswith(WRITER_THREAD):
            return
        self.commits += 1
        self.wrote = False
        if conn.dialect.name == "sqlite":
            cursor = conn.connection.driver_connection.execute("PRAGMA synchronous")
            self.synchronous.append(str(cursor.fetchone()[0]))
        else:
            self.synchronous.append(str(conn.exec_driver_sql("SHOW synchronous_commit").scalar()))
        if self.commits == 1:
            self.first_entered.set()
            assert self.hold_first.wait(30), "the test never released the first commit"

    def on_rollback(self, _conn: Any) -> None:
        # Not counted: the rollback that ends a read (the digest cache's refresh).
        if threading.current_thread().name.startswith(WRITER_THREAD) and self.wrote:
            self.rollbacks += 1
            self.wrote = False


@contextmanager
def _counted(stack: Stack) -> Iterator[_Commits]:
    counted = _Commits()
    engine = stack.services.engine
    event.listen(engine, "commit", counted.on_commit)
    event.listen(engine, "rollback", counted.on_rollback)
    event.listen(engine, "before_cursor_execute", counted.on_execute)
    try:
        yield counted
    finally:
        counted.hold_first.set()
        event.remove(engine, "commit", counted.on_commit)
        event.remove(engine, "rollback", counted.on_rollback)
        event.remove(engine, "before_cursor_execute", counted.on_execute)


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    """One writer, so that what queues behind the held commit is one batch (on PostgreSQL
    the default is four writers, which would take them in parallel batches)."""
    with running_stack(database_url, tmp_path, ingest_writers=1, ingest_mode="direct") as running:
        yield running


def _webhook_token(stack: Stack) -> str:
    return str(stack.aircall.get("/_sandbox/webhooks").json()["webhooks"][0]["token"])




def _held_then_batched(stack: Stack, counted: _Commits, pool: ThreadPoolExecutor,
                       first: bytes, rest: list[bytes]) -> tuple[Future[httpx.Response],
                                                                 list[Future[httpx.Response]]]:
    """`first` alone, its commit held; `rest` sent and queued behind it."""
    writer = stack.web_app.state.ingest_writer
    held = pool.submit(_post, stack, first)
    assert counted.first_entered.wait(30)
    queued = [pool.submit(_post, stack, body) for body in rest]
    wait_for(lambda: writer.queued() == len(rest), what="the deliveries queued behind a commit")
    # R11: its transaction has not committed, so its request has no answer yet.
    assert not held.done()
    # Read without the write lock (which the held transaction has, on SQLite).
    with stack.services.engine.connect() as conn:
        assert conn.execution_options(**{READ_ONLY: True}).scalar(
            select(func.count()).select_from(Message)) == 0
    counted.hold_first.set()
    return held, queued


def test_R40_concurrent_deliveries_share_one_commit(stack: Stack) -> None:
    stack.connect()
    token = _webhook_token(stack)
    first = _body(token, "first", message_id="m-first")
    rest = [_body(token, f"burst {i}") for i in range(7)]
    rest.append(first)  # Aircall's retry of the held one, while it is held: one kept (R14)
    with _counted(stack) as counted, ThreadPoolExecutor(len(rest) + 1) as pool:
        held, queued = _held_then_batched(stack, counted, pool, first, rest)
        answers = [f.result(30) for f in queued]
        first_answer = held.result(30)
    assert first_answer.status_code == 200 and first_answer.json() == {"result": "stored"}
    assert [a.json()["result"] for a in answers] == ["stored"] * 7 + ["duplicate"]
    # The held commit, then ONE for the eight queued behind it; no batch was retried.
    assert counted.commits == 2, counted.commits
    assert counted.rollbacks == 0
    with stack.services.sessions() as session:
        texts = sorted(session.scalars(select(Message.text)))
        assert texts == sorted(["first", *(f"burst {i}" for i in range(7))])


def test_R40_a_failing_delivery_fails_alone_in_its_batch(
    stack: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack.connect()
    token = _webhook_token(stack)
    real_inbound_text = ingest.inbound_text

    def inbound_text(message: Any) -> str:
        if message.body == "poison":
            raise RuntimeError("a delivery that fails")
        return real_inbound_text(message)

    monkeypatch.setattr(ingest, "inbound_text", inbound_text)
    rest = [_body(token, "before"), _body(token, "poison"), _body(token, "after")]
    with _counted(stack) as counted, ThreadPoolExecutor(4) as pool:
        held, queued = _held_then_batched(stack, counted, pool, _body(token, "first"), rest)
        answers = [f.result(30) for f in queued]
        assert held.result(30).status_code == 200
    assert [a.status_code for a in answers] == [200, 500, 200]
    # The batch was tried as one and rolled back, then each delivery stored alone.
    assert counted.rollbacks >= 1
    with stack.services.sessions() as session:
        assert sorted(session.scalars(select(Message.text))) == ["after", "before", "first"]
        # The failed one left nothing: Aircall's retry of it will be stored then.
        stored = [json.loads(p)["data"]["body"] for p in session.scalars(
            select(WebhookEvent.payload).where(WebhookEvent.source == "aircall"))]
        assert "poison" not in stored


def test_R11_webhook_commits_are_durable(stack: Stack) -> None:
    """A 2xx means kept, also through a power loss: SQLite's WAL synced at each such
    commit (synchronous=FULL; NORMAL syncs only at checkpoints), PostgreSQL's commit
    flushed (synchronous_commit on)."""
    token = _webhook_token(stack)
    with _counted(stack) as counted:
        counted.hold_first.set()
        assert _post(stack, _body(token, "durable")).status_code == 200
    expected = "2" if stack.services.engine.dialect.name == "sqlite" else "on"
    assert counted.synchronous == [expected]

"""Issue 17 items 1, 2 (R11, R14, R42, R43, R53; decision 0011): spool-first ingest.

With INGEST_MODE=spool (the default) an inbound WhatsApp message for a connected number is
answered 2xx once it is fsync'ed to the spool, and the web process's drain stores the spool
in the database afterwards, each delivery exactly once. Everything else is answered by the
direct path as before; the backlog is bounded; records a crashed process left are stored by
a live one, and several processes share one spool directory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness.aircall_webhooks import message_received as _body
from harness.aircall_webhooks import post_to_bridge as _post
from harness.pages import wait_for
from harness.stack import Stack, running_stack
from sqlalchemy import func, select

from whatsapp_helpdesk.aircall import token_digest
from whatsapp_helpdesk.db.models import Message, WebhookEvent
from whatsapp_helpdesk.spool import encode_payload, read_records
from whatsapp_helpdesk.web import webhook_spool as webhook_spool_module
from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

pytestmark = pytest.mark.both_databases

UNCONNECTED_NUMBER = 1003  # WhatsApp-enabled in the sandbox, no channel account






def _token(stack: Stack) -> str:
    return str(stack.aircall.get("/_sandbox/webhooks").json()["webhooks"][0]["token"])


def _webhook_spool(stack: Stack) -> WebhookSpool:
    spool: WebhookSpool = stack.web_app.state.webhook_spool
    return spool


def _connected(stack: Stack) -> str:
    """A connected number the fast path knows (as its cache's refresh would have it)."""
    stack.connect()
    _webhook_spool(stack).refresh_digests()
    return _token(stack)


class _HeldDrain:
    """Holds the stack's drain before it stores anything, until released."""

    def __init__(self, webhook_spool: WebhookSpool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released = threading.Event()
        self.entered = threading.Event()
        real: Callable[[list[Any]], None] = webhook_spool._deliver_batch

        def held(records: list[Any]) -> None:
            self.entered.set()
            assert self.released.wait(60), "the test never released the drain"
            real(records)

        monkeypatch.setattr(webhook_spool, "_deliver_batch", held)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[_HeldDrain]:
    drain = _HeldDrain(_webhook_spool(stack), monkeypatch)
    yield drain
    drain.release()


def _spooled_texts(stack: Stack) -> list[str]:
    texts = []
    for segment in _webhook_spool(stack).spool.segments():
        for record in read_records(segment):
            texts.append(json.loads(record.payload["body"])["data"]["body"])
    return texts


def _message_texts(stack: Stack) -> list[str]:
    with stack.services.sessions() as session:
        return sorted(session.scalars(select(Message.text)))


def test_issue17_a_message_is_answered_once_spooled_and_stored_once_by_the_drain(
        stack: Stack, held: _HeldDrain) -> None:
    token = _connected(stack)
    bodies = [_body(token, f"burst {i}") for i in range(5)]
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda b: _post(stack, b), bodies))

    assert [(a.status_code, a.json()) for a in answers] == [(200, {"result": "spooled"})] * 5
    # Answered: on disk in the spool (fsync'ed, tests/spool), not in the database yet.
    assert sorted(_spooled_texts(stack)) == [f"burst {i}" for i in range(5)]
    assert _message_texts(stack) == []
    # Aircall's retry of one while it waits in the spool (R14).
    assert _post(stack, bodies[0]).json() == {"result": "spooled"}

    held.release()
    wait_for(lambda: _webhook_spool(stack).spool.unreplayed() == 0, what="the drain")
    assert _message_texts(stack) == [f"burst {i}" for i in range(5)]
    with stack.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.source == "aircall")) == 5
    assert _webhook_spool(stack).spool.segments() == []


def test_issue17_other_deliveries_keep_their_direct_answers_and_are_not_spooled(
        stack: Stack, held: _HeldDrain) -> None:
    token = _connected(stack)
    forged = _post(stack, _body("forged", "who am I"))
    invalid = _post(stack, b'{"event": "message.received", "token": "%s"}' % token.encode())
    not_json = _post(stack, b"{not json")
    unconnected = _post(stack, _body(token, "hello Berlin", number_id=UNCONNECTED_NUMBER))
    too_large = _post(stack, b"x" * (300 * 1024))
    # A lone surrogate is no token we issued (and cannot be hashed): the direct path's 400.
    surrogate = _post(stack, b'{"event": "message.received", "token": "\\ud800", "data": {}}')

    assert (forged.status_code, forged.json()["result"]) == (401, "unauthorized")
    assert (invalid.status_code, invalid.json()["result"]) == (400, "invalid")
    assert not_json.status_code == 400
    assert (unconnected.status_code, unconnected.json()["result"]) == (
        200, "number_not_connected")
    assert too_large.status_code == 413
    assert (surrogate.status_code, surrogate.json()["result"]) == (400, "invalid")
    # Nothing of it reached the spool (the drain is held: anything spooled would be there).
    assert _spooled_texts(stack) == []
    assert not held.entered.is_set()


@pytest.fixture
def bounded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Stack, _HeldDrain]]:
    with running_stack(database_url, tmp_path, spool_backlog_max_records=2) as running:
        drain = _HeldDrain(_webhook_spool(running), monkeypatch)
        yield running, drain
        drain.release()


def test_issue17_past_the_backlog_bound_the_answer_waits_for_the_drain_then_is_503(
        bounded: tuple[Stack, _HeldDrain], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, held = bounded
    token = _connected(stack)
    spool = _webhook_spool(stack)
    assert [_post(stack, _body(token, f"m{i}")).status_code for i in range(2)] == [200, 200]
    wait_for(held.entered.is_set, what="the drain to take the backlog")

    with ThreadPoolExecutor(1) as pool:
        third = pool.submit(_post, stack, _body(token, "m2"))
        wait_for(lambda: spool.acks_in_flight == 1, what="the third delivery to wait")
        # Visible while it waits: the backlog in /healthz and /metrics.
        assert stack.bridge.get("/healthz").json()["spool"]["records"] == 2
        assert "whatsapp_helpdesk_spool_records 2.0" in stack.bridge.get("/metrics").text
        assert not third.done()
        held.release()
        answer = third.result(60)
    assert (answer.status_code, answer.json()) == (200, {"result": "spooled"})
    wait_for(lambda: _message_texts(stack) == ["m0", "m1", "m2"], what="all three stored")

    # A backlog that does not shrink in time: 503, so that Aircall retries; not kept.
    monkeypatch.setattr(webhook_spool_module, "BACKLOG_WAIT_SECONDS", 0.2)
    blocked = threading.Event()
    monkeypatch.setattr(spool, "_deliver_batch", lambda records: blocked.wait(60))
    try:
        assert [_post(stack, _body(token, f"n{i}")).status_code for i in range(2)] == [200, 200]
        refused = _post(stack, _body(token, "n2"))
        assert (refused.status_code, refused.json()["result"]) == (503, "busy")
        assert "n2" not in _spooled_texts(stack)
    finally:
        blocked.set()


def _other_process(stack: Stack) -> WebhookSpool:
    """Another web process's side of the same spool directory (its own segments), its drain
    not started: what it appends stays until the test replays it (or it "crashes")."""
    other = WebhookSpool(stack.services)
    other.refresh_digests()
    return other


def _records(stack: Stack, bodies: list[bytes]) -> list[dict[str, Any]]:
    """The fast path's spool records for these deliveries (as any web process builds them)."""
    records = [_webhook_spool(stack).fast_path_record(body) for body in bodies]
    assert all(records)
    return [r for r in records if r]


def test_issue17_a_crashed_process_records_are_stored_once_by_a_live_one(stack: Stack) -> None:
    token = _connected(stack)
    crashed = _other_process(stack)
    records = _records(stack, [_body(token, f"before the crash {i}") for i in range(3)])
    assert crashed.append_fast(records).status_code == 200
    # The process dies after the fsync, before its drain: its segment's lock goes with it.
    crashed.spool.close()

    # The live process's drain claims the dead segment (R53's replay of an orphan).
    wait_for(lambda: _message_texts(stack) == [f"before the crash {i}" for i in range(3)],
             what="the dead process's deliveries stored", timeout=20)
    wait_for(lambda: _webhook_spool(stack).spool.segments() == [], what="the segment removed")


def test_issue17_two_processes_on_one_spool_each_store_their_own_exactly_once(
        stack: Stack) -> None:
    token = _connected(stack)
    other = _other_process(stack)
    try:
        records = _records(stack, [_body(token, f"other {i}") for i in range(3)])
        assert other.append_fast(records).status_code == 200
        [others_segment] = other.spool.segments()
        assert [_post(stack, _body(token, f"this {i}")).json()["result"]
                for i in range(3)] == ["spooled"] * 3
        wait_for(lambda: _message_texts(stack) == [f"this {i}" for i in range(3)],
                 what="this process's deliveries stored")
        # The live other process's segment is left to it (its lock is held)...
        wait_for(lambda: other.spool.segments() == [others_segment],
                 what="this process's own segments replayed and removed")
        assert len(list(read_records(others_segment))) == 3
        # ...and its drain stores it.
        assert other.replay_once() == 3
        assert _message_texts(stack) == sorted(
            [f"this {i}" for i in range(3)] + [f"other {i}" for i in range(3)])
    finally:
        other.stop()


def test_issue17_the_ack_leaves_validation_to_the_drain_which_skips_what_is_invalid(
        stack: Stack, held: _HeldDrain) -> None:
    """R43: the acknowledgement reads only what decides the fast path (decision 0011); the
    drain validates every record, records an authenticated delivery it finds invalid as
    the direct path does (or, when the envelope itself is bad, logs and skips it), and
    stores the messages behind it."""
    token = _connected(stack)
    no_customer = json.loads(_body(token, "no customer"))
    del no_customer["data"]["external_number"]
    bodies = [json.dumps(no_customer).encode(),
              _body(token, "a \u0000 in the text"),  # not storable (R43): the envelope fails
              _body(token, "after them")]
    answers = [_post(stack, body) for body in bodies]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"result": "spooled"})] * 3

    held.release()
    wait_for(lambda: _webhook_spool(stack).spool.unreplayed() == 0, what="the drain")
    assert _message_texts(stack) == ["after them"]
    with stack.services.sessions() as session:
        outcomes = list(session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.source == "aircall")))
    assert outcomes.count("invalid") == 1
    assert outcomes.count("stored") == 1
    assert _webhook_spool(stack).spool.segments() == []


def test_issue17_the_fast_path_answers_ahead_of_fastapis_middleware_stack(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """R40: an acknowledged message costs none of FastAPI's per-request layers (telemetry,
    body limit, error pages, security headers middleware, sessions, routing); anything the
    fast path does not take still goes through all of them."""
    token = _connected(stack)
    app = stack.web_app
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    inner = app.middleware_stack
    behind: list[str] = []

    async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            behind.append(scope["path"])
        await inner(scope, receive, send)

    monkeypatch.setattr(app, "middleware_stack", counting)
    assert _post(stack, _body(token, "fast")).json() == {"result": "spooled"}
    assert behind == []
    # Behind a backlog the direct path would spool it too (R53's order rule): drained first.
    wait_for(lambda: _webhook_spool(stack).spool.segments() == [], what="the drain")
    unconnected = _post(stack, _body(token, "hello Berlin", number_id=UNCONNECTED_NUMBER))
    assert unconnected.json()["result"] == "number_not_connected"
    assert behind == ["/webhooks/aircall"]


def test_issue17_a_delivery_the_spool_cannot_keep_is_answered_500_then_the_next_is_kept(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """R11, R43: no 2xx without the fsync; the failure is a JSON 500 (Aircall retries) with
    the headers every answer carries, never a request left without an answer."""
    token = _connected(stack)
    spool = _webhook_spool(stack)

    def disk_gone(records: list[bytes]) -> Any:
        raise OSError("disk gone")

    with monkeypatch.context() as patched:
        patched.setattr(spool, "append_fast", disk_gone)
        refused = _post(stack, _body(token, "not kept"))
    assert (refused.status_code, refused.json()["result"]) == (500, "error")
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert _post(stack, _body(token, "kept")).json() == {"result": "spooled"}
    wait_for(lambda: _message_texts(stack) == ["kept"], what="the next one stored")


def test_issue17_the_fast_path_writes_the_record_the_outage_path_writes(stack: Stack) -> None:
    """The fast path builds its spool payload without the record dict (decision 0011): the
    outage path's record (R53), so the drain reads both alike — the same bytes for ASCII
    text, the same JSON beyond it (orjson leaves it UTF-8 where json escapes it); the token
    is never written."""
    token = _connected(stack)
    spool = _webhook_spool(stack)
    digest = token_digest(token)
    installation_id = spool._digests[digest]
    for words in ("the same bytes, \"quoted\" \\ back",
                  "the same record, \u00e9t\u00e9 \U0001f600"):
        body = _body(token, words)
        fast = spool.fast_path_record(body)
        outage = encode_payload(WebhookSpool._aircall_record(installation_id, digest, body))
        assert fast is not None and token.encode() not in fast
        if words.isascii():
            assert fast == outage
        read, read_outage = json.loads(fast), json.loads(outage)
        assert read == read_outage | {"body": read["body"]}
        assert json.loads(read["body"]) == json.loads(read_outage["body"])

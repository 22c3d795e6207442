"""Job handlers get their payload parsed (issue 13 item 2): the worker validates an entry's
payload once with its kind's pydantic model and hands the handler that object; a payload
that does not validate fails the job with a reason naming the field, and its handler never
runs; no handler reads the raw `entry.payload` dict."""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation, OutboxEntry
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    settings = Settings(database_url=database_url, _env_file=None,  # type: ignore[call-arg]
                        client_pacing=False)
    built = build_services(settings, clock=ManualClock())
    upgrade(built.engine)
    now = built.clock.now()
    with built.sessions.begin() as session:
        session.add(
            Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=now, updated_at=now)
        )
    try:
        yield built
    finally:
        built.engine.dispose()


def _stored_as(services: Services, kind: str, payload: dict[str, Any]) -> int:
    """An entry as a row holds it (raw JSON: what an older or newer version may have left)."""
    with services.sessions.begin() as session:
        entry = outbox.enqueue(session, installation_id=1, kind=kind, now=services.clock.now(),
                               payload=payload)
        session.flush()
        return entry.id


def _work_once(services: Services) -> None:
    async def main() -> None:
        worker = Worker(services, concurrency=1)
        try:
            assert await worker.work_once(), "the worker found no entry"
        finally:
            await services.aclose()

    asyncio.run(main())


def _handled_by(monkeypatch: pytest.MonkeyPatch, kind: str) -> list[tuple[int, object]]:
    """The kind's handler replaced by one that records (entry id, payload) of each call."""
    calls: list[tuple[int, object]] = []

    async def handler(_services: object, entry: outbox.Claimed, payload: object) -> str:
        calls.append((entry.id, payload))
        return "recorded"

    monkeypatch.setitem(REGISTRY, kind, replace(REGISTRY[kind], handler=handler))
    return calls


def test_a_handler_receives_the_parsed_payload(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _handled_by(monkeypatch, payloads.ReportStatus.KIND)
    entry_id = _stored_as(services, payloads.ReportStatus.KIND, {
        "hubspot_message_id": "hs-1", "status": "FAILED", "error": "No window.",
        "added_by_a_newer_version": True,
    })
    _work_once(services)
    assert calls == [(entry_id, payloads.ReportStatus(
        hubspot_message_id="hs-1", status="FAILED", error="No window."))]
    with services.sessions() as session:
        assert session.get_one(OutboxEntry, entry_id).state == outbox.DONE


def test_a_payload_missing_a_field_fails_the_job_naming_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _handled_by(monkeypatch, payloads.SyncNumber.KIND)
    entry_id = _stored_as(services, payloads.SyncNumber.KIND, {"number": "1001"})
    _work_once(services)
    assert calls == []  # never run on what it cannot read
    with services.sessions() as session:
        row = session.get_one(OutboxEntry, entry_id)
        assert (row.state, row.attempts) == (outbox.FAILED, 1)
        assert row.last_error is not None
        assert "sync_number" in row.last_error and "aircall_number_id" in row.last_error


def _raw_payload_reads(path: Path) -> list[str]:
    """Where a function of the module reads its `outbox.Claimed` parameter's `.payload`;
    spreading it whole into a rewritten row (`{**entry.payload, …}`: keys a newer version
    wrote are kept) is a write, not a read."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        claimed = {
            arg.arg for arg in function.args.args
            if arg.annotation is not None and "Claimed" in ast.unparse(arg.annotation)
        }
        spread = {
            id(value) for node in ast.walk(function) if isinstance(node, ast.Dict)
            for key, value in zip(node.keys, node.values, strict=True) if key is None
        }
        found.extend(
            f"{path.name}:{node.lineno} {function.name}"
            for node in ast.walk(function)
            if isinstance(node, ast.Attribute) and node.attr == "payload"
            and isinstance(node.value, ast.Name) and node.value.id in claimed
            and id(node) not in spread
        )
    return found


def test_no_handler_module_reads_the_raw_payload() -> None:
    # The registry's `JobKind.read` is the one place that parses it.
    registry = Path(inspect.getfile(JobKind))
    modules = {Path(inspect.getfile(kind.handler)) for kind in REGISTRY.values()} - {registry}
    assert len(modules) >= 5, "the handlers' modules were not found: the check is broken"
    assert sorted(read for path in modules for read in _raw_payload_reads(path)) == []

"""The test harness itself (issue 13 item 5): a stack started from the process's snapshot of
the install is the installed stack a real install gives: the same rows in our database, the
same records in both sandboxes (tokens, channel, webhook, app install), the tokens we hold
the ones the sandboxes know, and a customer's message → ticket → agent's reply works on both
(tests/harness/stack.py)."""

from __future__ import annotations

import collections
import dataclasses
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness.pacing import FAST_AIRCALL_BUCKET
from harness.stack import (
    CUSTOMER,
    PORTAL,
    SandboxServers,
    Stack,
    running_stack,
    shared_sandboxes,
)
from sqlalchemy import select

from whatsapp_helpdesk.aircall import token_digest
from whatsapp_helpdesk.db.models import Base, Installation

# Random per install: compared as "the same value in the same places", not by value.
SECRET_FIELDS = {"token", "refresh_token", "code", "webhook_id", "created_by_token",
                 "locked_by"}  # the outbox's: the host, process and object of who ran it
TIME_FIELDS = {"at", "started_at", "expires_at", "request_times", "next_slot_at"}
UNORDERED_FIELDS = {"api_calls"}


# Alone or inside a text (the numbers refresh's JSON state: `{"at": "…+00:00", …}`).
ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _canonical(value: Any, secrets: dict[str, str], bridge: str, field: str = "") -> Any:
    """`value` as plain data with the per-install randomness named: instants as "<time>",
    each secret as "<secret N>" in order of first sight (call twice: the first call only
    learns them), the bridge's address as "<bridge>"; lists whose order is the install's
    concurrency (the numbers' reads) sorted."""
    def inner(item: Any, name: str = field) -> Any:
        return _canonical(item, secrets, bridge, name)

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: inner(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {inner(k): inner(v, k if isinstance(k, str) else field) for k, v in value.items()}
    if isinstance(value, list | tuple | collections.deque):
        items = [inner(v) for v in value]
        return sorted(items, key=repr) if field in UNORDERED_FIELDS else items
    if isinstance(value, datetime) or (field in TIME_FIELDS and isinstance(value, float)):
        return "<time>"
    if isinstance(value, str):
        if field in SECRET_FIELDS or value in secrets:
            return secrets.setdefault(value, f"<secret {len(secrets)}>")
        return ISO_INSTANT.sub("<time>", value).replace(bridge, "<bridge>")
    if hasattr(value, "model_dump"):  # a sandbox's pydantic configuration
        return inner(value.model_dump())
    if hasattr(value, "__dict__"):  # an id sequence
        return {type(value).__name__: inner(vars(value))}
    return value


def _database_rows(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table; what is random per install (encrypted tokens, the webhook's
    id and token digest) and the instants replaced."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with stack.services.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            found = [dict(row._mapping) for row in connection.execute(select(table))]
            for row in found:
                for column in list(row):
                    if column.endswith("_enc") or column in (
                            "aircall_webhook_id", "aircall_webhook_token_hash"):
                        row[column] = "<secret>" if row[column] else row[column]
            rows[table.name] = _canonical(found, {}, stack.settings.public_url, table.name)
    return rows


def _sandbox_records(stack: Stack, sandboxes: SandboxServers) -> dict[str, Any]:
    secrets: dict[str, str] = {}
    states = {"hubspot": sandboxes.hubspot_app.state.sandbox.state,
              "aircall": sandboxes.aircall_app.state.sandbox.state}
    _canonical(states, secrets, stack.settings.public_url)  # learns the secrets
    return dict(_canonical(states, secrets, stack.settings.public_url))


def _tokens(stack: Stack, sandboxes: SandboxServers) -> tuple[str, ...]:
    """The tokens in our database, each checked to be a live one of its sandbox."""
    with stack.services.sessions() as session:
        installation = session.get(Installation, stack.installation_id)
        assert installation is not None
        cipher = stack.services.cipher
        held = tuple(cipher.decrypt(str(token)) for token in (
            installation.hubspot_access_token_enc, installation.hubspot_refresh_token_enc,
            installation.aircall_access_token_enc))
        webhook_id = installation.aircall_webhook_id
        digest = installation.aircall_webhook_token_hash
    hubspot = sandboxes.hubspot_app.state.sandbox.state
    aircall = sandboxes.aircall_app.state.sandbox.state
    assert not hubspot.access_tokens[held[0]].revoked
    assert not hubspot.refresh_tokens[held[1]].revoked
    assert not aircall.access_tokens[held[2]].revoked
    webhook = aircall.webhooks[str(webhook_id)]
    assert token_digest(webhook.token) == digest
    assert webhook.url == f"{stack.settings.public_url}/webhooks/aircall"
    return (*held, webhook.token)


def _message_ticket_reply(stack: Stack) -> None:
    stack.connect()
    stack.customer_says("Where is my order?")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{ticket['threadId']}/"
                                "replies", json={"text": "On its way!"})
    assert answer.status_code == 201, answer.text
    deadline = time.monotonic() + 20
    while True:
        stack.drain()
        phone = stack.aircall.get("/_sandbox/customer/inbox", params={"phone": CUSTOMER})
        if [m["body"] for m in phone.json()["messages"]] == ["On its way!"]:
            return
        assert time.monotonic() < deadline, phone.text
        time.sleep(0.05)


def _empty_url(tmp_path: Path, name: str) -> str:
    (tmp_path / name).mkdir()
    return f"sqlite:///{tmp_path / name / 'helpdesk.db'}"


def test_a_stack_from_the_install_snapshot_is_the_installed_stack(
    tmp_path: Path, migrated_templates: Any,
) -> None:
    sandboxes = shared_sandboxes()
    fresh_url = _empty_url(tmp_path, "fresh")
    migrated_templates.fill(fresh_url)
    # On the fast Aircall bucket, all three alike (the snapshots are per settings): each
    # reply went out only when the install's calls left a slot on the real 60 / min one.
    with running_stack(fresh_url, tmp_path / "fresh", **FAST_AIRCALL_BUCKET) as fresh:
        installed = (_database_rows(fresh), _sandbox_records(fresh, sandboxes))
        fresh_tokens = _tokens(fresh, sandboxes)
        _message_ticket_reply(fresh)
    tokens = []
    for name in ("first", "second"):
        # The first may install and take the snapshot (none yet, or one too old); the
        # second starts from it.
        with running_stack(_empty_url(tmp_path, name), tmp_path / name,
                           database_copies=migrated_templates,
                           **FAST_AIRCALL_BUCKET) as from_snapshot:
            assert from_snapshot.settings.public_url != fresh.settings.public_url
            assert (_database_rows(from_snapshot),
                    _sandbox_records(from_snapshot, sandboxes)) == installed
            tokens.append(_tokens(from_snapshot, sandboxes))
            _message_ticket_reply(from_snapshot)
    # Restored, not installed again: a real install makes new random tokens.
    assert tokens[0] == tokens[1] and not set(tokens[0]) & set(fresh_tokens)


def test_a_snapshot_is_per_settings_and_too_old_a_one_is_taken_again(
    tmp_path: Path, migrated_templates: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandboxes = shared_sandboxes()

    def stack_tokens(name: str, **settings: Any) -> tuple[str, ...]:
        with running_stack(_empty_url(tmp_path, name), tmp_path / name,
                           database_copies=migrated_templates, **settings) as stack:
            return _tokens(stack, sandboxes)

    first = stack_tokens("first", aircall_rate_limit=6001)
    assert stack_tokens("again", aircall_rate_limit=6001) == first
    other = stack_tokens("other", aircall_rate_limit=6002)
    assert not set(other) & set(first)
    monkeypatch.setattr("harness.stack.SNAPSHOT_MAX_AGE_SECONDS", 0.0)
    assert not set(stack_tokens("old", aircall_rate_limit=6001)) & set(first)


@pytest.mark.stack(fresh_install=True)
def test_a_stack_marked_fresh_install_is_installed_for_real(stack: Stack) -> None:
    sandboxes = shared_sandboxes()
    # Served on a port of its own: the install registered that address, not the one every
    # snapshot has (`bridge_port`); and what it holds is live in both sandboxes.
    assert stack.settings.public_url != f"http://127.0.0.1:{sandboxes.bridge_port}"
    _tokens(stack, sandboxes)

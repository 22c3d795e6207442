"""The outbox's job kinds in one registry (issue 13 item 2): every kind that can be queued is
registered with its payload model; work is queued only through typed payloads; the payloads
that earlier versions stored still validate, and malformed ones are refused with a reason."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import whatsapp_helpdesk
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.jobs.registry import REGISTRY, UnreadableJob

PACKAGE = Path(whatsapp_helpdesk.__file__).parent
QUEUE_MODULE = PACKAGE / "jobs" / "queue.py"


def _import_the_bridge() -> None:
    """Every module of the bridge, so that every payload model it declares exists."""
    for module in pkgutil.walk_packages(whatsapp_helpdesk.__path__, "whatsapp_helpdesk."):
        if module.name.startswith(("whatsapp_helpdesk.sandbox", "whatsapp_helpdesk.db.migrations")):
            continue
        importlib.import_module(module.name)


def _declared_kinds() -> dict[str, type[payloads.JobPayload]]:
    found: dict[str, type[payloads.JobPayload]] = {}
    pending = list(payloads.JobPayload.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "KIND" in cls.__dict__:
            assert cls.KIND not in found, f"{cls.KIND!r} declared by two payload models"
            found[cls.KIND] = cls
    return found


def test_every_declared_job_kind_is_registered_with_its_payload() -> None:
    _import_the_bridge()
    declared = _declared_kinds()
    assert declared, "no payload model found: the walk is broken"
    assert set(declared) == set(REGISTRY)
    for kind, payload in declared.items():
        assert REGISTRY[kind].payload is payload, kind
        assert REGISTRY[kind].name == kind
        assert payload.LABEL, f"{kind} has no label for the dashboard"


def _raw_enqueue_calls(path: Path) -> list[int]:
    """Lines calling db/outbox.py's untyped `enqueue` (as `outbox.enqueue` or imported)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported_bare = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "whatsapp_helpdesk.db.outbox"
        and any(alias.name == "enqueue" for alias in node.names)
        for node in ast.walk(tree)
    )
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "enqueue"
            and isinstance(func.value, ast.Name)
            and func.value.id == "outbox"
        ) or (imported_bare and isinstance(func, ast.Name) and func.id == "enqueue"):
            lines.append(node.lineno)
    return lines


def test_work_is_queued_only_through_a_typed_payload() -> None:
    """A raw `kind=` string could name a kind the registry does not know: only jobs/queue.py
    may call the outbox's untyped enqueue, and it takes the kind from a payload model."""
    callers = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if "sandbox" not in path.parts and (lines := _raw_enqueue_calls(path))
    }
    assert callers == {str(QUEUE_MODULE.relative_to(PACKAGE)): callers.get("jobs/queue.py")}
    assert callers["jobs/queue.py"], "the check finds no call at all: it is broken"


# What the previous version stored, key for key (flows/*.py before the registry): existing
# rows must keep working.
STORED_BY_EARLIER_VERSIONS: dict[str, dict[str, Any]] = {
    "publish_inbound": {},
    "send_reply": {
        "channel_account_id": "8123",
        "channel_id": "1001",
        "rich_text": None,
        "attachment_count": 0,
        "sending_since": "2026-01-05T10:00:00+00:00",
    },
    "report_status": {
        "hubspot_message_id": "hs-1",
        "status": "FAILED",
        "error": "No window.",
        "channel_id": None,
    },
    "native_ticket": {
        "number_id": 3,
        "kind": "MISSED_CALL",
        "reference": "991",
        "customer": "+33 6 12 34 56 78",
        "customer_e164": "+33612345678",
        "customer_name": None,
        "at": "2026-01-05T10:00:00+00:00",
        "text": "",
        "voicemail_url": None,
    },
    "set_contact_company": {"conversation_id": 4, "company": "Acme", "replaces": None},
    "reengagement_note": {
        "reply_id": 7,
        "channel_id": None,
        "number_id": 3,
        "text": "Sent as the template “hello”.",
    },
    "fetch_media": {
        "url": "https://files.example/1.jpg",
        "file_name": "1.jpg",
        "file_type": "image/jpeg",
        "caption": "",
        "kind": "image",
    },
    "refresh_numbers": {"after_install": True, "numbers_count": 80},
    "sync_number": {"aircall_number_id": "1001"},
}


def _claimed(kind: str, payload: dict[str, Any], message_id: int | None = 1) -> outbox.Claimed:
    return outbox.Claimed(
        id=1, installation_id=1, kind=kind, message_id=message_id, payload=payload, attempt=1
    )


def test_the_table_of_stored_payloads_covers_every_kind() -> None:
    assert set(STORED_BY_EARLIER_VERSIONS) == set(REGISTRY)


@pytest.mark.parametrize("kind", sorted(STORED_BY_EARLIER_VERSIONS))
def test_payloads_earlier_versions_stored_still_validate(kind: str) -> None:
    stored = STORED_BY_EARLIER_VERSIONS[kind]
    job = REGISTRY[kind].read(_claimed(kind, stored))
    assert job.model_dump(mode="json") == stored  # nothing lost, nothing renamed
    # A key a newer version added is ignored, not an error.
    REGISTRY[kind].read(_claimed(kind, {**stored, "added_later": True}))


@pytest.mark.parametrize(
    ("kind", "payload", "message_id", "named"),
    [
        ("send_reply", {"attachment_count": "three"}, 1, "attachment_count"),
        ("report_status", {"hubspot_message_id": "hs-1", "status": "DELIVERED"}, 1, "status"),
        ("report_status", {"status": "SENT"}, 1, "hubspot_message_id"),
        (
            "native_ticket",
            {**STORED_BY_EARLIER_VERSIONS["native_ticket"], "number_id": "x"},
            None,
            "number_id",
        ),
        (
            "set_contact_company",
            {"conversation_id": "four", "company": "Acme"},
            None,
            "conversation_id",
        ),
        ("reengagement_note", {"reply_id": 7}, None, "text"),
        ("fetch_media", {"file_name": "1.jpg", "kind": "image"}, 1, "url"),
        ("publish_inbound", {}, None, "names no message"),
        ("fetch_media", STORED_BY_EARLIER_VERSIONS["fetch_media"], None, "names no message"),
        ("send_reply", {}, None, "names no message"),
    ],
)
def test_a_malformed_payload_is_refused_with_a_reason_that_names_the_field(
    kind: str, payload: dict[str, Any], message_id: int | None, named: str
) -> None:
    with pytest.raises(UnreadableJob) as refused:
        REGISTRY[kind].read(_claimed(kind, payload, message_id))
    assert refused.value.why == "bad_payload"
    assert named in refused.value.message and kind in refused.value.message


def test_a_kind_is_declared_once() -> None:
    with pytest.raises(TypeError, match="declared twice"):
        type(
            "SendReplyAgain",
            (payloads.JobPayload,),
            {
                "__annotations__": {"KIND": "ClassVar[str]", "LABEL": "ClassVar[str]"},
                "KIND": payloads.SendReply.KIND,
                "LABEL": "Again",
                "__module__": __name__,
            },
        )


def test_typed_enqueue_refuses_a_payload_that_is_no_kind() -> None:
    from whatsapp_helpdesk.jobs import enqueue

    with pytest.raises(TypeError, match="declares no KIND"):
        enqueue(None, payloads.JobPayload(), installation_id=1, now=None)  # type: ignore[arg-type]


def test_a_reengagement_notes_stored_json_leads_with_its_reply() -> None:
    """replies/reengagement.py `ensure_note` finds a queued note by the stored JSON's prefix."""
    note = payloads.ReengagementNote(reply_id=7, channel_id="1", number_id=3, text="A note.")
    assert json.dumps(note.model_dump(mode="json")).startswith('{"reply_id": 7,')

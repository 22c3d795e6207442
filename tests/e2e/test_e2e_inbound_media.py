"""R51 (and R16's placeholder as its fallback): inbound photos, voice notes, videos,
documents and stickers reach the ticket as files; locations and shared contacts as text.

The real path: the sandbox customer phone sends the media → Aircall webhook over HTTP →
our web app → the worker fetches Aircall's pre-signed URL, uploads to the sandbox HubSpot's
Files API (2026-03, PRIVATE) → publishes with a FILE attachment.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from harness.pacing import fast_aircall_bucket
from harness.stack import PORTAL, Stack
from sqlalchemy import select

from whatsapp_helpdesk.db.models import Message

SAMPLES = (Path(__file__).resolve().parents[2]
           / "src/whatsapp_helpdesk/sandbox/aircall/samples")


def _only_message(stack: Stack) -> dict:  # type: ignore[type-arg]
    [ticket] = stack.tickets()
    [message] = ticket["messages"]
    return message


def _files(stack: Stack) -> list[dict]:  # type: ignore[type-arg]
    return stack.hubspot.get(f"/_sandbox/portals/{PORTAL}/files").json()["files"]


def _bytes_behind_the_ticket_link(stack: Stack, file_id: str) -> httpx.Response:
    """What an agent's click on the attachment in the ticket gives (a signed URL)."""
    return stack.hubspot.get(f"/help-desk/{PORTAL}/files/{file_id}", follow_redirects=True)


def _with_budget(stack: Stack, seconds: float) -> None:
    stack.settings = stack.settings.model_copy(update={"media_retry_seconds": seconds})


@pytest.mark.parametrize(
    ("kind", "sample", "usage", "content_type"),
    [
        ("image", "photo.png", "IMAGE", "image/png"),
        ("audio", "voice-note.ogg", "VOICE_RECORDING", "audio/ogg"),
        ("document", "document.pdf", "OTHER", "application/pdf"),
    ],
)
def test_R51_media_reaches_the_ticket_as_a_private_file(
    stack: Stack, kind: str, sample: str, usage: str, content_type: str
) -> None:
    stack.connect()
    stack.customer_says("Voici le fichier", type=kind)
    stack.wait_deliveries()
    stack.drain()
    message = _only_message(stack)
    assert message["text"] == "Voici le fichier"  # the caption is the message's text
    [attachment] = message["attachments"]
    assert attachment["type"] == "FILE"
    assert attachment["fileUsageType"] == usage
    assert attachment["name"] == sample
    [stored] = _files(stack)
    assert stored["id"] == attachment["fileId"]
    assert stored["access"] == "PRIVATE"
    assert stored["folderPath"] == "/whatsapp-helpdesk/inbound"
    assert stored["contentType"] == content_type
    served = _bytes_behind_the_ticket_link(stack, stored["id"])
    assert served.status_code == 200
    assert served.content == (SAMPLES / sample).read_bytes()


@pytest.mark.parametrize(("kind", "usage"), [("video", "OTHER"), ("sticker", "STICKER")])
def test_R51_video_and_sticker_usage_types(stack: Stack, kind: str, usage: str) -> None:
    stack.connect()
    stack.customer_says("", type=kind)
    stack.wait_deliveries()
    stack.drain()
    message = _only_message(stack)
    [attachment] = message["attachments"]
    assert attachment["fileUsageType"] == usage
    # No caption: the file's name is the text (HubSpot's message needs some).
    assert message["text"] == attachment["name"]


def test_R51_location_becomes_text_with_coordinates_name_and_map_link(stack: Stack) -> None:
    stack.connect()
    stack.customer_says("", type="location")
    stack.wait_deliveries()
    stack.drain()
    message = _only_message(stack)
    assert message["attachments"] == []
    assert message["text"].splitlines() == [
        "📍 Location",
        "Tour Eiffel",
        "Champ de Mars, 5 Av. Anatole France, 75007 Paris",
        "48.858370, 2.294481",
        "https://www.openstreetmap.org/?mlat=48.858370&mlon=2.294481"
        "#map=17/48.858370/2.294481",
    ]
    assert _files(stack) == []


def test_R51_shared_contact_becomes_text_with_name_and_number(stack: Stack) -> None:
    stack.connect()
    stack.customer_says("", type="contacts")
    stack.wait_deliveries()
    stack.drain()
    assert _only_message(stack)["text"] == "👤 Shared contact\nPaul Martin: +33 6 98 76 54 32"


def test_R51_R16_expired_presigned_url_publishes_the_placeholder_with_the_reason(
    stack: Stack,
) -> None:
    stack.connect()
    stack.aircall.post("/_sandbox/faults", json={
        "path_prefix": "/_sandbox/media/", "mode": "status", "status": 403})
    stack.customer_says("Voici la photo", type="image")
    stack.wait_deliveries()
    stack.drain()
    message = _only_message(stack)
    assert message["text"] == (
        "[photo received — the file could not be fetched from Aircall (it answered 403: "
        "the link expired or was refused)]\nVoici la photo")
    assert message["attachments"] == []
    assert _files(stack) == []


def test_R51_R16_expired_link_on_aircall_clock_is_the_same_placeholder(stack: Stack) -> None:
    """The sandbox's own expiry (its clock past `Expires`), not an injected status."""
    stack.connect()
    stack.customer_says("", type="document")
    stack.wait_deliveries()
    stack.aircall.post("/_sandbox/clock", json={"advance_seconds": 3600})
    stack.drain()
    assert _only_message(stack)["text"].startswith(
        "[document received — the file could not be fetched from Aircall (it answered 403")


@pytest.mark.slow(seconds=15)
def test_R51_R16_slow_download_gives_up_at_the_budget_and_later_messages_follow_in_order(
    stack: Stack,
) -> None:
    _with_budget(stack, 2.0)
    stack.connect()
    stack.aircall.post("/_sandbox/faults", json={
        "path_prefix": "/_sandbox/media/", "mode": "slow", "delay_seconds": 20})
    stack.customer_says("", type="image")
    stack.customer_says("did you get my photo?")
    stack.wait_deliveries()
    started = time.monotonic()
    stack.drain()
    held = time.monotonic() - started
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == [
        "[photo received — the file could not be fetched from Aircall]",
        "did you get my photo?",
    ]
    # Not held back behind the slow file for much longer than the budget (R51).
    assert held < 2.0 + 3.0, held


def test_R51_R16_hubspot_upload_5xx_retried_then_placeholder(stack: Stack) -> None:
    _with_budget(stack, 2.0)
    stack.connect()
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/files/", "mode": "status", "status": 503, "times": None})
    stack.customer_says("", type="image")
    stack.wait_deliveries()
    stack.drain()
    assert _only_message(stack)["text"] == (
        "[photo received — the file could not be stored in HubSpot]")
    faults = stack.hubspot.get("/_sandbox/faults").json()["faults"]
    assert faults[0]["hits"] >= 2  # retried within the budget before giving up


@pytest.mark.both_databases
def test_R51_a_passing_upload_5xx_is_retried_and_the_file_stored_once(stack: Stack) -> None:
    stack.connect()
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/files/", "mode": "status", "status": 503, "times": 1})
    stack.customer_says("", type="image")
    stack.wait_deliveries()
    stack.drain()
    assert _only_message(stack)["attachments"][0]["fileUsageType"] == "IMAGE"
    assert len(_files(stack)) == 1


@pytest.mark.both_databases
@fast_aircall_bucket
def test_R51_exactly_once_a_second_run_neither_uploads_nor_publishes_again(
    stack: Stack,
) -> None:
    """The file id is stored before the publish: running the message's work again (a
    worker that lost its lease) finds it and does nothing twice.

    Every entry goes back to pending, the install's read of the numbers too: on the
    workers' real Aircall bucket (60 / min, which the install's calls have just filled)
    that read waited its turn and held the second drain to its 30 s timeout; the fast
    bucket (tests/harness/pacing.py) lets it go at once. The pacing is not tested here."""
    from whatsapp_helpdesk.db.models import OutboxEntry

    stack.connect()
    stack.customer_says("", type="image")
    stack.wait_deliveries()
    stack.drain()
    with stack.services.sessions.begin() as session:
        message = session.scalars(select(Message)).one()
        assert message.media_state == "uploaded" and message.media_file_id
        for entry in session.scalars(select(OutboxEntry)):
            entry.state = "pending"
            entry.locked_until = None
    stack.drain()
    assert len(_files(stack)) == 1
    [ticket] = stack.tickets()
    assert len(ticket["messages"]) == 1


def test_R51_after_a_worker_outage_longer_than_the_budget_the_file_is_still_tried(
    stack: Stack,
) -> None:
    """The budget bounds retries; it does not make a worker that was down skip the file."""
    from datetime import timedelta

    stack.connect()
    stack.customer_says("", type="image")
    stack.wait_deliveries()
    with stack.services.sessions.begin() as session:
        message = session.scalars(select(Message)).one()
        message.stored_at = message.stored_at - timedelta(hours=1)
    stack.drain()
    assert _only_message(stack)["attachments"][0]["fileUsageType"] == "IMAGE"

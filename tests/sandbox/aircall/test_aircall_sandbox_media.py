"""The customer phone's media (R51): the shipped sample files behind the pre-signed URLs,
WhatsApp's location object and a vCard, and faults on the media links (the file store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aircall_sandbox_harness import Sandbox

SAMPLES = Path(__file__).resolve().parents[3] / "src/whatsapp_helpdesk/sandbox/aircall/samples"


def _download(aircall: Sandbox, kind: str):  # type: ignore[no-untyped-def]
    (media,) = aircall.customer_says("", type=kind)["media_details"]
    return aircall.http.get(media["presigned_url"])


@pytest.mark.parametrize(("kind", "sample", "magic"), [
    ("image", "photo.png", b"\x89PNG"), ("audio", "voice-note.ogg", b"OggS"),
    ("document", "document.pdf", b"%PDF"),
])
def test_R51_photo_voice_note_and_pdf_are_real_small_files(
    aircall: Sandbox, kind: str, sample: str, magic: bytes
) -> None:
    download = _download(aircall, kind)
    assert download.status_code == 200
    assert download.content == (SAMPLES / sample).read_bytes()
    assert download.content.startswith(magic)
    assert len(download.content) < 10_000  # small: shipped with the package


def test_R51_location_and_contact_card_carry_their_data(aircall: Sandbox) -> None:
    location = json.loads(_download(aircall, "location").content)
    assert {"latitude", "longitude", "name", "address"} <= set(location)
    card = _download(aircall, "contacts").content.decode()
    assert card.startswith("BEGIN:VCARD") and "TEL" in card


def test_R51_media_links_can_be_faulted_but_controls_cannot(aircall: Sandbox) -> None:
    response = aircall.http.post("/_sandbox/faults", json={
        "path_prefix": "/_sandbox/media/", "mode": "status", "status": 403, "times": 1})
    assert response.status_code == 201
    assert _download(aircall, "image").status_code == 403
    assert _download(aircall, "image").status_code == 200  # once
    aircall.http.post("/_sandbox/faults", json={
        "path_prefix": "/_sandbox/", "mode": "status", "status": 500, "times": 1})
    assert aircall.http.get("/_sandbox/faults").status_code == 200  # controls never faulted

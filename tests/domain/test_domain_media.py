"""R51's pure rules: usage types, WhatsApp's limits, location and contact text."""

from __future__ import annotations

import pytest

from whatsapp_helpdesk.domain import media


@pytest.mark.parametrize(("kind", "content_type", "usage"), [
    ("image", "image/jpeg", "IMAGE"),
    ("audio", "audio/ogg; codecs=opus", "VOICE_RECORDING"),
    ("audio", "audio/mpeg", "AUDIO"),
    ("voice", "audio/ogg", "VOICE_RECORDING"),
    ("sticker", "image/webp", "STICKER"),
    ("video", "video/mp4", "OTHER"),
    ("document", "application/pdf", "OTHER"),
])
def test_R51_file_usage_type(kind: str, content_type: str, usage: str) -> None:
    assert media.file_usage_type(kind, content_type) == usage


def test_R51_content_type_is_checked_against_whatsapp_types() -> None:
    assert media.type_refusal("image", "image/png") is None
    assert media.type_refusal("image", "text/html") == (
        "the file's type text/html is not one WhatsApp sends as a photo")
    assert media.type_refusal("document", "application/x-msdownload") is not None


def test_R51_size_limits_are_whatsapps() -> None:
    assert media.size_limit("image") == 5 * 1024 * 1024
    assert media.size_limit("document") == 100 * 1024 * 1024
    assert media.too_large("sticker") == (
        "the file is larger than WhatsApp's 500 KB limit for a sticker")


def test_R51_location_without_a_name_and_out_of_range() -> None:
    assert media.location_text(b'{"latitude": -33.8688, "longitude": 151.2093}') == (
        "📍 Location\n-33.868800, 151.209300\n"
        "https://www.openstreetmap.org/?mlat=-33.868800&mlon=151.209300"
        "#map=17/-33.868800/151.209300")
    with pytest.raises(ValueError):
        media.location_text(b'{"latitude": 91, "longitude": 0}')
    with pytest.raises(ValueError):
        media.location_text(b"not json")


def test_R51_several_contact_cards_folded_lines_and_n_only() -> None:
    cards = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana\r\n  Lopez\r\nTEL;TYPE=CELL:+34 600 000 001\r\n"
             b"TEL:+34 600 000 002\r\nEND:VCARD\r\nBEGIN:VCARD\r\nN:Durand;Luc;;;\r\n"
             b"END:VCARD\r\n")
    assert media.contacts_text(cards) == (
        "👤 Shared contacts\nAna Lopez: +34 600 000 001, +34 600 000 002\n"
        "Luc Durand: no number")
    with pytest.raises(ValueError):
        media.contacts_text(b"hello")


def test_R16_R51_placeholder_names_the_type_and_the_reason() -> None:
    assert media.placeholder_with_reason("image", media.FETCH_FAILED, "Voici") == (
        "[photo received — the file could not be fetched from Aircall]\nVoici")


def test_R51_file_names_lose_their_path() -> None:
    assert media.safe_file_name("../../etc/passwd", "x") == "passwd"
    assert media.safe_file_name("", "image-file") == "image-file"

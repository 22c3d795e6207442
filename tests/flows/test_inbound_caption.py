"""Issue 11 item 7 (R16): the caption of an image (or other media) is kept.

Aircall puts a WhatsApp media message's caption in `body`, next to `media_details`
(tests/fixtures/aircall/message_received__whatsapp_image.json, captured from the sandbox:
an image captioned "Voici la photo"). Only the placeholder used to be published; the
customer's words were lost.
"""

from __future__ import annotations

import json
from pathlib import Path

from whatsapp_helpdesk.aircall import MessageEvent, parse_envelope, parse_event
from whatsapp_helpdesk.inbound.ingest import inbound_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aircall"


def _message(name: str):  # type: ignore[no-untyped-def]
    event = parse_event(parse_envelope(json.loads((FIXTURES / f"{name}.json").read_text())))
    assert isinstance(event, MessageEvent)
    return event.message


def test_R16_issue11_image_caption_is_published_with_the_placeholder() -> None:
    message = _message("message_received__whatsapp_image")
    assert message.body == "Voici la photo" and message.media  # the fixture's shape
    assert inbound_text(message) == "[image received — not supported yet]\nVoici la photo"


def test_R16_media_without_caption_is_the_placeholder_alone() -> None:
    message = _message("message_received__whatsapp_location")
    assert inbound_text(message) == "[location received — not supported yet]"


def test_R16_text_message_is_its_text() -> None:
    message = _message("message_received__whatsapp_text")
    assert inbound_text(message) == "Bonjour, ma commande n'est pas arrivée."

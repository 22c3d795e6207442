"""Inbound media (R51): WhatsApp's limits, HubSpot's file usage types, and the text a
location or a shared contact becomes. Pure: no I/O.

WhatsApp's own limits, the one place they are stated. Source: Meta, WhatsApp Cloud API,
"Media" (supported media types and sizes),
https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media/
(reference aircall-whatsapp.md §B7): image JPEG/PNG 5 MB; video MP4/3GPP 16 MB; audio
AAC/AMR/MP3/M4A/OGG-Opus 16 MB; document (pdf, office, text…) 100 MB; sticker WebP 500 KB
(animated; 100 KB static).
"""

from __future__ import annotations

import json
import re
from typing import Any

MB = 1024 * 1024
KB = 1024

# kind → (most bytes accepted, content types accepted)
WHATSAPP_MEDIA_LIMITS: dict[str, tuple[int, frozenset[str]]] = {
    "image": (5 * MB, frozenset({"image/jpeg", "image/png"})),
    "video": (16 * MB, frozenset({"video/mp4", "video/3gpp"})),
    "audio": (16 * MB, frozenset({
        "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus",
    })),
    "voice": (16 * MB, frozenset({"audio/ogg", "audio/opus"})),
    "document": (100 * MB, frozenset({
        "application/pdf", "text/plain", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    })),
    "sticker": (500 * KB, frozenset({"image/webp"})),
}
# Locations and shared contacts are small structured data, turned into text: a bound
# against a runaway body, not a WhatsApp limit.
STRUCTURED_LIMIT = 256 * KB
STRUCTURED_KINDS = frozenset({"location", "contacts"})
FILE_KINDS = frozenset(WHATSAPP_MEDIA_LIMITS)

# HubSpot's `FILE` attachment `fileUsageType` (hubspot-custom-channels.md §4.3).
_USAGE = {"image": "IMAGE", "audio": "AUDIO", "voice": "VOICE_RECORDING", "sticker": "STICKER"}

# How the ticket names what the customer sent (R16's placeholder, R51's reasons).
_NAMES = {
    "image": "photo", "audio": "audio message", "voice": "voice note", "video": "video",
    "document": "document", "sticker": "sticker", "location": "location",
    "contacts": "contact card",
}

FETCH_FAILED = "the file could not be fetched from Aircall"
UPLOAD_FAILED = "the file could not be stored in HubSpot"


def file_usage_type(kind: str, content_type: str) -> str:
    """IMAGE, AUDIO, VOICE_RECORDING, STICKER, or OTHER for video and documents. WhatsApp
    records voice notes as OGG/Opus: an audio message of that type is a voice note."""
    if kind == "audio" and bare_type(content_type) in ("audio/ogg", "audio/opus"):
        return "VOICE_RECORDING"
    return _USAGE.get(kind, "OTHER")


def bare_type(content_type: str) -> str:
    """`image/png; charset=…` → `image/png`."""
    return content_type.split(";", 1)[0].strip().lower()


def size_limit(kind: str) -> int:
    if kind in STRUCTURED_KINDS:
        return STRUCTURED_LIMIT
    return WHATSAPP_MEDIA_LIMITS[kind][0]


def type_refusal(kind: str, content_type: str) -> str | None:
    """Why a file of this content type is not a WhatsApp `kind`, or None when it is."""
    if kind in STRUCTURED_KINDS:
        return None  # parsed, not stored: the parser says whether it makes sense
    accepted = WHATSAPP_MEDIA_LIMITS[kind][1]
    if bare_type(content_type) in accepted:
        return None
    return (f"the file's type {bare_type(content_type) or 'unknown'!s} is not one WhatsApp "
            f"sends as a {media_name(kind)}")


def too_large(kind: str) -> str:
    limit = size_limit(kind)
    shown = f"{limit // MB} MB" if limit >= MB else f"{limit // KB} KB"
    return f"the file is larger than WhatsApp's {shown} limit for a {media_name(kind)}"


def media_name(kind: str) -> str:
    return _NAMES.get(kind, f"{kind} message")


def placeholder_with_reason(kind: str, reason: str, caption: str = "") -> str:
    """R16's placeholder naming the type and why the file is missing (R51)."""
    text = f"[{media_name(kind)} received — {reason}]"
    return f"{text}\n{caption}" if caption else text


def text_with_caption(caption: str, file_name: str) -> str:
    """The message's text next to its file: the caption, else the file's name (HubSpot's
    message needs some text)."""
    return caption or file_name


def location_text(raw: bytes) -> str:
    """A shared location → coordinates, the place's name and address when given, a map link.
    Shape: WhatsApp's `location` object {latitude, longitude, name?, address?}."""
    data = _json_object(raw)
    try:
        latitude = float(data["latitude"])
        longitude = float(data["longitude"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("the location has no valid latitude and longitude") from exc
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError("the location's coordinates are out of range")
    lines = ["📍 Location"]
    name, address = _text(data.get("name")), _text(data.get("address"))
    if name:
        lines.append(name)
    if address:
        lines.append(address)
    lines.append(f"{latitude:.6f}, {longitude:.6f}")
    lines.append(
        "https://www.openstreetmap.org/?mlat="
        f"{latitude:.6f}&mlon={longitude:.6f}#map=17/{latitude:.6f}/{longitude:.6f}"
    )
    return "\n".join(lines)


def contacts_text(raw: bytes) -> str:
    """Shared contacts (vCard 3/4, one or several cards) → each name with its numbers."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    # vCard folds long lines with a leading space (RFC 6350 §3.2).
    text = re.sub(r"\n[ \t]", "", text)
    cards: list[tuple[str, list[str]]] = []
    name, phones = "", list[str]()
    inside = False
    for line in text.split("\n"):
        field, _, value = line.partition(":")
        prop = field.split(";", 1)[0].strip().upper()
        if prop == "BEGIN" and value.strip().upper() == "VCARD":
            inside, name, phones = True, "", []
        elif prop == "END" and inside:
            inside = False
            if name or phones:
                cards.append((name, phones))
        elif inside and prop == "FN":
            name = _unescape(value)
        elif inside and prop == "N" and not name:
            parts = [p for p in _unescape(value).split(";") if p]
            name = " ".join(reversed(parts[:2]))
        elif inside and prop == "TEL":
            number = value.strip().removeprefix("tel:")
            if number:
                phones.append(number)
    if not cards:
        raise ValueError("the contact card has no name and no number")
    lines = ["👤 Shared contact" + ("s" if len(cards) > 1 else "")]
    for card_name, card_phones in cards:
        lines.append(f"{card_name or 'No name'}: {', '.join(card_phones) or 'no number'}")
    return "\n".join(lines)


def structured_text(kind: str, raw: bytes) -> str:
    return location_text(raw) if kind == "location" else contacts_text(raw)


def safe_file_name(name: str | None, fallback: str) -> str:
    """A file name fit for HubSpot's File Manager: no path, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip().lstrip(".")
    return (base or fallback)[:200]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError("the location is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("the location is not a JSON object")
    return data


def _text(value: Any) -> str:
    return value.strip()[:300] if isinstance(value, str) else ""


def _unescape(value: str) -> str:
    return (value.replace("\\,", ",").replace("\\;", ";").replace("\\n", " ")
            .replace("\\\\", "\\").strip())

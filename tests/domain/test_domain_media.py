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


# --- Tables: each rule's edges (they also keep mutation testing honest) -------------------

MAP = "https://www.openstreetmap.org/?mlat={0}&mlon={1}#map=17/{0}/{1}"


@pytest.mark.parametrize(("kind", "content_type", "usage"), [
    pytest.param("audio", "audio/opus", "VOICE_RECORDING", id="opus-audio-is-a-voice-note"),
    pytest.param("audio", "Audio/OGG", "VOICE_RECORDING", id="type-in-any-case"),
    pytest.param("audio", "audio/aac", "AUDIO", id="other-audio-is-audio"),
    pytest.param("video", "audio/ogg", "OTHER", id="only-audio-becomes-a-voice-note"),
    pytest.param("voice", "audio/mpeg", "VOICE_RECORDING", id="voice-whatever-its-type"),
    pytest.param("poll", "", "OTHER", id="unknown-kind-is-other"),
])
def test_R51_usage_type_edges(kind: str, content_type: str, usage: str) -> None:
    assert media.file_usage_type(kind, content_type) == usage


@pytest.mark.parametrize(("content_type", "bare"), [
    pytest.param("image/png", "image/png", id="bare-already"),
    pytest.param(" IMAGE/PNG ; charset=x; q=1", "image/png", id="parameters-case-spaces"),
    pytest.param("", "", id="empty"),
])
def test_R51_bare_content_type(content_type: str, bare: str) -> None:
    assert media.bare_type(content_type) == bare


@pytest.mark.parametrize(("kind", "content_type", "refusal"), [
    pytest.param("image", "image/jpeg; q=1", None, id="accepted-with-parameters"),
    pytest.param("location", "text/html", None, id="structured-kinds-are-parsed-not-typed"),
    pytest.param("contacts", "", None, id="contacts-parsed-not-typed"),
    pytest.param("video", "", "the file's type unknown is not one WhatsApp sends as a video",
                 id="no-type-is-unknown"),
    pytest.param("sticker", "image/png",
                 "the file's type image/png is not one WhatsApp sends as a sticker",
                 id="sticker-must-be-webp"),
])
def test_R51_type_refusal(kind: str, content_type: str, refusal: str | None) -> None:
    assert media.type_refusal(kind, content_type) == refusal


@pytest.mark.parametrize(("kind", "limit", "words"), [
    pytest.param("image", 5 * 1024 * 1024, "5 MB limit for a photo", id="image-5MB"),
    pytest.param("video", 16 * 1024 * 1024, "16 MB limit for a video", id="video-16MB"),
    pytest.param("document", 100 * 1024 * 1024, "100 MB limit for a document",
                 id="document-100MB"),
    pytest.param("sticker", 500 * 1024, "500 KB limit for a sticker", id="sticker-500KB"),
    pytest.param("location", 256 * 1024, "256 KB limit for a location", id="location-256KB"),
    pytest.param("contacts", 256 * 1024, "256 KB limit for a contact card",
                 id="contacts-256KB"),
])
def test_R51_size_limit_and_its_words(kind: str, limit: int, words: str) -> None:
    assert media.size_limit(kind) == limit
    assert media.too_large(kind) == f"the file is larger than WhatsApp's {words}"


def test_R51_a_limit_of_exactly_one_megabyte_is_shown_in_MB(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(media.WHATSAPP_MEDIA_LIMITS, "image", (1024 * 1024, frozenset()))
    assert media.too_large("image").endswith("WhatsApp's 1 MB limit for a photo")


@pytest.mark.parametrize(("kind", "name"), [
    ("image", "photo"), ("audio", "audio message"), ("voice", "voice note"), ("video", "video"),
    ("document", "document"), ("sticker", "sticker"), ("location", "location"),
    ("contacts", "contact card"), ("poll", "poll message"),
])
def test_R16_R51_media_names(kind: str, name: str) -> None:
    assert media.media_name(kind) == name


@pytest.mark.parametrize(("caption", "shown"), [
    pytest.param("", "[voice note received — the file could not be stored in HubSpot]",
                 id="no-caption"),
    pytest.param("Écoute", "[voice note received — the file could not be stored in HubSpot]"
                 "\nÉcoute", id="caption-on-its-own-line"),
])
def test_R16_R51_placeholder_with_reason(caption: str, shown: str) -> None:
    assert media.placeholder_with_reason("voice", media.UPLOAD_FAILED, caption) == shown


def test_R16_R51_placeholder_without_caption_argument() -> None:
    assert media.placeholder_with_reason("image", media.FETCH_FAILED) == (
        "[photo received — the file could not be fetched from Aircall]")


@pytest.mark.parametrize(("caption", "file_name", "text"), [
    pytest.param("Voici", "a.pdf", "Voici", id="caption-wins"),
    pytest.param("", "a.pdf", "a.pdf", id="else-the-file-name"),
])
def test_R51_text_next_to_the_file(caption: str, file_name: str, text: str) -> None:
    assert media.text_with_caption(caption, file_name) == text


@pytest.mark.parametrize(("raw", "text"), [
    pytest.param(
        b'{"latitude": 48.8584, "longitude": 2.2945, "name": " Tour Eiffel ",'
        b' "address": "Champ de Mars, Paris"}',
        "📍 Location\nTour Eiffel\nChamp de Mars, Paris\n48.858400, 2.294500\n"
        + MAP.format("48.858400", "2.294500"),
        id="name-and-address-on-their-own-lines"),
    pytest.param(
        b'{"latitude": "48.5", "longitude": "2", "address": "Paris"}',
        "📍 Location\nParis\n48.500000, 2.000000\n" + MAP.format("48.500000", "2.000000"),
        id="numbers-as-strings-address-only"),
    pytest.param(
        b'{"latitude": 1, "longitude": 2, "name": "Home", "address": 7}',
        "📍 Location\nHome\n1.000000, 2.000000\n" + MAP.format("1.000000", "2.000000"),
        id="name-only-non-text-address-ignored"),
    pytest.param(
        b'{"latitude": 90, "longitude": 180}',
        "📍 Location\n90.000000, 180.000000\n" + MAP.format("90.000000", "180.000000"),
        id="north-pole-date-line-upper-edges"),
    pytest.param(
        b'{"latitude": -90, "longitude": -180}',
        "📍 Location\n-90.000000, -180.000000\n" + MAP.format("-90.000000", "-180.000000"),
        id="south-pole-date-line-lower-edges"),
])
def test_R51_location_text(raw: bytes, text: str) -> None:
    assert media.location_text(raw) == text


def test_R51_location_name_is_cut_to_300_characters() -> None:
    raw = b'{"latitude": 0, "longitude": 0, "name": "' + b"n" * 301 + b'"}'
    assert media.location_text(raw).split("\n")[1] == "n" * 300


NO_COORDINATES = r"^the location has no valid latitude and longitude$"
OUT_OF_RANGE = r"^the location's coordinates are out of range$"


@pytest.mark.parametrize(("raw", "why"), [
    pytest.param(b"not json", r"^the location is not JSON$", id="not-json"),
    pytest.param(b"[1, 2]", r"^the location is not a JSON object$", id="not-an-object"),
    pytest.param(b'{"latitude": 1}', NO_COORDINATES, id="no-longitude"),
    pytest.param(b'{"longitude": 1}', NO_COORDINATES, id="no-latitude"),
    pytest.param(b'{"latitude": "north", "longitude": 1}', NO_COORDINATES,
                 id="latitude-not-a-number"),
    pytest.param(b'{"latitude": null, "longitude": 1}', NO_COORDINATES,
                 id="latitude-null"),
    pytest.param(b'{"latitude": 90.1, "longitude": 0}', OUT_OF_RANGE,
                 id="latitude-over-90"),
    pytest.param(b'{"latitude": -90.1, "longitude": 0}', OUT_OF_RANGE,
                 id="latitude-under-minus-90"),
    pytest.param(b'{"latitude": 0, "longitude": 180.1}', OUT_OF_RANGE,
                 id="longitude-over-180"),
    pytest.param(b'{"latitude": 0, "longitude": -180.1}', OUT_OF_RANGE,
                 id="longitude-under-minus-180"),
])
def test_R51_location_that_makes_no_sense_is_refused_with_a_reason(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        media.location_text(raw)


def _vcard(*lines: str) -> bytes:
    return "\r\n".join(("BEGIN:VCARD", "VERSION:4.0", *lines, "END:VCARD", "")).encode(
        "latin-1" if "\xff" in "".join(lines) else "utf-8")


@pytest.mark.parametrize(("raw", "text"), [
    pytest.param(_vcard("FN:Ana Lopez", "TEL:+34 600 000 001"),
                 "👤 Shared contact\nAna Lopez: +34 600 000 001", id="one-card"),
    pytest.param(_vcard("fn:Ana", "tel;type=cell:tel:+34600000001"),
                 "👤 Shared contact\nAna: +34600000001", id="lowercase-props-tel-uri"),
    pytest.param(b"begin:vcard\nFN:Ana\nend:vcard\n", "👤 Shared contact\nAna: no number",
                 id="lowercase-begin-end-unix-lines"),
    pytest.param(_vcard(r"FN:Lopez\, Ana \\ Co\; Ltd\nSales"),
                 "👤 Shared contact\nLopez, Ana \\ Co; Ltd Sales: no number",
                 id="escapes-undone"),
    pytest.param(_vcard("N:Lopez;Ana;Maria;;", "FN:Ana L."),
                 "👤 Shared contact\nAna L.: no number", id="fn-after-n-wins"),
    pytest.param(_vcard("FN:Ana L.", "N:Lopez;Ana;;;"),
                 "👤 Shared contact\nAna L.: no number", id="n-does-not-override-fn"),
    pytest.param(_vcard("N:;Ana;;;"), "👤 Shared contact\nAna: no number",
                 id="n-with-given-name-only"),
    pytest.param(_vcard("N:Lopez;Ana;Maria;Dr;"), "👤 Shared contact\nAna Lopez: no number",
                 id="n-gives-given-and-family-names-only"),
    pytest.param(_vcard("TEL:+1 555 0100", "TEL:"),
                 "👤 Shared contact\nNo name: +1 555 0100", id="no-name-empty-tel-skipped"),
    pytest.param(_vcard("FN:Ana") + _vcard() + _vcard("FN:Luc"),
                 "👤 Shared contacts\nAna: no number\nLuc: no number",
                 id="empty-card-between-is-dropped"),
    pytest.param(b"FN:Outside\r\n" + _vcard("FN:Inside") + b"TEL:+1 555 0199\r\n",
                 "👤 Shared contact\nInside: no number", id="lines-outside-cards-ignored"),
    pytest.param(b"BEGIN:VCARD\r\nFN:Ana\r\nEND:VCARD\r\nEND:VCARD\r\n",
                 "👤 Shared contact\nAna: no number", id="stray-end-ignored"),
    pytest.param(b"BEGIN:VCARD\r\nFN:Ana\r\nBEGIN:VCARD\r\nFN:Luc\r\nEND:VCARD\r\n",
                 "👤 Shared contact\nLuc: no number", id="unclosed-card-is-restarted"),
    pytest.param(_vcard("FN:Ana: support", "TEL;TYPE=CELL;PREF=1:+34 600"),
                 "👤 Shared contact\nAna: support: +34 600", id="colon-in-value-two-params"),
    pytest.param(_vcard("TEL:tel:+34 600"), "👤 Shared contact\nNo name: +34 600",
                 id="tel-uri-without-params"),
    pytest.param(_vcard("FN:Ana \xff"), "👤 Shared contact\nAna \ufffd: no number",
                 id="bytes-that-are-not-utf8-are-replaced"),
    pytest.param(b"BEGIN:VCARD\nFN:Ana\n\t Lopez\nEND:VCARD\n",
                 "👤 Shared contact\nAna Lopez: no number", id="tab-folded-line"),
])
def test_R51_contacts_text(raw: bytes, text: str) -> None:
    assert media.contacts_text(raw) == text


@pytest.mark.parametrize("raw", [
    pytest.param(b"", id="empty"),
    pytest.param(_vcard(), id="card-without-name-or-number"),
    pytest.param(b"BEGIN:VCARD\r\nFN:Ana\r\n", id="card-never-closed"),
    pytest.param(b"BEGIN:VCALENDAR\r\nFN:Ana\r\nEND:VCALENDAR\r\n", id="not-a-vcard"),
])
def test_R51_contact_card_with_nothing_to_show_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"^the contact card has no name and no number$"):
        media.contacts_text(raw)


@pytest.mark.parametrize(("kind", "raw", "starts"), [
    pytest.param("location", b'{"latitude": 1, "longitude": 2}', "📍 Location",
                 id="location"),
    pytest.param("contacts", _vcard("FN:Ana"), "👤 Shared contact", id="contacts"),
])
def test_R51_structured_text_by_kind(kind: str, raw: bytes, starts: str) -> None:
    assert media.structured_text(kind, raw).startswith(starts)


@pytest.mark.parametrize(("name", "safe"), [
    pytest.param("report.pdf", "report.pdf", id="plain-name-kept"),
    pytest.param("C:\\Users\\ana\\report.pdf", "report.pdf", id="windows-path"),
    pytest.param("a/b/c.txt", "c.txt", id="unix-path"),
    pytest.param("re\x00po\x1frt\x7f.pdf", "report.pdf", id="control-characters-removed"),
    pytest.param("  ..hidden.txt ", "hidden.txt", id="no-leading-dots-or-spaces"),
    pytest.param("..Xmas.pdf", "Xmas.pdf", id="only-dots-are-stripped"),
    pytest.param("...", "fallback", id="only-dots-falls-back"),
    pytest.param(None, "fallback", id="no-name"),
    pytest.param("dir/", "fallback", id="path-without-a-name"),
    pytest.param("x" * 250, "x" * 200, id="cut-to-200"),
])
def test_R51_safe_file_name(name: str | None, safe: str) -> None:
    assert media.safe_file_name(name, "fallback") == safe


# Equivalent mutants (mutation testing, README), each unable to change an answer:
# - `split(";", 1)[0]` / `rsplit("/", 1)[-1]` with another or no maxsplit (bare_type,
#   contacts_text's property, safe_file_name): the part kept is the same.
# - `decode("UTF-8", …)`: codec names are case-insensitive.
# - contacts_text's initial `name = "XXXX"` and `inside = None`: BEGIN resets the name before
#   it is read, and None is as false as False.
# - `[\x00-\x1F\x7F]`: hex escapes in a regex are case-insensitive.

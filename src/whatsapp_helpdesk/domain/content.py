"""What a message may carry (R16, R25): plain text both ways, a placeholder otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

# WhatsApp's text limit (reference §B3); Aircall caps `text` at the same length.
WHATSAPP_TEXT_LIMIT = 4096

_PLACEHOLDER_NAMES = {
    "image": "image",
    "audio": "audio message",
    "voice": "voice message",
    "video": "video",
    "document": "document",
    "file": "file",
    "sticker": "sticker",
    "location": "location",
    "contacts": "contact card",
    "interactive": "interactive reply",
    "reaction": "reaction",
}


def inbound_placeholder(kind: str) -> str:
    """The text shown in the ticket for a message we cannot carry (R16)."""
    name = _PLACEHOLDER_NAMES.get(kind, f"{kind} message" if kind else "message")
    return f"[{name} received — not supported yet]"


def inbound_text(kind: str | None, body: str | None, *, has_media: bool) -> str:
    """What the ticket shows for a customer's message of Aircall `type` `kind`: the text;
    for media, the placeholder and then the caption, which Aircall puts in `body` (issue 11
    item 7: the customer's words are never lost)."""
    kind = (kind or "text").lower()
    text = (body or "").strip()
    if kind == "text" and text:
        return text
    placeholder = inbound_placeholder(kind if kind != "text" else "media" if has_media else "")
    return f"{placeholder}\n{text}" if text else placeholder


@dataclass(frozen=True)
class PlainText:
    text: str


@dataclass(frozen=True)
class Refused:
    reason: str


ReplyCheck = PlainText | Refused


def check_reply(*, text: str | None, rich_text: str | None, attachment_count: int) -> ReplyCheck:
    """Turn an agent's reply into WhatsApp text, or say in words why it cannot be sent."""
    if attachment_count:
        return Refused(
            "Attachments can't be sent on this WhatsApp channel: only plain text is "
            "supported. Remove the attachment and send the text alone."
        )
    if rich_text and rich_text.strip():
        converted = rich_text_to_whatsapp(rich_text)
        if isinstance(converted, Refused):
            return converted
        body = converted.text
    else:
        body = (text or "").strip()
    if not body:
        return Refused("The reply is empty: WhatsApp needs some text to send.")
    if len(body) > WHATSAPP_TEXT_LIMIT:
        return Refused(
            f"The reply is {len(body)} characters long; WhatsApp accepts at most "
            f"{WHATSAPP_TEXT_LIMIT}. Shorten it or split it into several replies."
        )
    return PlainText(body)


# Tags that carry no meaning of their own: their text is kept.
_TRANSPARENT = {"div", "span", "p", "br", "b", "strong", "i", "em", "a", "u", "s",
                "strike", "del", "ul", "ol", "li", "blockquote", "code", "pre", "html",
                "body", "font", "small", "sup", "sub", "h1", "h2", "h3", "h4", "h5", "h6"}
# Tags whose content cannot become text.
_REFUSED = {"img": "an inline image", "video": "a video", "audio": "an audio clip",
            "table": "a table", "iframe": "embedded content", "object": "embedded content",
            "embed": "embedded content", "svg": "a drawing", "canvas": "a drawing"}
# WhatsApp's own emphasis markup.
_MARKERS = {"b": "*", "strong": "*", "i": "_", "em": "_", "s": "~", "strike": "~", "del": "~"}
# Tags that start and end a line of their own (HubSpot's editor writes one <p> per line).
_BLOCKS = {"p", "div", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
# HTML's collapsible whitespace: not U+00A0, which the composer writes for a typed double space.
_HTML_SPACES = re.compile(r"[ \t\n\r\f]+")


class _WhatsAppText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.refused: str | None = None
        self._links: list[str | None] = []
        self._link_text_start: list[int] = []
        self._list_kind: list[str] = []
        self._ol_counter: list[int] = []
        self._open_markers: list[tuple[str, int]] = []  # (marker, index in `out`)
        self._pre_depth = 0
        self._line_has_words = False  # a list's bullet is not a word

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _REFUSED:
            self.refused = self.refused or _REFUSED[tag]
        elif tag in _MARKERS:
            self._open_markers.append((_MARKERS[tag], len(self.out)))
        elif tag == "br":
            self._emit("\n")
        elif tag in _BLOCKS:
            self._block_break()
            self._pre_depth += tag == "pre"
        elif tag in ("ul", "ol"):
            self._block_break()
            self._list_kind.append(tag)
            self._ol_counter.append(0)
        elif tag == "li":
            self._line_break()
            indent = "  " * (len(self._list_kind) - 1)
            if self._list_kind and self._list_kind[-1] == "ol":
                self._ol_counter[-1] += 1
                self.out.append(f"{indent}{self._ol_counter[-1]}. ")
            else:
                self.out.append(f"{indent}- ")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))
            self._link_text_start.append(len("".join(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _MARKERS:
            self._close_marker(_MARKERS[tag])
        elif tag in _BLOCKS:
            self._block_break()
            self._pre_depth -= tag == "pre" and self._pre_depth > 0
        elif tag in ("ul", "ol") and self._list_kind:
            self._list_kind.pop()
            self._ol_counter.pop()
            self._block_break()
        elif tag == "a" and self._links:
            href = self._links.pop()
            start = self._link_text_start.pop()
            label = "".join(self.out)[start:].strip()
            if href and href.startswith(("http://", "https://", "mailto:", "tel:")) and (
                label != href
            ):
                self._emit(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self._pre_depth:
            self._emit(data.replace("\xa0", " "))
            return
        text = _HTML_SPACES.sub(" ", data)
        if not self._line_has_words:
            # Source indentation and the newlines between blocks are not the agent's text.
            text = text.lstrip(" ")
        if text:
            self._emit(text.replace("\xa0", " "))

    def _close_marker(self, marker: str) -> None:
        """Wrap the text since the opening tag in `marker`, outside its edge spaces:
        WhatsApp shows "*bold *" with literal asterisks, and "**" for an empty <b></b>."""
        if not self._open_markers or self._open_markers[-1][0] != marker:
            return  # a stray closing tag
        _, start = self._open_markers.pop()
        segment = "".join(self.out[start:])
        core = segment.strip()
        leading = segment[: len(segment) - len(segment.lstrip())]
        trailing = segment[len(segment.rstrip()) :]
        self.out[start:] = [leading + (f"{marker}{core}{marker}" if core else "") + trailing]

    def _emit(self, text: str) -> None:
        """Append `text`, keeping track of whether the current line holds any words yet."""
        self.out.append(text)
        last_line = text.rsplit("\n", 1)[-1]
        if "\n" in text:
            self._line_has_words = bool(last_line.strip())
        elif last_line.strip():
            self._line_has_words = True

    def _line_break(self) -> None:
        """End the current line unless it is still empty: a block inside a list item (the
        editor's <li><p>…</p></li>) stays on the bullet's line."""
        if self._line_has_words:
            self._emit("\n")

    def _block_break(self) -> None:
        self._line_break()


def rich_text_to_whatsapp(rich_text: str) -> ReplyCheck:
    """Simple rich text (bold, italic, links, lists, line breaks) → WhatsApp markup."""
    parser = _WhatsAppText()
    parser.feed(rich_text)
    parser.close()
    if parser.refused:
        return Refused(
            f"The reply contains {parser.refused}, which WhatsApp can't show as plain "
            "text. Remove it and send text only."
        )
    # The parser already decoded entities (convert_charrefs): decoding again would turn
    # an agent's literal "&lt;" into "<".
    text = "".join(parser.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return PlainText(text.strip())

"""What a message may carry: a placeholder naming what we cannot carry inbound (R16);
plain text outbound, simple rich text converted to WhatsApp markup, the rest refused with
a reason an agent understands (R25)."""

from __future__ import annotations

import pytest

from whatsapp_helpdesk.domain.content import (
    WHATSAPP_TEXT_LIMIT,
    PlainText,
    Refused,
    ReplyCheck,
    check_reply,
    inbound_placeholder,
)


def _rich(html: str) -> ReplyCheck:
    return check_reply(text=None, rich_text=html, attachment_count=0)


def _plain(text: str) -> ReplyCheck:
    return check_reply(text=text, rich_text=None, attachment_count=0)


# --- R16: inbound placeholders ------------------------------------------------------------


def test_R16_image_placeholder_is_the_specified_text() -> None:
    assert inbound_placeholder("image") == "[image received — not supported yet]"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("audio", "audio message"),
        ("voice", "voice message"),
        ("video", "video"),
        ("document", "document"),
        ("file", "file"),
        ("sticker", "sticker"),
        ("location", "location"),
        ("contacts", "contact card"),
        ("interactive", "interactive reply"),
        ("reaction", "reaction"),
    ],
)
def test_R16_placeholder_names_the_type(kind: str, name: str) -> None:
    assert inbound_placeholder(kind) == f"[{name} received — not supported yet]"


def test_R16_unknown_type_is_still_named_not_lost() -> None:
    assert inbound_placeholder("poll") == "[poll message received — not supported yet]"


def test_R16_missing_type_still_gives_a_placeholder() -> None:
    assert inbound_placeholder("") == "[message received — not supported yet]"


# --- R25: refusals ------------------------------------------------------------------------


def test_R25_reply_with_an_attachment_is_refused_even_with_text() -> None:
    result = check_reply(text="Here is the invoice", rich_text=None, attachment_count=1)

    assert isinstance(result, Refused)
    assert "Attachments can't be sent" in result.reason


@pytest.mark.parametrize(
    ("html", "what"),
    [
        pytest.param('<p>Look: <img src="https://x/y.png"></p>', "an inline image", id="img"),
        pytest.param("<table><tr><td>1</td><td>2</td></tr></table>", "a table", id="table"),
        pytest.param('<iframe src="https://x"></iframe>', "embedded content", id="iframe"),
        pytest.param("<video src='a.mp4'></video>", "a video", id="video"),
    ],
)
def test_R25_rich_content_that_is_not_text_is_refused_and_named(html: str, what: str) -> None:
    result = _rich(html)

    assert isinstance(result, Refused)
    assert what in result.reason


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_R25_empty_reply_is_refused(text: str) -> None:
    result = _plain(text)

    assert isinstance(result, Refused)
    assert "empty" in result.reason


def test_R25_rich_text_with_no_words_is_refused_as_empty() -> None:
    assert isinstance(_rich("<p> </p><b></b>"), Refused)


def test_R25_no_text_at_all_is_refused() -> None:
    assert isinstance(check_reply(text=None, rich_text=None, attachment_count=0), Refused)


def test_R25_text_at_the_whatsapp_limit_is_accepted() -> None:
    text = "x" * WHATSAPP_TEXT_LIMIT

    assert _plain(text) == PlainText(text)


def test_R25_text_over_the_whatsapp_limit_is_refused_with_the_numbers() -> None:
    result = _plain("x" * (WHATSAPP_TEXT_LIMIT + 1))

    assert isinstance(result, Refused)
    assert "4097" in result.reason
    assert "4096" in result.reason


def test_R25_rich_text_over_the_limit_once_converted_is_refused() -> None:
    assert isinstance(_rich(f"<p>{'y' * (WHATSAPP_TEXT_LIMIT + 1)}</p>"), Refused)


def test_whatsapp_text_limit_is_4096() -> None:
    assert WHATSAPP_TEXT_LIMIT == 4096


# --- R25: conversions ---------------------------------------------------------------------


def test_R25_plain_text_is_sent_as_typed_without_edge_whitespace() -> None:
    assert _plain("  Hello *there*  ") == PlainText("Hello *there*")


def test_R25_plain_text_is_used_when_rich_text_is_blank() -> None:
    assert check_reply(text="Hello", rich_text="  ", attachment_count=0) == PlainText("Hello")


def test_R25_rich_text_wins_over_its_plain_twin() -> None:
    result = check_reply(text="Hello world", rich_text="<p>Hello <b>world</b></p>",
                         attachment_count=0)

    assert result == PlainText("Hello *world*")


@pytest.mark.parametrize(
    ("html", "whatsapp"),
    [
        pytest.param("<p>Hello <b>world</b></p>", "Hello *world*", id="b"),
        pytest.param("<strong>Bold</strong>", "*Bold*", id="strong"),
        pytest.param("<p><i>so</i> <em>very</em></p>", "_so_ _very_", id="italic"),
        pytest.param("<s>old</s> new", "~old~ new", id="strikethrough"),
        pytest.param("<b><i>both</i></b>", "*_both_*", id="nested"),
        pytest.param("<b>bold </b>text", "*bold* text", id="marker-outside-trailing-space"),
        pytest.param("a <b> b</b>", "a  *b*", id="marker-outside-leading-space"),
        pytest.param("<b>x</b><b></b>y", "*x*y", id="empty-bold-vanishes"),
        pytest.param("<b>never closed", "never closed", id="unclosed-tag-leaves-no-marker"),
    ],
)
def test_R25_bold_italic_strike_become_whatsapp_markup(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


def test_R25_link_keeps_its_label_and_shows_its_address() -> None:
    html = '<p>See <a href="https://example.com/help">our help page</a>.</p>'

    assert _rich(html) == PlainText("See our help page (https://example.com/help).")


def test_R25_link_whose_label_is_its_address_is_not_repeated() -> None:
    html = '<a href="https://example.com">https://example.com</a>'

    assert _rich(html) == PlainText("https://example.com")


def test_R25_link_to_a_script_shows_only_its_label() -> None:
    assert _rich('<a href="javascript:alert(1)">click</a>') == PlainText("click")


def test_R25_bulleted_list_becomes_dashes() -> None:
    assert _rich("<p>Steps:</p><ul><li>one</li><li>two</li></ul>") == PlainText(
        "Steps:\n- one\n- two"
    )


def test_R25_numbered_list_becomes_numbers() -> None:
    assert _rich("<ol><li>first</li><li>second</li><li>third</li></ol>") == PlainText(
        "1. first\n2. second\n3. third"
    )


def test_R25_pretty_printed_list_has_no_stray_spaces() -> None:
    html = "<ul>\n  <li>one</li>\n  <li>two</li>\n</ul>"

    assert _rich(html) == PlainText("- one\n- two")


def test_R25_line_breaks_and_paragraphs_become_new_lines() -> None:
    assert _rich("line one<br>line two") == PlainText("line one\nline two")
    assert _rich("<p>first</p><p>second</p>") == PlainText("first\nsecond")
    assert _rich("<div>Hi<br/>there</div>") == PlainText("Hi\nthere")


def test_R25_runs_of_blank_lines_collapse_to_one() -> None:
    assert _rich("<p>a<br><br><br><br>b</p>") == PlainText("a\n\nb")


def test_R25_entities_are_decoded_once() -> None:
    assert _rich("<p>Tom &amp; Jerry &lt;3</p>") == PlainText("Tom & Jerry <3")
    # Regression: entities were decoded twice, so an agent's literal "&lt;" became "<".
    assert _rich("<p>type &amp;lt;br&amp;gt;</p>") == PlainText("type &lt;br&gt;")


def test_R25_non_breaking_spaces_become_plain_spaces() -> None:
    assert _rich("<p>Salut&nbsp;toi</p>") == PlainText("Salut toi")


def test_R25_literal_markup_characters_typed_by_the_agent_are_kept() -> None:
    # Regression: a clean-up of "empty markers" used to delete every "**", "__" and "~~"
    # of the text, turning "__init__" into "init".
    assert _rich("<p>call __init__ or a**b ~~x~~</p>") == PlainText(
        "call __init__ or a**b ~~x~~"
    )

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
    inbound_text,
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


PHOTO = "[image received — not supported yet]"


@pytest.mark.parametrize(("kind", "body", "has_media", "shown"), [
    pytest.param("text", "Bonjour", False, "Bonjour", id="text-is-its-text"),
    pytest.param(None, "Bonjour", False, "Bonjour", id="no-type-is-text"),
    pytest.param("TEXT", "  Bonjour \n", False, "Bonjour", id="type-any-case-text-trimmed"),
    pytest.param("image", "Voici la photo", True, f"{PHOTO}\nVoici la photo",
                 id="media-caption-after-the-placeholder"),
    pytest.param("Image", None, True, PHOTO, id="media-without-caption-is-the-placeholder"),
    pytest.param("image", "   ", True, PHOTO, id="blank-caption-is-no-caption"),
    pytest.param("text", "", True, "[media message received — not supported yet]",
                 id="text-type-with-media-and-no-words-names-media"),
    pytest.param("text", None, False, "[message received — not supported yet]",
                 id="empty-text-message-still-shows-something"),
])
def test_R16_what_the_ticket_shows_for_an_inbound_message(
    kind: str | None, body: str | None, has_media: bool, shown: str
) -> None:
    assert inbound_text(kind, body, has_media=has_media) == shown


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


# --- R25: the agent's lines and paragraphs, from the help desk composer's real HTML ---------

# HubSpot's rich-text editor wraps a message in one top-level <div> and writes each line the
# agent typed as a <p style="margin:0;">, an empty line as <p …><br></p> (the shape HubSpot's
# APIs return for notes and messages written in its editor).
_TOP = '<div style="" dir="auto" data-top-level="true">'
_LINE = '<p style="margin:0;">'


@pytest.mark.parametrize(
    ("html", "whatsapp"),
    [
        pytest.param(
            f"{_TOP}{_LINE}Hello Anna,</p>{_LINE}<br></p>{_LINE}Your parcel left today.</p>"
            f"{_LINE}Tracking: 12345</p>{_LINE}<br></p>{_LINE}Best regards,</p>"
            f"{_LINE}Sam</p></div>",
            "Hello Anna,\n\nYour parcel left today.\nTracking: 12345\n\nBest regards,\nSam",
            id="hubspot-editor-lines-and-blank-lines",
        ),
        pytest.param(
            f"{_TOP}\n  {_LINE}one</p>\n  {_LINE}two</p>\n  {_LINE}three</p>\n</div>",
            "one\ntwo\nthree",
            id="serialised-with-newlines-between-blocks-adds-no-blank-line",
        ),
        pytest.param(
            "<div>Hello</div><div><br></div><div>How can I help?</div>",
            "Hello\n\nHow can I help?",
            id="contenteditable-div-lines",
        ),
        pytest.param(
            "<div>line one</div>\n<div>line two</div>\n<div>line three</div>",
            "line one\nline two\nline three",
            id="div-per-line-pretty-printed",
        ),
        pytest.param(
            "<div>first<br></div><div>second</div>",
            "first\nsecond",
            id="trailing-br-in-a-block-is-no-extra-line",
        ),
        pytest.param(
            "first<br>\n   second<br>\n   third",
            "first\nsecond\nthird",
            id="br-then-source-indentation",
        ),
        pytest.param(
            f"{_TOP}{_LINE}Steps:</p><ul><li>{_LINE}open the app</p></li>"
            f"<li>{_LINE}tap <strong>Orders</strong></p></li></ul>{_LINE}Thanks</p></div>",
            "Steps:\n- open the app\n- tap *Orders*\nThanks",
            id="editor-list-items-hold-paragraphs",
        ),
        pytest.param(
            "<ol><li>pack</li><li>ship<ul><li>by air</li><li>by sea</li></ul></li>"
            "<li>deliver</li></ol>",
            "1. pack\n2. ship\n  - by air\n  - by sea\n3. deliver",
            id="nested-list-is-indented",
        ),
        pytest.param(
            "<pre>ref:  A-12\n  qty: 3</pre>",
            "ref:  A-12\n  qty: 3",
            id="preformatted-keeps-its-spaces-and-lines",
        ),
        pytest.param(
            f"{_TOP}{_LINE}Price:&nbsp;&nbsp;5&nbsp;&euro; &mdash; it&rsquo;s &quot;final&quot;"
            "</p></div>",
            "Price:  5 € — it’s \"final\"",
            id="entities-decoded-and-typed-double-space-kept",
        ),
    ],
)
def test_R25_composer_html_keeps_the_agents_lines(html: str, whatsapp: str) -> None:
    """Issue 15 item 1: a reply typed on several lines reaches the phone on those lines."""
    assert _rich(html) == PlainText(whatsapp)


# --- R25: conversion edges, a table per construct ----------------------------------------------


@pytest.mark.parametrize(("html", "whatsapp"), [
    pytest.param("<pre>a   b\n  c</pre>", "a   b\n  c", id="pre-keeps-its-spaces-and-lines"),
    pytest.param("<pre>a\xa0 b</pre>", "a  b", id="pre-nbsp-is-a-space"),
    pytest.param("<pre>x<p>a   b</p>y   z</pre>", "x\na   b\ny   z",
                 id="a-paragraph-inside-pre-does-not-end-it"),
    pytest.param("<pre><pre>x</pre>a   b</pre>c   d", "x\na   b\nc d", id="nested-pre"),
    pytest.param("<pre>x</pre>a   b", "x\na b", id="whitespace-collapses-after-pre"),
    pytest.param("<pre>a\nb</pre>c", "a\nb\nc", id="pre-ending-in-words-ends-its-line"),
    pytest.param("<pre>x\ny\n</pre>z", "x\ny\nz", id="pre-ending-in-a-new-line-adds-none"),
    pytest.param("</pre>a   b", "a b", id="stray-closing-pre-is-ignored"),
    pytest.param("</pre><pre>x   y</pre>a   b", "x   y\na b",
                 id="stray-closing-pre-does-not-unbalance-the-next"),
])
def test_R25_preformatted_text(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


@pytest.mark.parametrize(("html", "whatsapp"), [
    pytest.param("<ul><li>a</li></ul><ul><li>b</li></ul>", "- a\n- b",
                 id="two-bulleted-lists-same-level"),
    pytest.param("<ol><li>a</li></ol><ol><li>b</li></ol>", "1. a\n1. b",
                 id="each-numbered-list-counts-from-one"),
    pytest.param("<ul><li>a<ol><li>b</li><li>c</li></ol></li><li>d</li></ul>",
                 "- a\n  1. b\n  2. c\n- d", id="nested-list-indented-then-back"),
    pytest.param("<ol><li>a<ul><li>b</li></ul></li><li>c</li></ol>",
                 "1. a\n  - b\n2. c", id="numbering-resumes-after-a-nested-list"),
    pytest.param("<ul><li>a</li></ul>after", "- a\nafter", id="text-after-a-list"),
    pytest.param("</ul>a</ol>b", "ab", id="stray-list-ends-ignored"),
    pytest.param("<li>loose</li>", "- loose", id="item-outside-a-list-is-a-bullet"),
    pytest.param("<ul><li><p>a</p></li><li><p>b</p></li></ul>", "- a\n- b",
                 id="editor-paragraphs-in-items-stay-on-the-bullet-line"),
])
def test_R25_lists(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


@pytest.mark.parametrize(("html", "whatsapp"), [
    pytest.param('<a href="http://x.io">site</a>', "site (http://x.io)", id="http"),
    pytest.param('<a href="mailto:help@x.io">write</a>', "write (mailto:help@x.io)",
                 id="mailto"),
    pytest.param('<a href="tel:+33123">call</a>', "call (tel:+33123)", id="tel"),
    pytest.param('<a href="ftp://x.io">files</a>', "files", id="other-scheme-label-only"),
    pytest.param("<a>anchor</a>", "anchor", id="no-href"),
    pytest.param('<a href="">empty</a>', "empty", id="empty-href"),
    pytest.param('<a href="https://x.io"> https://x.io </a>', "https://x.io",
                 id="label-equal-to-address-after-trimming"),
    pytest.param('Go <a href="https://x.io">there</a> <a href="https://y.io">and here</a>',
                 "Go there (https://x.io) and here (https://y.io)", id="two-links"),
    pytest.param('<a href="https://x.io">a <a href="https://y.io">b</a> c</a>',
                 "a b (https://y.io) c (https://x.io)", id="nested-links-each-their-own"),
    pytest.param("stray</a> end", "stray end", id="stray-closing-a-is-ignored"),
    pytest.param('See <b>it</b> <a href="https://x.io">https://x.io</a>', "See *it* https://x.io",
                 id="label-is-the-link-text-alone-not-what-came-before"),
])
def test_R25_links(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


@pytest.mark.parametrize(("html", "whatsapp"), [
    pytest.param("<b>a</i>b</b>", "*ab*", id="mismatched-closing-marker-ignored"),
    pytest.param("<i>a</i></b>", "_a_", id="stray-closing-marker-ignored"),
    pytest.param("<del>gone</del> <strike>old</strike>", "~gone~ ~old~", id="del-and-strike"),
    pytest.param("<b> </b>x", "x", id="bold-space-only-leaves-the-space"),
    pytest.param("<u>under</u> <code>x</code>", "under x", id="transparent-tags-keep-text"),
])
def test_R25_emphasis_edges(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


@pytest.mark.parametrize(("html", "whatsapp"), [
    pytest.param("<p>  a \n\t b  </p>", "a b", id="html-whitespace-collapses"),
    pytest.param("<p>Xavier</p><p>XX</p>", "Xavier\nXX", id="only-spaces-are-stripped"),
    pytest.param("<p>a\xa0\xa0b</p>", "a  b", id="typed-double-space-kept"),
    pytest.param("<p>a</p>\n\n<p>b</p>", "a\nb", id="source-newlines-between-blocks"),
    pytest.param("<h1>Title</h1>text", "Title\ntext", id="heading-is-its-own-line"),
    pytest.param("<blockquote>q</blockquote>r", "q\nr", id="blockquote-is-its-own-line"),
    pytest.param("a <br>b", "a\nb", id="space-before-a-break-dropped"),
    pytest.param("a\t<br>b", "a\nb", id="tab-before-a-break-dropped"),
    pytest.param("<p>a</p><p></p><p></p><p></p><p>b</p>", "a\nb",
                 id="empty-paragraphs-add-no-lines"),
    pytest.param("<br><br>a<br><br><br>", "a", id="edge-breaks-trimmed"),
    pytest.param("a<br>   b", "a\nb", id="indent-after-a-break-dropped"),
    pytest.param("a<br>\xa0b", "a\n b", id="typed-indent-after-a-break-kept"),
])
def test_R25_lines_and_spaces(html: str, whatsapp: str) -> None:
    assert _rich(html) == PlainText(whatsapp)


@pytest.mark.parametrize(("html", "what"), [
    pytest.param("<p>x</p><img src=a><video></video>", "an inline image",
                 id="first-refused-tag-is-named"),
    pytest.param("<table><tr><td>1</td></tr></table>", "a table", id="table"),
    pytest.param("<svg></svg>", "a drawing", id="svg"),
    pytest.param("<iframe></iframe>", "embedded content", id="iframe"),
])
def test_R25_refusal_names_the_first_thing_that_cannot_be_text(html: str, what: str) -> None:
    assert _rich(html) == Refused(
        f"The reply contains {what}, which WhatsApp can't show as plain text. Remove it and "
        "send text only.")


@pytest.mark.parametrize(("text", "rich_text"), [
    pytest.param(" \n", None, id="blank-text"),
    pytest.param(None, "<p> </p><b></b>", id="rich-text-without-words"),
])
def test_R25_empty_reply_says_why_in_words(text: str | None, rich_text: str | None) -> None:
    assert check_reply(text=text, rich_text=rich_text, attachment_count=0) == Refused(
        "The reply is empty: WhatsApp needs some text to send.")


# Equivalent mutants (mutation testing, README), each unable to change an answer:
# - _WhatsAppText's initial `refused = ""` (as false as None, and `or` replaces it) and
#   `_line_has_words = None` or `True` (the output's first line is stripped at the end, so
#   whether its leading spaces were dropped earlier changes nothing).
# - inbound_text's `(kind or "TEXT")`: lowered on the next step.
# - _emit's `text.rsplit("\n", 1)[-1]` with another or no maxsplit: the last line is the same.

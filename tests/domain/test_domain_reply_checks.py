"""May an agent's reply go out, and as what text? (R6, R8, R24, R25): the checks in the
order an agent needs the answers. Pure rules: no database, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsapp_helpdesk.domain.content import WHATSAPP_TEXT_LIMIT, PlainText, Refused
from whatsapp_helpdesk.domain.eligibility import CONVERSATION_SCOPES
from whatsapp_helpdesk.domain.reply_checks import (
    CHANNEL_DISCONNECTED_MESSAGE,
    CHANNEL_NOT_AUTHORISED_MESSAGE,
    SCOPES_MISSING_MESSAGE,
    ChannelFacts,
    ReplyFacts,
    check_outbound_reply,
)
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE

CUSTOMER_WROTE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIVE = ChannelFacts(connected=True, authorized=True)


def _facts(**changes: object) -> ReplyFacts:
    base: dict[str, object] = dict(
        channel=LIVE, granted_scopes=CONVERSATION_SCOPES | {"tickets"},
        last_customer_message_at=CUSTOMER_WROTE, text="Hello", rich_text=None,
        attachment_count=0,
    )
    base.update(changes)
    return ReplyFacts(**base)  # type: ignore[arg-type]


def _check(after: timedelta = timedelta(hours=1), **changes: object) -> PlainText | Refused:
    return check_outbound_reply(_facts(**changes), CUSTOMER_WROTE + after)


# --- R24: the customer-service window ----------------------------------------------------------


def test_R24_window_open_one_second_before_24h() -> None:
    assert _check(timedelta(hours=24) - timedelta(seconds=1)) == PlainText("Hello")


def test_R24_window_closed_at_24h_and_after() -> None:
    assert _check(timedelta(hours=24)) == Refused(WINDOW_CLOSED_MESSAGE)
    assert _check(timedelta(hours=24, seconds=1)) == Refused(WINDOW_CLOSED_MESSAGE)


def test_R24_no_customer_message_means_window_closed() -> None:
    assert _check(last_customer_message_at=None) == Refused(WINDOW_CLOSED_MESSAGE)


def test_R24_window_message_says_what_to_do() -> None:
    assert "24 hours" in WINDOW_CLOSED_MESSAGE and "customer must write first" in (
        WINDOW_CLOSED_MESSAGE)


# --- R25: plain text only ----------------------------------------------------------------------


def test_R25_attachment_is_refused() -> None:
    verdict = _check(attachment_count=1)
    assert isinstance(verdict, Refused) and "Attachments" in verdict.reason


def test_R25_simple_rich_text_becomes_whatsapp_text() -> None:
    verdict = _check(text="Hi there", rich_text="<div><b>Hi</b> <a href='https://x.io'>there</a>"
                                                "<br>Bye</div>")
    assert verdict == PlainText("*Hi* there (https://x.io)\nBye")


def test_R25_rich_content_without_text_form_is_refused() -> None:
    verdict = _check(rich_text="<div>Look <img src='https://x.io/a.png'></div>")
    assert isinstance(verdict, Refused) and "inline image" in verdict.reason


def test_R25_text_over_whatsapp_limit_is_refused_at_the_limit_accepted() -> None:
    assert _check(text="x" * WHATSAPP_TEXT_LIMIT) == PlainText("x" * WHATSAPP_TEXT_LIMIT)
    verdict = _check(text="x" * (WHATSAPP_TEXT_LIMIT + 1))
    assert isinstance(verdict, Refused) and str(WHATSAPP_TEXT_LIMIT) in verdict.reason


# --- R6, R8: the channel and the grant ---------------------------------------------------------


def test_R6_disconnected_or_deauthorised_channel_refuses() -> None:
    assert _check(channel=ChannelFacts(connected=False, authorized=True)) == Refused(
        CHANNEL_DISCONNECTED_MESSAGE)
    assert _check(channel=ChannelFacts(connected=True, authorized=False)) == Refused(
        CHANNEL_NOT_AUTHORISED_MESSAGE)


def test_R8_missing_custom_channel_scope_refuses() -> None:
    scopes = frozenset({"conversations.custom_channels.read", "tickets"})
    assert _check(granted_scopes=scopes) == Refused(SCOPES_MISSING_MESSAGE)


def test_R24_R25_the_channel_is_checked_before_the_window_and_the_window_before_content() -> None:
    closed = timedelta(days=2)
    assert _check(closed, attachment_count=1) == Refused(WINDOW_CLOSED_MESSAGE)
    assert _check(closed, channel=ChannelFacts(False, False)) == Refused(
        CHANNEL_DISCONNECTED_MESSAGE)


# --- Each check alone, and the order they answer in (tables) ----------------------------------

CLOSED = timedelta(days=2)
DEAD = ChannelFacts(connected=False, authorized=False)
NO_SCOPES = frozenset({"tickets"})


@pytest.mark.parametrize(("granted", "allowed"), [
    pytest.param(CONVERSATION_SCOPES, True, id="exactly-the-two-scopes"),
    pytest.param(CONVERSATION_SCOPES | {"tickets"}, True, id="more-than-needed"),
    pytest.param(frozenset({"conversations.custom_channels.write"}), False, id="write-only"),
    pytest.param(frozenset(), False, id="none"),
])
def test_R8_scopes_a_reply_needs(granted: frozenset[str], allowed: bool) -> None:
    expected = PlainText("Hello") if allowed else Refused(SCOPES_MISSING_MESSAGE)
    assert _check(granted_scopes=granted) == expected


@pytest.mark.parametrize(("after", "changes", "first_refusal"), [
    pytest.param(CLOSED, dict(channel=DEAD, granted_scopes=NO_SCOPES, attachment_count=1),
                 CHANNEL_DISCONNECTED_MESSAGE, id="channel-first"),
    pytest.param(CLOSED, dict(channel=ChannelFacts(connected=True, authorized=False),
                              granted_scopes=NO_SCOPES),
                 CHANNEL_NOT_AUTHORISED_MESSAGE, id="deauthorised-before-scopes"),
    pytest.param(CLOSED, dict(granted_scopes=NO_SCOPES, attachment_count=1),
                 SCOPES_MISSING_MESSAGE, id="scopes-before-the-window"),
    pytest.param(CLOSED, dict(text=""), WINDOW_CLOSED_MESSAGE, id="window-before-content"),
])
def test_R6_R8_R24_R25_the_first_failing_check_answers(
    after: timedelta, changes: dict[str, object], first_refusal: str
) -> None:
    assert _check(after, **changes) == Refused(first_refusal)


@pytest.mark.parametrize(("changes", "sent"), [
    pytest.param(dict(text="  Hello  "), PlainText("Hello"), id="plain-text-trimmed"),
    pytest.param(dict(text="ignored", rich_text="<p><i>Bonjour</i></p>"),
                 PlainText("_Bonjour_"), id="rich-text-converted"),
    pytest.param(dict(attachment_count=2), Refused(
        "Attachments can't be sent on this WhatsApp channel: only plain text is supported. "
        "Remove the attachment and send the text alone."), id="attachments-refused"),
])
def test_R25_content_is_checked_once_the_channel_and_window_allow(
    changes: dict[str, object], sent: PlainText | Refused
) -> None:
    assert _check(**changes) == sent

"""R52's pure rules: how the agent's text fills {{1}}, and when a template is awaited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsapp_helpdesk.domain import reengagement

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_r52_no_variable_means_no_parameter_whatever_the_text() -> None:
    assert reengagement.fill(False, "anything").values == ()
    assert reengagement.fill(False, "a" * 2000) == reengagement.TemplateFill((), cut=False)


def test_r52_agent_text_is_flattened_for_whatsapp() -> None:
    filled = reengagement.fill(True, "  line one\r\nline two\ttab" + " " * 9 + "end  ")
    assert filled.values == ("line one line two tab    end",)
    assert not filled.cut


def test_r52_text_at_the_limit_is_kept_and_one_more_is_cut() -> None:
    limit = reengagement.TEMPLATE_PARAMETER_LIMIT
    exact = reengagement.fill(True, "a" * limit)
    assert exact.values == ("a" * limit,) and not exact.cut
    over = reengagement.fill(True, "a" * (limit + 1))
    assert over.cut and len(over.values[0]) == limit and over.values[0].endswith("…")


def test_r52_waiting_until_the_customer_writes_after_the_template() -> None:
    assert not reengagement.waiting_for_answer(None, T0)
    assert reengagement.waiting_for_answer(T0, None)
    assert reengagement.waiting_for_answer(T0, T0 - timedelta(days=2))
    assert not reengagement.waiting_for_answer(T0, T0 + timedelta(seconds=1))


def test_r52_refusals_in_an_agents_words() -> None:
    assert "paused" in reengagement.refusal_problem(132015)
    assert "wrong number of variables" in reengagement.refusal_problem(132000)
    assert "no longer exists or is not approved" in reengagement.refusal_problem(132001)
    assert reengagement.refusal_problem(None) == "WhatsApp refused the template"
    assert reengagement.is_left_approved(reengagement.left_approved_problem("PAUSED"))
    assert not reengagement.is_left_approved(reengagement.refusal_problem(132015))


@pytest.mark.parametrize(("cut", "fills_text", "what"), [
    pytest.param(False, True, "with your reply as its text", id="reply-as-its-text"),
    pytest.param(True, True, "with your reply cut to 1024 characters (WhatsApp's limit for a "
                 "template's text)", id="reply-cut"),
    pytest.param(False, False, "without your reply's text (the template takes none)",
                 id="template-takes-no-text"),
    pytest.param(True, False, "without your reply's text (the template takes none)",
                 id="no-text-so-nothing-was-cut"),
])
def test_r52_ticket_note_says_what_went(cut: bool, fills_text: bool, what: str) -> None:
    assert reengagement.ticket_note("relance", cut=cut, fills_text=fills_text) == (
        f'WhatsApp template "relance" sent {what}, because the 24-hour window had closed. '
        "Free replies will go through once the customer answers it.")


@pytest.mark.parametrize(("agent_text", "value", "cut"), [
    pytest.param("a\n\n\nb", "a b", False, id="blank-lines-become-one-space"),
    pytest.param("a\tb\rc", "a b c", False, id="tab-and-carriage-return"),
    pytest.param("a" + " " * 4 + "b", "a    b", False, id="four-spaces-kept"),
    pytest.param("a" + " " * 5 + "b", "a    b", False, id="five-spaces-become-four"),
    pytest.param("a" * 1022 + " " + "b" * 10, "a" * 1022 + "…", True,
                 id="cut-drops-the-trailing-space-before-the-ellipsis"),
])
def test_r52_agent_text_as_the_template_parameter(agent_text: str, value: str, cut: bool) -> None:
    assert reengagement.fill(True, agent_text) == reengagement.TemplateFill((value,), cut=cut)


@pytest.mark.parametrize(("status", "problem"), [
    pytest.param("PAUSED", "the template is no longer approved on WhatsApp (now paused)",
                 id="paused"),
    pytest.param(None, "the template is no longer approved on WhatsApp (now gone)",
                 id="gone-from-the-listing"),
])
def test_r52_left_approved_problem_in_words(status: str | None, problem: str) -> None:
    assert reengagement.left_approved_problem(status) == problem
    assert reengagement.is_left_approved(problem)


@pytest.mark.parametrize("problem", [None, "", "WhatsApp refused the template"])
def test_r52_other_problems_are_not_left_approved(problem: str | None) -> None:
    assert reengagement.is_left_approved(problem) is False


@pytest.mark.parametrize(("code", "problem"), [
    (132005, "WhatsApp says the template's text is too long once filled in"),
    (132007, "WhatsApp refused the template's content under its policies"),
    (132012, "WhatsApp says the template's variables are in the wrong format"),
    (132016, "WhatsApp has disabled the template"),
    (999, "WhatsApp refused the template"),
])
def test_r52_refusal_codes_in_words(code: int, problem: str) -> None:
    assert reengagement.refusal_problem(code) == problem


def test_r52_refused_reply_message_names_the_problem_and_what_to_do() -> None:
    assert reengagement.refused_reply_message("WhatsApp has disabled the template") == (
        "Not sent: the 24-hour window is closed and the number's re-engagement template was "
        "refused — WhatsApp has disabled the template. An admin must choose another template "
        "on the integration's dashboard; free replies go again once the customer writes.")


def test_r52_waiting_ends_when_the_customer_writes_at_the_same_instant() -> None:
    assert not reengagement.waiting_for_answer(T0, T0)
# Equivalent mutant: in `left_approved_problem`, `(status or "gone")` mutated to
# `(status or "GONE")` is lowered on the next step: the same words.

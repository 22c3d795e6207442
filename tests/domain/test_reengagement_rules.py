"""R52's pure rules: how the agent's text fills {{1}}, and when a template is awaited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whatsapp_helpdesk.domain import reengagement

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_r52_no_variable_means_no_parameter_whatever_the_text() -> None:
    assert reengagement.fill(False, "anything").values == ()


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

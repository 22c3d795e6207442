"""Which numbers the connection pop-up may offer (R3): all five conditions must hold, and
the page can name each one that fails."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from whatsapp_helpdesk.domain.eligibility import (
    CONVERSATION_SCOPES,
    MISSING,
    InstallationFacts,
    NumberFacts,
    company_whatsapp_from_numbers,
    missing_conditions,
    whatsapp_line_usable,
)

ELIGIBLE_NUMBER = NumberFacts(
    whatsapp_enabled=True, connected_to_hubspot=True, helpdesk_enabled=True
)
ELIGIBLE_INSTALLATION = InstallationFacts(
    company_whatsapp_enabled=True,
    granted_scopes=CONVERSATION_SCOPES | {"oauth", "crm.objects.contacts.read"},
)


def test_R3_number_meeting_all_five_conditions_is_eligible() -> None:
    assert missing_conditions(ELIGIBLE_NUMBER, ELIGIBLE_INSTALLATION) == []


@pytest.mark.parametrize(
    ("number", "installation", "missing"),
    [
        pytest.param(
            replace(ELIGIBLE_NUMBER, whatsapp_enabled=False),
            ELIGIBLE_INSTALLATION,
            "number_whatsapp",
            id="a-number-not-whatsapp",
        ),
        pytest.param(
            ELIGIBLE_NUMBER,
            replace(ELIGIBLE_INSTALLATION, company_whatsapp_enabled=False),
            "company_whatsapp",
            id="b-company-not-whatsapp",
        ),
        pytest.param(
            ELIGIBLE_NUMBER,
            replace(ELIGIBLE_INSTALLATION, granted_scopes=frozenset({"oauth"})),
            "conversation_scope",
            id="c-no-conversation-scope",
        ),
        pytest.param(
            replace(ELIGIBLE_NUMBER, connected_to_hubspot=False),
            ELIGIBLE_INSTALLATION,
            "connected_to_hubspot",
            id="d-not-connected-to-hubspot",
        ),
        pytest.param(
            replace(ELIGIBLE_NUMBER, helpdesk_enabled=False),
            ELIGIBLE_INSTALLATION,
            "helpdesk_setting",
            id="e-helpdesk-setting-off",
        ),
    ],
)
def test_R3_each_condition_failing_alone_excludes_the_number_and_is_named(
    number: NumberFacts, installation: InstallationFacts, missing: str
) -> None:
    assert missing_conditions(number, installation) == [missing]
    assert MISSING[missing]  # the page has words for it


def test_R3_half_of_the_conversation_scopes_is_not_enough() -> None:
    read_only = replace(
        ELIGIBLE_INSTALLATION, granted_scopes=frozenset({"conversations.custom_channels.read"})
    )

    assert missing_conditions(ELIGIBLE_NUMBER, read_only) == ["conversation_scope"]


def test_R3_every_failing_condition_is_named_at_once() -> None:
    nothing = NumberFacts(
        whatsapp_enabled=False, connected_to_hubspot=False, helpdesk_enabled=False
    )
    bare = InstallationFacts(company_whatsapp_enabled=False, granted_scopes=frozenset())

    assert missing_conditions(nothing, bare) == list(MISSING)


def test_R3_each_reason_says_in_words_what_is_wrong() -> None:
    assert set(MISSING) == {
        "number_whatsapp",
        "company_whatsapp",
        "conversation_scope",
        "connected_to_hubspot",
        "helpdesk_setting",
    }
    assert "WhatsApp" in MISSING["number_whatsapp"]
    assert "company" in MISSING["company_whatsapp"]
    assert "scope" in MISSING["conversation_scope"]
    assert "dashboard" in MISSING["connected_to_hubspot"]
    assert "Help Desk" in MISSING["helpdesk_setting"]


@pytest.mark.parametrize("override", [True, False])
def test_R3b_admin_statement_about_company_whatsapp_wins(override: bool) -> None:
    assert company_whatsapp_from_numbers(override, [not override, not override]) is override


def test_R3b_company_whatsapp_derived_from_any_whatsapp_number() -> None:
    assert company_whatsapp_from_numbers(None, [False, True, False]) is True
    assert company_whatsapp_from_numbers(None, [False, False]) is False
    assert company_whatsapp_from_numbers(None, []) is False


def test_R3_a_line_that_exists_but_cannot_send_says_its_status() -> None:
    from whatsapp_helpdesk.domain.eligibility import MISSING, explain

    assert explain(["number_whatsapp"], None) == [MISSING["number_whatsapp"]]
    assert explain(["number_whatsapp", "helpdesk_setting"], "PENDING") == [
        "the number's WhatsApp line is not ready at Aircall yet (status PENDING)",
        MISSING["helpdesk_setting"],
    ]


@dataclass(frozen=True)
class _Line:
    """Aircall's WhatsApp status of a number, as its client reads it."""

    status: str
    can_send_message: bool


@pytest.mark.parametrize(("line", "usable"), [
    pytest.param(_Line("ONLINE", can_send_message=True), True, id="online-and-can-send"),
    pytest.param(_Line("PENDING", can_send_message=False), False, id="pending-cannot-send"),
    pytest.param(_Line("OFFLINE", can_send_message=False), False, id="offline-cannot-send"),
    pytest.param(None, False, id="no-whatsapp-line-at-all"),
])
def test_R3a_a_whatsapp_line_counts_when_aircall_can_send_on_it(
    line: _Line | None, usable: bool
) -> None:
    assert whatsapp_line_usable(line) is usable


@pytest.mark.parametrize(("granted", "missing"), [
    pytest.param(CONVERSATION_SCOPES, [], id="exactly-the-two-scopes"),
    pytest.param(CONVERSATION_SCOPES | {"oauth"}, [], id="more-than-needed"),
    pytest.param(frozenset({"conversations.custom_channels.write"}), ["conversation_scope"],
                 id="write-only"),
])
def test_R3c_the_scopes_the_pop_up_needs(granted: frozenset[str], missing: list[str]) -> None:
    installation = replace(ELIGIBLE_INSTALLATION, granted_scopes=granted)
    assert missing_conditions(ELIGIBLE_NUMBER, installation) == missing

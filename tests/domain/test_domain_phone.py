"""Phone numbers (R43 "odd phone formats"): one canonical E.164 form for every number we
store or send, whatever form a customer, Aircall or WhatsApp gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, display, to_e164

PARIS_SUPPORT = "+33176360695"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("+33 1 76 36 06 95", id="spaces-aircall-display-form"),
        pytest.param("+33.1.76.36.06.95", id="dots"),
        pytest.param("+33-1-76-36-06-95", id="dashes"),
        pytest.param("0033 1 76 36 06 95", id="00-international-prefix"),
        pytest.param("33176360695", id="bare-digits-wa-id"),
        pytest.param("+33 (0)1 76 36 06 95", id="bracketed-national-zero"),
        pytest.param("  +33176360695\n", id="surrounding-whitespace"),
        pytest.param(PARIS_SUPPORT, id="already-e164"),
    ],
)
def test_R43_international_forms_become_e164(raw: str) -> None:
    assert to_e164(raw) == PARIS_SUPPORT


def test_R43_national_format_uses_the_default_region() -> None:
    assert to_e164("01 76 36 06 95", default_region="FR") == PARIS_SUPPORT
    assert to_e164("(650) 253-0000", default_region="US") == "+16502530000"


def test_R43_international_form_ignores_the_default_region() -> None:
    assert to_e164("+33 1 76 36 06 95", default_region="US") == PARIS_SUPPORT


def test_R43_brazilian_mobile_without_ninth_digit_gains_it() -> None:
    # WhatsApp still reports many Brazilian mobiles in their pre-2016 8-digit form; without
    # this one customer would become two contacts.
    assert to_e164("+55 11 8765-4321") == "+5511987654321"


def test_R43_brazilian_mobile_with_ninth_digit_is_unchanged() -> None:
    assert to_e164("+55 11 98765-4321") == "+5511987654321"


def test_R43_brazilian_landline_gets_no_ninth_digit() -> None:
    assert to_e164("+55 11 3456-7890") == "+551134567890"


def test_R43_italian_leading_zero_is_kept() -> None:
    assert to_e164("+39 06 1234 5678") == "+390612345678"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("hello", id="words"),
        pytest.param("+1", id="country-code-only"),
        pytest.param("12", id="too-short"),
        pytest.param("+999 123", id="unknown-country-code"),
        pytest.param("+33 1 76 36 06 95 12 34 56 78 90", id="too-long"),
        pytest.param("(650) 253-0000", id="national-form-without-region"),
        pytest.param("00", id="prefix-only"),
    ],
)
def test_R43_garbage_is_an_invalid_phone_number(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        to_e164(raw)


def test_R43_invalid_phone_number_is_a_value_error() -> None:
    # Callers that validate input catch ValueError and answer 4xx, never 500.
    assert issubclass(InvalidPhoneNumber, ValueError)


def test_display_form_is_international() -> None:
    assert display(PARIS_SUPPORT) == "+33 1 76 36 06 95"
    assert display("not a number") == "not a number"


_phone_like = st.from_regex(r"[+0-9 ()\-.]{0,24}", fullmatch=True)
_regions = st.sampled_from([None, "FR", "BR", "US", "GB", "DE", "IT"])


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(st.text(), _phone_like), default_region=_regions)
def test_R43_to_e164_only_ever_raises_invalid_phone_number_and_is_idempotent(
    raw: str, default_region: str | None
) -> None:
    try:
        e164 = to_e164(raw, default_region=default_region)
    except InvalidPhoneNumber:
        return
    assert e164.startswith("+")
    assert e164[1:].isdigit()
    # One number, one string: reading our own output gives it back unchanged.
    assert to_e164(e164) == e164
    assert to_e164(e164, default_region=default_region) == e164


@pytest.mark.parametrize(
    ("raw", "default_region"),
    [
        # Found by the property test above: national "0"s read as leading zeros came back
        # one fewer per reading ("+49002895" → "+492895").
        ("0)0(-002-895", "DE"),
        (").)9)001828805636", "BR"),
    ],
)
def test_R43_regression_national_zero_artefacts_are_read_to_a_fixed_point(
    raw: str, default_region: str
) -> None:
    e164 = to_e164(raw, default_region=default_region)

    assert to_e164(e164) == e164


@pytest.mark.parametrize(("raw", "why"), [
    pytest.param("", "empty phone number", id="empty"),
    pytest.param(" \t", "empty phone number", id="blank"),
    pytest.param("hello", "not a phone number: 'hello'", id="words"),
    pytest.param("12", "not a phone number: '12'", id="digits-too-few-to-parse"),
    pytest.param("+331234", r"not a possible phone number: '\+331234'", id="too-short"),
])
def test_R43_invalid_phone_number_says_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match=f"^{why}$"):
        to_e164(raw)


@pytest.mark.parametrize(("raw", "region", "e164"), [
    pytest.param("+33 1 76 36 06 95", "US", PARIS_SUPPORT, id="plus-form-any-region"),
    pytest.param("01 76 36 06 95", "FR", PARIS_SUPPORT, id="national-zero-with-region"),
    pytest.param("0033176360695", "US", PARIS_SUPPORT, id="00-prefix-beats-the-region"),
    pytest.param("+55 11 6123 4567", None, "+5511961234567", id="br-old-mobile-6"),
    pytest.param("+55 11 9123 4567", None, "+5511991234567", id="br-old-mobile-9"),
    pytest.param("+55 11 5123 4567", None, "+551151234567", id="br-landline-5-unchanged"),
    pytest.param("+55 11 96123 4567", None, "+5511961234567", id="br-new-mobile-unchanged"),
])
def test_R43_e164_table(raw: str, region: str | None, e164: str) -> None:
    assert to_e164(raw, default_region=region) == e164


@pytest.mark.parametrize(("e164", "shown"), [
    pytest.param("+5511961234567", "+55 11 96123-4567", id="brazil"),
    pytest.param("", "", id="empty-is-shown-as-is"),
])
def test_display_form_table(e164: str, shown: str) -> None:
    assert display(e164) == shown
# Equivalent mutants (mutation testing, README), each unable to change an answer:
# - to_e164's `"+" + text` (both places) mutated to `"XX+XX" + …`: phonenumbers skips leading
#   characters that cannot start a number, so it reads the same digits.
# - to_e164's fixed-point loop: `raw` mutated to None in its re-reading, and the message of
#   "not a stable phone number": re-reading a possible E.164 number never fails, and each
#   change drops a leading zero, so the loop always ends before that raise.
# - _with_brazil_ninth_digit's `in "6789"` mutated to `in "XX6789XX"`: a digit is never X.
# In `display`, `phonenumbers.parse(e164, None)` without its region is
# the same call (the region defaults to None).

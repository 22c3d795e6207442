"""Phone-number parsing and formatting (E.164 for storage, Aircall's display form for output)."""

from __future__ import annotations

import re

import phonenumbers

_E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can place."""


def normalise(text: str, *, default_region: str | None = None) -> str:
    """Any human spelling of a number ("06 12 34 56 78", "0033 6…") to E.164."""
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number") from error
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_strict_e164(text: str) -> bool:
    """What Aircall's send endpoints expect: `+` and digits only, a possible number."""
    if not _E164_PATTERN.match(text):
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def display(e164: str) -> str:
    """Aircall's `digits` / `external_number` form, e.g. "+33 1 76 36 06 95"."""
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def region_of(e164: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))

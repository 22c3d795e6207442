"""Phone numbers: one canonical E.164 form for every number we store or send (R43).

HubSpot wants `HS_PHONE_NUMBER` delivery identifiers in E.164; Aircall gives display forms
(`+33 1 76 36 06 95`) in REST and webhook bodies. Customers type anything.
"""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def to_e164(raw: str, *, default_region: str | None = None) -> str:
    """Parse any human or provider form of a number into canonical E.164, or raise."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("empty phone number")
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text[0].isdigit() and default_region is None:
        # Providers drop the "+" (Meta's wa_id, Aircall's raw_digits): treat a bare
        # string of digits as international.
        text = "+" + text
    e164 = _parse_e164(text, default_region, raw)
    if e164 == text and default_region is None:
        # Already canonical (what Aircall sends): reading it again would read the same
        # string the same way, so it is a fixed point; half the cost of an inbound message's
        # number (issue 17 item 1).
        return e164
    # A number can keep national "0"s as Italian-style leading zeros that its own E.164
    # form loses when read again, one per reading ("+49 0 0 2895"). Reading the E.164 form
    # until it stops changing makes the result a fixed point, so one number is always
    # stored as one string. Each change drops a leading zero; the loop is bounded anyway.
    for _ in range(len(e164)):
        again = _parse_e164(e164, None, raw)
        if again == e164:
            return e164
        e164 = again
    raise InvalidPhoneNumber(f"not a stable phone number: {raw!r}")


def _parse_e164(text: str, default_region: str | None, raw: str) -> str:
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {raw!r}") from exc
    parsed = _with_brazil_ninth_digit(parsed)
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _with_brazil_ninth_digit(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """Brazilian mobiles gained a leading 9 in 2012-2016; WhatsApp still reports many
    without it. Without this, one customer becomes two contacts (peers lesson 9)."""
    if number.country_code != 55:
        return number
    national = str(number.national_number)
    # 2-digit area code + 8-digit subscriber starting 6-9 is an old-style mobile.
    if len(national) == 10 and national[2] in "6789":
        fixed = phonenumbers.PhoneNumber()
        fixed.merge_from(number)
        fixed.national_number = int(national[:2] + "9" + national[2:])
        return fixed
    return number


def display(e164: str) -> str:
    """The international display form of an E.164 number (for pages)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

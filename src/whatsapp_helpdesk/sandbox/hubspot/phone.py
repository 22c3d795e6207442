"""Delivery-identifier checks and phone-number comparison."""

from __future__ import annotations

import re

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.errors import HubSpotApiError, validation_error

# [UNK] HubSpot's exact HS_PHONE_NUMBER rule is unknown (reference §1.4); vendors send E.164
# with a leading "+", and the changelog says identifiers are validated, so we demand E.164.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SHORT_CODE = re.compile(r"^\d{3,8}$")
DELIVERY_IDENTIFIER_TYPES = (
    "HS_PHONE_NUMBER",
    "HS_EMAIL_ADDRESS",
    "HS_SHORT_CODE",
    "CHANNEL_SPECIFIC_OPAQUE_ID",
)


def check_delivery_identifier(kind: str, value: str) -> None:
    """Raise a 400 VALIDATION_ERROR when `value` is not a valid identifier of `kind`."""
    if kind not in DELIVERY_IDENTIFIER_TYPES:
        raise validation_error(f"Unknown delivery identifier type {kind!r}")
    valid = {
        "HS_PHONE_NUMBER": lambda v: bool(E164.match(v)),
        "HS_EMAIL_ADDRESS": lambda v: bool(EMAIL.match(v)),
        "HS_SHORT_CODE": lambda v: bool(SHORT_CODE.match(v)),
        "CHANNEL_SPECIFIC_OPAQUE_ID": lambda v: bool(v.strip()),
    }[kind](value)
    if not valid:
        raise invalid_identifier(kind, value)


def invalid_identifier(kind: str, value: str) -> HubSpotApiError:
    hint = " (expected E.164, e.g. +33612345678)" if kind == "HS_PHONE_NUMBER" else ""
    return validation_error(
        f"Invalid delivery identifier {value!r} for type {kind}{hint}",
        sub_category=constants.SUBCATEGORY_INVALID_DELIVERY_IDENTIFIER,
    )


def phone_digits(text: str) -> str:
    """Digits of a phone number, international prefix "00" read as "+"."""
    digits = re.sub(r"\D", "", text)
    return digits[2:] if text.strip().startswith("00") else digits


def same_phone(a: str, b: str) -> bool:
    left, right = phone_digits(a), phone_digits(b)
    return bool(left) and left == right

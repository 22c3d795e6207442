"""The limits on input, stated once (R43; issue 12).

Everything a webhook or a page hands to the database is checked against these before any
query runs, so that SQLite and PostgreSQL answer alike: PostgreSQL refuses NUL characters,
lone UTF-16 surrogates, strings longer than their column and integers beyond 32 bits, where
SQLite quietly stores or overflows them. Payload models (aircall/payloads.py,
hubspot/payloads.py) and the routes use these names; the lengths match db/models.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, StringConstraints

# Column lengths (db/models.py) of what comes from outside.
MAX_EVENT_TYPE: Final = 80  # webhook_events.event_type
MAX_PROVIDER_ID: Final = 100  # messages.provider_message_id / hubspot_message_id
MAX_KIND: Final = 20  # messages.kind (a WhatsApp content type)
MAX_NAME: Final = 200  # contact names, company names, number names
MAX_HUBSPOT_ID: Final = 32  # HubSpot channel, channel-account, inbox, thread ids
MAX_DIGITS: Final = 40  # numbers.digits, Aircall's display form of a number
MAX_STATUS: Final = 40  # a provider's status word
MAX_TEXT: Final = 65_536  # a message's text (WhatsApp's own limit is 4,096)
MAX_FORM_FIELD: Final = 4_096  # any one field of a page's form or query

# JSON: Python's parser recurses per level; 10,000 levels exhaust its stack. No provider
# event is more than a handful of levels deep.
MAX_JSON_DEPTH: Final = 32

# Ids in page paths and forms are database primary keys: 32-bit on PostgreSQL.
MAX_DB_ID: Final = 2**31 - 1

# Provider timestamps: anything outside these years is not a real message time (and 1e20
# overflows Python's datetime).
MIN_MOMENT: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MOMENT: Final = datetime(9000, 1, 1, tzinfo=UTC)

# NUL and lone surrogates: PostgreSQL cannot store them in text, UTF-8 cannot encode them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InputRejected(ValueError):
    """Input beyond a limit above. The message is safe to show (it never echoes values)."""


def storable(value: str) -> str:
    """A string both databases can store, or InputRejected."""
    if _UNSTORABLE.search(value):
        raise InputRejected("text contains a NUL character or an invalid (surrogate) character")
    return value


def _storable_check(value: str) -> str:
    try:
        return storable(value)
    except InputRejected as exc:
        raise ValueError(str(exc)) from None  # pydantic reports a ValueError as a field error


_STORABLE = AfterValidator(_storable_check)

# pydantic string types: at most so many characters, storable. Written out as aliases (not
# built by a function) so that the type checker sees `str`.
EventType = Annotated[str, StringConstraints(max_length=MAX_EVENT_TYPE), _STORABLE]
ProviderId = Annotated[str, StringConstraints(max_length=MAX_PROVIDER_ID), _STORABLE]
Kind = Annotated[str, StringConstraints(max_length=MAX_KIND), _STORABLE]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME), _STORABLE]
HubSpotId = Annotated[str, StringConstraints(max_length=MAX_HUBSPOT_ID), _STORABLE]
Digits = Annotated[str, StringConstraints(max_length=MAX_DIGITS), _STORABLE]
Status = Annotated[str, StringConstraints(max_length=MAX_STATUS), _STORABLE]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), _STORABLE]
# HubSpot's thread ids (hubspot/payloads.py): its own documented-less bound [UNK].
ThreadId = Annotated[str, StringConstraints(max_length=64), _STORABLE]


def moment_in_range(moment: datetime) -> datetime:
    if not MIN_MOMENT <= moment <= MAX_MOMENT:
        raise ValueError(f"timestamp outside {MIN_MOMENT.year}–{MAX_MOMENT.year}")
    return moment


def load_json(raw: bytes | str) -> Any:
    """Parse a request body: valid UTF-8 JSON, at most MAX_JSON_DEPTH deep, every string
    storable. Raises InputRejected."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InputRejected(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise InputRejected("the body is not valid JSON") from None
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """Depth and characters of already parsed JSON (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            storable(item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InputRejected(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    storable(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def form_value(value: object, max_length: int = MAX_FORM_FIELD) -> str:
    """A page's form or query field: a storable string within `max_length`, or InputRejected."""
    if not isinstance(value, str):
        return ""
    if len(value) > max_length:
        raise InputRejected(f"a field is longer than {max_length} characters")
    return storable(value)


def db_id(value: str) -> int | None:
    """A database id from a form field: None unless digits within the 32-bit range."""
    if not value.isdigit() or len(value) > len(str(MAX_DB_ID)):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_DB_ID else None

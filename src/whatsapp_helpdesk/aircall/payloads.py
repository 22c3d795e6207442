"""Aircall webhook events (reference aircall §A7, §A8.2, §A8.3).

Every event is an envelope `{resource, event, timestamp (UNIX seconds), token, data}`. The
web layer parses the envelope first (`parse_envelope`), checks `token` (see `webhook.py`),
then the event (`parse_event`). Lenient about everything we do not use and where the
reference is unsure (timestamps as ms integers or ISO strings, `media_details` or
`media_url`, a null contact); strict about what we need: ids, direction, the number.
Unknown events come back as `UnsupportedAircallEvent`, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from whatsapp_helpdesk.input_limits import (
    MAX_NAME,
    Digits,
    EventType,
    InputRejected,
    Kind,
    Name,
    ProviderId,
    Status,
    Text,
    check_json,
    load_json,
    moment_in_range,
)

MESSAGE_EVENTS: Final = ("message.received", "message.sent", "message.status_updated")
CALL_EVENTS: Final = ("call.ended", "call.voicemail_left")
NUMBER_EVENTS: Final = ("number.created", "number.opened", "number.closed", "number.deleted")
INTEGRATION_DELETED: Final = "integration.deleted"


class InvalidAircallPayload(ValueError):
    """Not JSON, not an envelope, or a known event missing what we need. Safe to show."""


def provider_datetime(value: Any) -> Any:
    """Aircall's timestamps as timezone-aware UTC datetimes.

    The one place that reads them (§A7, §E2): message times are UNIX **milliseconds** in
    Aircall's support sample and **ISO strings** in the reference sample; the envelope's
    `timestamp` and call times are UNIX **seconds**. A number above 10^11 cannot be seconds
    (year 5138) and is read as milliseconds; anything smaller as seconds. ISO strings without
    an offset are UTC.
    """
    try:
        return _provider_datetime(value)
    except (OverflowError, OSError, ValueError):
        # 1e20 seconds, or year 1 moved to UTC: beyond what a datetime holds (R43).
        raise ValueError("timestamp out of range") from None


def _provider_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return _aware(value)
    if value is None or isinstance(value, bool):
        return value  # let pydantic refuse it
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = float(text)
        except ValueError:
            try:
                return _aware(datetime.fromisoformat(text))
            except ValueError:
                return value  # let pydantic refuse it with its own message
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return value
    if not math.isfinite(number):
        return value
    seconds = number / 1000 if abs(number) > 1e11 else number
    return datetime.fromtimestamp(seconds, tz=UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


ProviderDatetime = Annotated[datetime, BeforeValidator(provider_datetime),
                             AfterValidator(moment_in_range)]


def _as_list(value: Any) -> Any:
    """`media_url` seen as a list of strings; accept one string, or null, as well."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


# --- Envelope ------------------------------------------------------------------------------------


class AircallEnvelope(_Lenient):
    resource: Name | None = None  # route on `event`, not on this (§A8.2)
    event: EventType
    timestamp: ProviderDatetime | None = None  # when Aircall built the payload
    # The webhook's shared secret: never log it. Absent is "unauthenticated" (401), not 400.
    token: str = Field("", repr=False)
    data: dict[str, Any] = Field(repr=False)


# --- Shared pieces --------------------------------------------------------------------------------


class AircallNumberRef(_Lenient):
    """The number an event is about (abridged Number; `e164_digits` on webhooks only)."""

    id: int
    name: Name | None = None
    digits: Digits | None = None  # display form, e.g. "+33 1 76 36 06 95"
    e164_digits: Digits | None = None
    country: Digits | None = None
    time_zone: Name | None = None


class AircallPhoneEntry(_Lenient):
    label: Name | None = None
    value: Digits | None = None


class AircallContact(_Lenient):
    """The Aircall contact matched to the other party, when there is one (§A7)."""

    id: ProviderId | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    company_name: Name | None = None
    phone_numbers: list[AircallPhoneEntry] = []

    @property
    def full_name(self) -> str | None:
        name = " ".join(p.strip() for p in (self.first_name, self.last_name) if p and p.strip())
        # Each part fits; both together may not: the stored name is cut at the column's width.
        return name[:MAX_NAME] or None


class MediaDetail(_Lenient):
    file_name: str | None = None
    file_type: str | None = None
    presigned_url: str | None = None  # time-limited: download promptly (§B7)


@dataclass(frozen=True)
class Media:
    """One attachment, whichever of the two shapes Aircall used (§E3)."""

    url: str | None
    file_name: str | None = None
    file_type: str | None = None


# --- Messages (§A7) ---------------------------------------------------------------------


class AircallMessage(_Lenient):
    id: ProviderId  # a string, the idempotency key (R14)
    direction: Literal["inbound", "outbound"]
    channel: Status | None = None  # null = SMS/MMS, "whatsapp" = WhatsApp
    status: Status | None = None  # full enum unknown (§E1): keep the string
    body: Text | None = None
    type: Kind | None = None  # WhatsApp content type: "text", "image", …
    external_number: Digits | None = None  # the customer, display form; absent on send answers
    raw_digits: Digits | None = None
    created_at: ProviderDatetime | None = None
    sent_at: ProviderDatetime | None = None
    updated_at: ProviderDatetime | None = None
    media_details: list[MediaDetail] = []
    media_url: Annotated[list[str], BeforeValidator(_as_list)] = []
    number: AircallNumberRef | None = None
    contact: AircallContact | None = None

    @property
    def is_whatsapp(self) -> bool:
        return (self.channel or "").lower() == "whatsapp"

    @property
    def media(self) -> list[Media]:
        details = [Media(d.presigned_url, d.file_name, d.file_type) for d in self.media_details]
        return details or [Media(url) for url in self.media_url]

    @property
    def provider_time(self) -> datetime | None:
        """When the customer (or agent) sent it, as the provider says (R15, R24)."""
        return self.sent_at or self.created_at


def _require_line(number: AircallNumberRef | None, what: str) -> None:
    """An event is routed by its line: one without `data.number` cannot be routed."""
    if number is None:
        raise ValueError(f"data.number is required to know which line the {what} is on")


class MessageEvent(_Lenient):
    event: Literal["message.received", "message.sent", "message.status_updated"]
    timestamp: ProviderDatetime | None = None
    data: AircallMessage

    @model_validator(mode="after")
    def _what_routing_needs(self) -> MessageEvent:
        _require_line(self.data.number, "message")
        if self.event == "message.received" and not self.data.external_number:
            raise ValueError("data.external_number is required on message.received")
        return self

    @property
    def message(self) -> AircallMessage:
        return self.data

    @property
    def number_id(self) -> int:
        assert self.data.number is not None  # checked by the validator
        return self.data.number.id


# --- Calls (§A8.3; R35 native tickets) ---------------------------------------------------


class AircallCall(_Lenient):
    id: ProviderId
    direction: Status | None = None  # "inbound" | "outbound"
    status: Status | None = None
    missed_call_reason: Name | None = None  # set when the call was missed (enum unknown)
    voicemail: Text | None = None  # URL of the recording, when one was left
    started_at: ProviderDatetime | None = None
    answered_at: ProviderDatetime | None = None
    ended_at: ProviderDatetime | None = None
    duration: int | None = None
    raw_digits: Digits | None = None  # the other party, display form
    number: AircallNumberRef | None = None
    contact: AircallContact | None = None

    @property
    def is_missed(self) -> bool:
        """A missed inbound call: Aircall gave a reason, or nobody answered."""
        if self.missed_call_reason:
            return True
        return self.direction == "inbound" and self.answered_at is None

    @property
    def has_voicemail(self) -> bool:
        return bool(self.voicemail)


class CallEvent(_Lenient):
    event: Literal["call.ended", "call.voicemail_left"]
    timestamp: ProviderDatetime | None = None
    data: AircallCall

    @model_validator(mode="after")
    def _what_routing_needs(self) -> CallEvent:
        _require_line(self.data.number, "call")
        return self

    @property
    def call(self) -> AircallCall:
        return self.data


# --- Numbers and the integration (§A5, §A8.3) -----------------------------------------------------


class NumberEvent(_Lenient):
    event: Literal["number.created", "number.opened", "number.closed", "number.deleted"]
    timestamp: ProviderDatetime | None = None
    data: AircallNumberRef

    @property
    def number(self) -> AircallNumberRef:
        return self.data


class IntegrationRef(_Lenient):
    integration_id: int
    company_id: int


class IntegrationDeletedEvent(_Lenient):
    """The admin uninstalled our app in Aircall: tear the installation down."""

    event: Literal["integration.deleted"]
    timestamp: ProviderDatetime | None = None
    data: IntegrationRef


@dataclass(frozen=True)
class UnsupportedAircallEvent:
    """An event we do not handle: acknowledged and reported, never silently dropped."""

    event: str
    resource: str | None
    data: Mapping[str, Any] = field(repr=False)


AircallEvent = (
    MessageEvent | CallEvent | NumberEvent | IntegrationDeletedEvent | UnsupportedAircallEvent
)

_MODELS: Final[dict[str, type[_Lenient]]] = {
    **{name: MessageEvent for name in MESSAGE_EVENTS},
    **{name: CallEvent for name in CALL_EVENTS},
    **{name: NumberEvent for name in NUMBER_EVENTS},
    INTEGRATION_DELETED: IntegrationDeletedEvent,
}


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> AircallEnvelope:
    """The envelope of one delivery; raises `InvalidAircallPayload`."""
    try:
        # Depth, NUL and surrogates checked before anything else reads the body (R43).
        if isinstance(raw, bytes | str):
            raw = load_json(raw)
        else:
            check_json(raw)
    except InputRejected as exc:
        raise InvalidAircallPayload(str(exc)) from exc
    if not isinstance(raw, Mapping):
        raise InvalidAircallPayload("an Aircall event must be a JSON object")
    try:
        return AircallEnvelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidAircallPayload(f"envelope: {_summary(exc)}") from exc


def parse_event(envelope: AircallEnvelope) -> AircallEvent:
    """The typed event inside a (token-checked) envelope."""
    model = _MODELS.get(envelope.event)
    if model is None:
        return UnsupportedAircallEvent(envelope.event, envelope.resource, envelope.data)
    try:
        event = model.model_validate(
            {"event": envelope.event, "timestamp": envelope.timestamp, "data": envelope.data}
        )
    except ValidationError as exc:
        raise InvalidAircallPayload(f"{envelope.event}: {_summary(exc)}") from exc
    return cast(AircallEvent, event)


def _summary(exc: ValidationError) -> str:
    """Which fields are wrong, without echoing values (tokens, phone numbers, texts)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )

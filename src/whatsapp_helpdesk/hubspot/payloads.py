"""The events HubSpot POSTs to the custom channel's `webhookUrl` (reference hubspot §4.1, §4.2).

Lenient about everything we do not use (extra fields, unknown types), strict about what we
need: a reply must carry its message id and channel account; a channel-account event must
name its channel account. Unknown types come back as `UnsupportedEvent`, never dropped.

The payloads are reconstructed from real-world code, not from a HubSpot schema (§4.2, §10):
fields marked "[UNK]" below are read from wherever they were seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from whatsapp_helpdesk.input_limits import (
    HubSpotId,
    InputRejected,
    Name,
    ProviderId,
    Status,
    Text,
    ThreadId,
    check_json,
    load_json,
)

# ThreadId: our own INTEGRATION_THREAD_IDs echoed back (tickets.integration_thread_id).

OUTGOING_MESSAGE_EVENT: Final = "OUTGOING_CHANNEL_MESSAGE_CREATED"
CHANNEL_ACCOUNT_EVENTS: Final = ("CHANNEL_ACCOUNT_CREATED", "CHANNEL_ACCOUNT_UPDATED")


class InvalidHubSpotPayload(ValueError):
    """The body is not JSON, or a known event lacks what we need. Safe to show as a 400."""


def _utc(moment: datetime) -> datetime:
    # HubSpot writes UTC; a timestamp without offset is read as UTC, never as local time.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ISO strings or epoch numbers (pydantic reads > 2e10 as milliseconds), always aware UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True,
                              frozen=True)


class DeliveryIdentifier(_Lenient):
    type: Status
    value: Name


class Participant(_Lenient):
    actor_id: ProviderId | None = Field(None, alias="actorId")  # "A-<userId>", "V-<contactId>"
    name: Name | None = None
    delivery_identifier: DeliveryIdentifier | None = Field(None, alias="deliveryIdentifier")


class Attachment(_Lenient):
    """Kept so a reply with attachments can be refused (R25), never to send them."""

    model_config = ConfigDict(extra="allow")
    type: str = "UNKNOWN"
    name: str | None = None
    url: str | None = None
    file_id: str | None = Field(None, alias="fileId")


class OutgoingMessage(_Lenient):
    id: ProviderId
    channel_account_id: HubSpotId = Field(alias="channelAccountId")
    conversations_thread_id: HubSpotId | None = Field(None, alias="conversationsThreadId")
    channel_id: HubSpotId | None = Field(None, alias="channelId")
    direction: Status | None = None
    text: Text = ""
    rich_text: Text | None = Field(None, alias="richText")
    senders: list[Participant] = []
    recipients: list[Participant] = []
    attachments: list[Attachment] = []
    created_at: UtcDatetime | None = Field(None, alias="createdAt")
    created_by: str | None = Field(None, alias="createdBy")
    in_reply_to_id: str | None = Field(None, alias="inReplyToId")
    truncation_status: str | None = Field(None, alias="truncationStatus")
    # One project reads the thread ids here rather than at the top level [UNK]: read both.
    channel_integration_thread_ids: list[ThreadId] = Field([], alias="channelIntegrationThreadIds")


class OutgoingChannelMessageCreated(_Lenient):
    """An agent replied on our channel (R21)."""

    type: Literal["OUTGOING_CHANNEL_MESSAGE_CREATED"]
    portal_id: HubSpotId | None = Field(None, alias="portalId")
    channel_id: HubSpotId | None = Field(None, alias="channelId")
    event_id: ProviderId | None = Field(None, alias="eventId")
    event_timestamp: UtcDatetime | None = Field(None, alias="eventTimestamp")
    channel_integration_thread_ids: list[ThreadId] = Field([], alias="channelIntegrationThreadIds")
    message: OutgoingMessage

    @property
    def integration_thread_ids(self) -> list[str]:
        """Our thread ids echoed back: top level (confirmed capture) or inside `message`."""
        return self.channel_integration_thread_ids or self.message.channel_integration_thread_ids

    @property
    def customer_e164(self) -> str | None:
        """The first recipient's phone delivery identifier, if HubSpot sent one [UNK]."""
        for recipient in self.message.recipients:
            identifier = recipient.delivery_identifier
            if identifier is not None and identifier.type == "HS_PHONE_NUMBER":
                return identifier.value
        return None


class ChannelAccountEvent(_Lenient):
    """A channel account was created (an admin connected a number) or changed (R4, R6).

    The payload shape is unknown beyond "created is the same as updated" (§4.1, §10.2). We
    accept the account's fields at the top level (`channelAccountId`, …) or nested in a
    `channelAccount` object shaped like `PublicChannelAccount`.
    """

    type: Literal["CHANNEL_ACCOUNT_CREATED", "CHANNEL_ACCOUNT_UPDATED"]
    portal_id: HubSpotId | None = Field(None, alias="portalId")
    channel_id: HubSpotId | None = Field(None, alias="channelId")
    channel_account_id: HubSpotId = Field(alias="channelAccountId")
    account_token: Name | None = Field(None, alias="accountToken", repr=False)
    inbox_id: HubSpotId | None = Field(None, alias="inboxId")
    name: Name | None = None
    authorized: bool | None = None
    archived: bool | None = None
    delivery_identifier: DeliveryIdentifier | None = Field(None, alias="deliveryIdentifier")

    @model_validator(mode="before")
    @classmethod
    def _flatten_nested_account(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        flat = dict(data)
        nested = data.get("channelAccount")
        if isinstance(nested, Mapping):
            renames = {"id": "channelAccountId", "accountName": "name"}
            for key, value in nested.items():
                flat.setdefault(renames.get(key, key), value)
        if "name" not in flat and "accountName" in flat:
            flat["name"] = flat["accountName"]
        return flat

    @property
    def delivery_identifier_e164(self) -> str | None:
        identifier = self.delivery_identifier
        if identifier is None or identifier.type != "HS_PHONE_NUMBER":
            return None
        return identifier.value


@dataclass(frozen=True)
class UnsupportedEvent:
    """An event type we do not handle; reported, acknowledged, never silently dropped."""

    type: str | None
    raw: Mapping[str, Any] = field(repr=False)


HubSpotEvent = OutgoingChannelMessageCreated | ChannelAccountEvent | UnsupportedEvent


def parse_hubspot_events(raw: bytes | str | Mapping[str, Any] | list[Any]) -> list[HubSpotEvent]:
    """Every event of one webhook body.

    Custom-channel webhooks send one JSON object (§4.1); an array is accepted too, as
    defensive clients do, and yields one event per element.
    """
    body = _decoded(raw)
    items = body if isinstance(body, list) else [body]
    return [parse_hubspot_event(item) for item in items]


def parse_hubspot_event(raw: bytes | str | Mapping[str, Any]) -> HubSpotEvent:
    """One event: a typed event for the types we handle, `UnsupportedEvent` otherwise."""
    body = _decoded(raw)
    if not isinstance(body, Mapping):
        raise InvalidHubSpotPayload("a HubSpot event must be a JSON object")
    event_type = body.get("type")
    model: type[OutgoingChannelMessageCreated] | type[ChannelAccountEvent]
    if event_type == OUTGOING_MESSAGE_EVENT:
        model = OutgoingChannelMessageCreated
    elif event_type in CHANNEL_ACCOUNT_EVENTS:
        model = ChannelAccountEvent
    else:
        return UnsupportedEvent(type=None if event_type is None else str(event_type), raw=body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidHubSpotPayload(f"{event_type}: {_summary(exc)}") from exc


def _decoded(raw: bytes | str | Mapping[str, Any] | list[Any]) -> Any:
    try:
        if not isinstance(raw, bytes | str):
            check_json(raw)
            return raw
        return load_json(raw)
    except InputRejected as exc:
        raise InvalidHubSpotPayload(str(exc)) from exc


def _summary(exc: ValidationError) -> str:
    """Which fields are wrong, without echoing their values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )

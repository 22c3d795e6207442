"""In-memory records of the sandbox HubSpot.

One `SandboxState` holds everything; routes mutate it from the single uvicorn event loop,
so no locking is needed. Ids are numeric strings (the OpenAPI files type `channelId` as
int32 and `channelAccountId` / `threadId` as int64 in paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.config import SandboxConfig
from whatsapp_helpdesk.sandbox.kit.state import EmulatorState, IdSequence

InboxType = Literal["INBOX", "HELP_DESK"]  # PublicInbox.type
Direction = Literal["INCOMING", "OUTGOING"]  # messageDirection of an egg, direction of a message


@dataclass
class Agent:
    user_id: int
    name: str
    email: str

    @property
    def actor_id(self) -> str:
        return f"A-{self.user_id}"


@dataclass
class Inbox:
    id: str
    name: str
    type: InboxType
    created_at: datetime


@dataclass
class Portal:
    id: int
    name: str
    domain: str
    inboxes: list[Inbox]
    agents: list[Agent]

    def help_desk_inbox(self) -> Inbox | None:
        return next((i for i in self.inboxes if i.type == "HELP_DESK"), None)

    def inbox(self, inbox_id: str) -> Inbox | None:
        return next((i for i in self.inboxes if i.id == inbox_id), None)

    def agent(self, user_id: int) -> Agent | None:
        return next((a for a in self.agents if a.user_id == user_id), None)


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    portal_id: int
    user_id: int
    scopes: list[str]
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    portal_id: int
    user_id: int
    scopes: list[str]
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    refresh_token: str
    portal_id: int
    user_id: int
    scopes: list[str]
    expires_at: float
    revoked: bool = False


@dataclass
class Channel:
    """A custom channel: registered once per app, shared by every portal (reference §1.1)."""

    id: str
    name: str
    capabilities: dict[str, Any]
    created_at: datetime
    webhook_url: str | None = None
    connection_redirect_url: str | None = None
    description: str | None = None
    logo_url: str | None = None
    archived: bool = False

    @property
    def threading_model(self) -> str:
        # Without the capability HubSpot uses its original model, integration thread ids
        # (changelog "Custom Channels API Is Now Live", reference §1.5).
        return str(
            self.capabilities.get("threadingModel") or constants.THREADING_INTEGRATION_THREAD_ID
        )

    @property
    def allows_outgoing(self) -> bool:
        return bool(self.capabilities.get("allowOutgoingMessages", True))


@dataclass
class DeliveryIdentifier:
    type: str
    value: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass
class ChannelAccount:
    id: str
    portal_id: int
    channel_id: str
    inbox_id: str
    name: str
    authorized: bool
    created_at: datetime
    delivery_identifier: DeliveryIdentifier | None = None
    archived: bool = False
    archived_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.authorized and not self.archived

    @property
    def is_live(self) -> bool:
        """Counts for the "Number already exists" check (R5)."""
        return self.authorized and not self.archived


@dataclass
class StagingToken:
    """HubSpot's channel-account staging token, made when an admin clicks "Connect"."""

    account_token: str
    portal_id: int
    channel_id: str
    inbox_id: str
    user_id: int
    created_at: datetime
    expires_at: float
    # Set by the integration's PATCH of the token, which connects it (once):
    used_at: datetime | None = None
    account_name: str | None = None  # the PATCH's accountName
    delivery_identifier: DeliveryIdentifier | None = None  # the PATCH's deliveryIdentifier
    channel_account_id: str | None = None  # the account it created


@dataclass
class Contact:
    id: str
    portal_id: int
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    @property
    def display_name(self) -> str:
        name = " ".join(
            part for part in (self.properties.get("firstname"), self.properties.get("lastname"))
            if part
        )
        return name or self.properties.get("phone") or self.properties.get("email") or self.id


@dataclass
class Ticket:
    id: str
    portal_id: int
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    contact_ids: list[str] = field(default_factory=list)
    thread_id: str | None = None
    archived: bool = False


@dataclass
class Participant:
    """A sender or recipient as stored on a message (PublicSender / PublicRecipient)."""

    delivery_identifier: DeliveryIdentifier | None
    actor_id: str | None = None
    name: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.actor_id is not None:
            body["actorId"] = self.actor_id
        if self.name:
            body["name"] = self.name
        if self.delivery_identifier is not None:
            body["deliveryIdentifier"] = self.delivery_identifier.as_json()
        return body


@dataclass
class Thread:
    id: str
    portal_id: int
    inbox_id: str
    channel_id: str
    channel_account_id: str
    customer: DeliveryIdentifier
    customer_name: str | None
    visitor_id: str
    created_at: datetime
    contact_id: str | None = None
    integration_thread_id: str | None = None
    status: Literal["OPEN", "CLOSED"] = "OPEN"
    closed_at: datetime | None = None
    ticket_id: str | None = None
    archived: bool = False

    @property
    def contact_actor_id(self) -> str:
        return f"V-{self.contact_id or self.visitor_id}"


@dataclass
class MessageStatus:
    status_type: str
    error_message: str | None = None


@dataclass
class Message:
    id: str
    portal_id: int
    thread_id: str
    channel_id: str
    channel_account_id: str
    direction: Direction
    text: str
    created_at: datetime
    created_by: str
    senders: list[Participant]
    recipients: list[Participant]
    client_type: Literal["HUBSPOT", "INTEGRATION"]
    sequence: int
    rich_text: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    status: MessageStatus | None = None  # None: an agent's reply still "sending" (R23)
    in_reply_to_id: str | None = None
    integration_idempotency_id: str | None = None  # not shown; finds a repeated POST (R14)
    updated_at: datetime | None = None  # the integration's last status PATCH (R23)


@dataclass
class DeliveryAttempt:
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass
class WebhookDelivery:
    """One event sent to a channel's webhookUrl, with every attempt (STYLE: Saleor's log)."""

    id: str
    event_type: str
    portal_id: int
    channel_id: str
    url: str | None
    payload: dict[str, Any]
    created_at: datetime
    state: Literal["pending", "delivered", "failed", "skipped"] = "pending"
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    last_request_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredFile:
    """A File Manager file (files-2026-03.json `File`); its bytes kept in memory."""

    id: str
    portal_id: int
    name: str
    extension: str
    folder_path: str
    access: str
    content_type: str
    content: bytes
    created_at: datetime


@dataclass
class SandboxState(EmulatorState[SandboxConfig]):
    config: SandboxConfig = field(default_factory=SandboxConfig)
    portals: dict[int, Portal] = field(default_factory=dict)
    auth_codes: dict[str, AuthorizationCode] = field(default_factory=dict)  # by the code
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)  # by the token
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)  # by the token
    channels: dict[str, Channel] = field(default_factory=dict)
    channel_accounts: dict[str, ChannelAccount] = field(default_factory=dict)
    staging_tokens: dict[str, StagingToken] = field(default_factory=dict)  # by accountToken
    contacts: dict[str, Contact] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    threads: dict[str, Thread] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    # Rolling rate-limit windows: portal id -> sandbox-clock times of counted requests.
    request_times: dict[int, list[float]] = field(default_factory=dict)
    channel_ids: IdSequence = field(default_factory=lambda: IdSequence(2930001))
    account_ids: IdSequence = field(default_factory=lambda: IdSequence(3307400001))
    thread_ids: IdSequence = field(default_factory=lambda: IdSequence(8765432001))
    contact_ids: IdSequence = field(default_factory=lambda: IdSequence(501))
    visitor_ids: IdSequence = field(default_factory=lambda: IdSequence(90000001))
    ticket_ids: IdSequence = field(default_factory=lambda: IdSequence(7000000001))
    fault_ids: IdSequence = field(default_factory=lambda: IdSequence(1))
    delivery_ids: IdSequence = field(default_factory=lambda: IdSequence(1))
    message_sequence: IdSequence = field(default_factory=lambda: IdSequence(1))
    file_ids: IdSequence = field(default_factory=lambda: IdSequence(190000000001))

    def portal_accounts(self, portal_id: int) -> list[ChannelAccount]:
        return [a for a in self.channel_accounts.values() if a.portal_id == portal_id]

    def portal_contacts(self, portal_id: int) -> list[Contact]:
        return [
            c for c in self.contacts.values() if c.portal_id == portal_id and not c.archived
        ]

    def portal_tickets(self, portal_id: int) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.portal_id == portal_id and not t.archived]

    def thread_messages(self, thread_id: str) -> list[Message]:
        """Messages of a thread in conversation order: message time, then arrival."""
        found = [m for m in self.messages.values() if m.thread_id == thread_id]
        return sorted(found, key=lambda m: (m.created_at, m.sequence))

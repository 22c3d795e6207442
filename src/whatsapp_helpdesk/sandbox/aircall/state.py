"""In-memory records of the Aircall sandbox: companies, numbers, webhooks, messages, calls.

Plain dataclasses; the JSON shapes Aircall shows live in `serializers.py`.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.kit.state import EmulatorState, IdSequence

Channel = Literal["whatsapp", "sms"]
Direction = Literal["inbound", "outbound"]


@dataclass
class Company:
    id: int
    name: str
    whatsapp_addon_active: bool
    api_id: str
    api_token: str


@dataclass
class User:
    id: int
    company_id: int
    name: str
    email: str
    created_at: datetime
    available: bool = True
    time_zone: str = "Europe/Paris"
    language: str = "en-US"


@dataclass
class Contact:
    id: int
    company_id: int
    first_name: str
    last_name: str
    phone_e164: str
    company_name: str | None = None
    email: str | None = None


@dataclass
class WhatsAppLine:
    """What `GET /v1/numbers/:id/whatsapp_status` reports (§A5)."""

    waba_id: str
    status: str  # ONLINE, PENDING, …
    can_send_message: bool
    messaging_limit_tier: str = "TIER_1K"
    quality_rating: str = "GREEN"
    business_verification_status: str = "VERIFIED"

    @property
    def usable(self) -> bool:
        return self.status == "ONLINE" and self.can_send_message


@dataclass
class Number:
    id: int
    company_id: int
    name: str
    e164: str
    country: str
    time_zone: str
    created_at: datetime
    sms: bool
    whatsapp: WhatsAppLine | None
    user_ids: list[int] = field(default_factory=list)
    open: bool = True
    deleted: bool = False


@dataclass
class Integration:
    """The OAuth installation of our app on one company (§A4)."""

    id: int
    company_id: int
    admin_user_id: int
    number_ids: list[int]
    installed: bool = False
    active: bool = True


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    company_id: int
    expires_at: datetime
    used: bool = False


@dataclass
class AccessToken:
    token: str
    company_id: int
    client_id: str
    created_at: datetime
    revoked: bool = False


@dataclass
class Webhook:
    webhook_id: str  # UUID (§A8.1)
    legacy_id: int  # the old numeric id, still accepted in paths
    company_id: int
    created_at: datetime
    url: str
    token: str
    events: list[str]
    custom_name: str | None
    created_by_token: str | None  # None = Basic key / Dashboard
    active: bool = True
    auto_disabled: bool = False
    consecutive_failures: int = 0


@dataclass
class MediaFile:
    file_name: str
    file_type: str
    key: str  # part of the presigned URL


@dataclass
class Message:
    id: str
    company_id: int
    number_id: int
    channel: Channel
    direction: Direction
    external_e164: str
    body: str
    status: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime
    type: str = "text"
    media: list[MediaFile] = field(default_factory=list)  # inbound files (media_details)
    media_urls: list[str] = field(default_factory=list)  # outbound MMS links (media_url)
    contact_id: int | None = None
    template_content: str | None = None
    whatsapp_message_type: str | None = None


@dataclass
class Template:
    """A WhatsApp message template of one number (§A6). `body` holds `{{1}}`-style slots;
    Aircall's documented listing does not show it, the customer's phone does."""

    id: int
    company_id: int
    number_id: int
    waba_id: str
    name: str
    category: str  # UTILITY, MARKETING, AUTHENTICATION
    status: str  # APPROVED, PENDING, PAUSED, REJECTED
    language: str
    body: str


@dataclass
class Call:
    id: int
    call_uuid: str
    company_id: int
    number_id: int
    external_e164: str
    outcome: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    status: str
    user_id: int | None
    contact_id: int | None
    voicemail_url: str | None = None


API_CALL_LOG_SIZE = 100_000


@dataclass(frozen=True)
class ApiCall:
    at: float  # sandbox UNIX seconds
    company_id: int
    method: str
    path: str
    rate_limited: bool  # answered 429


@dataclass
class RateWindow:
    started_at: float  # sandbox UNIX seconds
    count: int = 0


@dataclass
class SandboxState(EmulatorState[SandboxConfig]):
    """Everything the sandbox remembers; replaced wholesale on reset."""

    companies: dict[int, Company] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)
    numbers: dict[int, Number] = field(default_factory=dict)
    integrations: dict[int, Integration] = field(default_factory=dict)  # by company id
    authorization_codes: dict[str, AuthorizationCode] = field(default_factory=dict)  # by the code
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)  # by the token
    webhooks: dict[str, Webhook] = field(default_factory=dict)  # by webhook_id (UUID)
    messages: dict[str, Message] = field(default_factory=dict)
    calls: dict[int, Call] = field(default_factory=dict)
    templates: dict[int, Template] = field(default_factory=dict)
    media_by_key: dict[str, tuple[str, MediaFile]] = field(default_factory=dict)
    rate_windows: dict[int, RateWindow] = field(default_factory=dict)  # by company id
    # Every authenticated /v1 call (sandbox UNIX time, company, method and path), so
    # that a test or a benchmark can count what a company spent per window.
    api_calls: collections.deque[ApiCall] = field(
        default_factory=lambda: collections.deque(maxlen=API_CALL_LOG_SIZE))
    # (number id, customer E.164) -> time of the customer's last inbound WhatsApp message
    last_inbound_whatsapp: dict[tuple[int, str], datetime] = field(default_factory=dict)
    # One sequence for every record id the sandbox makes up.
    ids: IdSequence = field(default_factory=lambda: IdSequence(1))
    timestamp_format_flip: bool = False

    def live_numbers(self, company_id: int) -> list[Number]:
        return sorted(
            (n for n in self.numbers.values() if n.company_id == company_id and not n.deleted),
            key=lambda n: n.id,
        )

    def find_number(self, number_id: int, company_id: int | None = None) -> Number | None:
        number = self.numbers.get(number_id)
        if number is None or number.deleted:
            return None
        if company_id is not None and number.company_id != company_id:
            return None
        return number

    def find_contact(self, company_id: int, phone_e164: str) -> Contact | None:
        for contact in self.contacts.values():
            if contact.company_id == company_id and contact.phone_e164 == phone_e164:
                return contact
        return None

    def webhook_retired(self, webhook: Webhook) -> bool:
        """Created by an OAuth token that uninstall revoked: it gets nothing new, shows nowhere."""
        if webhook.created_by_token is None:
            return False
        token = self.access_tokens.get(webhook.created_by_token)
        return token is None or token.revoked

    def find_webhook(self, key: str) -> Webhook | None:
        """By UUID, or by the legacy numeric id (§A8.1)."""
        webhook = self.webhooks.get(key)
        if webhook is None and key.isdigit():
            webhook = next((w for w in self.webhooks.values() if w.legacy_id == int(key)), None)
        return webhook

    def messages_between(self, number_id: int, phone_e164: str) -> list[Message]:
        found = [
            m for m in self.messages.values()
            if m.number_id == number_id and m.external_e164 == phone_e164
        ]
        return sorted(found, key=lambda m: m.created_at)

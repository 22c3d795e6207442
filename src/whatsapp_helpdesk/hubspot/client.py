"""HubSpot's Custom Channels, Conversations and CRM APIs, as the bridge calls them.

Written against `shared/reference/hubspot-custom-channels.md` and HubSpot's OpenAPI files
(`shared/reference/hubspot-openapi/`), never against the sandbox, so the same code talks to
`https://api.hubapi.com`.

- `HubSpotDeveloperClient` registers the custom channel (R1): developer API key and app id.
- `HubSpotPortalClient` acts in one portal with that portal's OAuth access token: inboxes,
  the connection pop-up's staging token (R2, R4, R5), channel accounts, publishing messages
  (R11), delivery statuses (R23), contact search and native tickets (R35).

Every answer other than a 2xx becomes an error of `whatsapp_helpdesk.errors` (see
`hubspot_error`); every transport failure too. The request path is `http_transport.ProviderApi`.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import httpx

from whatsapp_helpdesk.errors import AuthExpired, AuthRevoked, DeliveryError, Permanent
from whatsapp_helpdesk.http_transport import (
    Clock,
    ProviderApi,
    body_excerpt,
    call,
    expect_json_object,
    hubspot_retry_after,
    json_object,
    missing_field,
    system_clock,
    temporary_error,
)
from whatsapp_helpdesk.hubspot.api_paths import (
    DEFAULT_API_VERSION,
    HubSpotPaths,
    hubspot_paths,
)
from whatsapp_helpdesk.pacing import Pacer

SERVICE: Final = "HubSpot"
DEFAULT_API_BASE: Final = "https://api.hubapi.com"

# Paths: `api_paths.HubSpotPaths`, one family per `HUBSPOT_API_VERSION` (R50).

# Pages asked for when following `paging.next.after`, and a bound on how many we follow (a
# cursor that never ends must not loop forever).
PAGE_LIMIT: Final = 100
MAX_PAGES: Final = 200

PHONE_IDENTIFIER: Final = "HS_PHONE_NUMBER"  # delivery identifier type (reference §1.4)

# HubSpot-defined association type "ticket to contact" (HubSpot's own SDK,
# `Hubspot::Helpers::AssociationType::TICKET_TO_CONTACT = 16`; the legacy associations
# overview gives 15 for the opposite direction, contact to ticket). A ticket created with an
# association to a contact goes from the ticket, hence 16.
TICKET_TO_CONTACT_ASSOCIATION_TYPE_ID: Final = 16

MessageDirection = Literal["INCOMING", "OUTGOING"]
# Only these three may be written back (reference §4.3; RECEIVED exists on read models only).
MessageStatus = Literal["SENT", "FAILED", "READ"]
WRITABLE_STATUSES: Final = frozenset({"SENT", "FAILED", "READ"})

# --- Staging-token errors (R5) -----------------------------------------------------------------
# The reference (§2.2) knows only that a 409 answers "already connected"; HubSpot's real
# subCategory strings are unknown [UNK]. These two are our best guess, in HubSpot's
# `CustomChannelsError.*` style, kept here and nowhere else.
SUBCATEGORY_NUMBER_EXISTS: Final = "CustomChannelsError.DELIVERY_IDENTIFIER_ALREADY_EXISTS"
SUBCATEGORY_TOKEN_USED: Final = "CustomChannelsError.STAGING_TOKEN_ALREADY_USED"
# A 409 whose message talks about the number (not about the token) is "number exists".
_NUMBER_WORDS = re.compile(r"delivery.?identifier|phone|number", re.IGNORECASE)

StagingTokenErrorKind = Literal["token_not_found", "number_exists", "token_used"]

STAGING_TOKEN_MESSAGES: Final[dict[str, str]] = {
    "token_not_found": (
        "Account token not found: this connection page stayed open too long and HubSpot's "
        "token expired. Close it and connect the channel again from HubSpot."
    ),
    "number_exists": (
        "Number already exists: this WhatsApp number is already connected to another "
        "HubSpot channel account. Disconnect it there first, or pick another number."
    ),
    "token_used": (
        "Same token created by another user: someone else in this HubSpot account used this "
        "connection request first. Close this page and connect the channel again from HubSpot."
    ),
}


class StagingTokenError(Permanent):
    """Completing HubSpot's channel-account staging token failed in one of R5's three ways."""

    def __init__(self, kind: StagingTokenErrorKind, *, status_code: int | None = None,
                 detail: str | None = None):
        super().__init__(STAGING_TOKEN_MESSAGES[kind], status_code=status_code, detail=detail)
        self.kind: StagingTokenErrorKind = kind


# --- Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    """What the custom channel looks like (R1); sent whole on create and on update."""

    name: str
    capabilities: Mapping[str, Any]
    webhook_url: str
    connection_redirect_url: str
    description: str
    logo_url: str

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capabilities": dict(self.capabilities),
            "webhookUrl": self.webhook_url,
            "channelAccountConnectionRedirectUrl": self.connection_redirect_url,
            "channelDescription": self.description,
            "channelLogoUrl": self.logo_url,
        }


# The channel of R1: phone-number delivery identifiers, outgoing messages allowed, plain text
# (no rich-text features), no outgoing attachments, and threads minted by us (R20 needs
# INTEGRATION_THREAD_ID). Keys per reference §1.3.
WHATSAPP_CHANNEL_CAPABILITIES: Final[Mapping[str, Any]] = {
    "deliveryIdentifierTypes": [PHONE_IDENTIFIER],
    "threadingModel": "INTEGRATION_THREAD_ID",
    "richText": [],
    "allowInlineImages": False,
    "allowOutgoingMessages": True,
    "allowConversationStart": False,
    "allowMultipleRecipients": False,
    "outgoingAttachmentTypes": [],
}


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    webhook_url: str | None
    connection_redirect_url: str | None
    capabilities: Mapping[str, Any]


@dataclass(frozen=True)
class Inbox:
    id: str
    name: str
    type: str | None  # "INBOX" or "HELP_DESK" (reference §2.1)


@dataclass(frozen=True)
class ChannelAccount:
    id: str
    channel_id: str
    inbox_id: str
    name: str
    authorized: bool
    active: bool
    archived: bool
    delivery_identifier: str | None  # E.164 value when its type is HS_PHONE_NUMBER


@dataclass(frozen=True)
class StagingToken:
    account_token: str = field(repr=False)
    channel_id: str
    inbox_id: str
    account_name: str | None
    delivery_identifier: str | None


@dataclass(frozen=True)
class PublishedMessage:
    message_id: str
    conversations_thread_id: str


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str | None


@dataclass(frozen=True)
class FileAttachment:
    """A `FILE` attachment of a published message (reference §4.3): a File Manager id."""

    file_id: str
    usage_type: str  # AUDIO | IMAGE | OTHER | STICKER | VOICE_RECORDING
    name: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "FILE", "fileId": self.file_id,
                                "fileUsageType": self.usage_type}
        if self.name:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class HubSpotMessage:
    id: str
    conversations_thread_id: str | None
    channel_account_id: str | None
    direction: str | None
    text: str | None
    status: str | None
    failure_message: str | None


@dataclass(frozen=True)
class CrmObject:
    """A contact or a ticket: its id and the properties HubSpot returned (strings)."""

    id: str
    properties: Mapping[str, str | None]


# --- Error mapping ------------------------------------------------------------------------------


def hubspot_error(response: httpx.Response, *, operation: str, now: datetime) -> DeliveryError:
    """The error for a non-2xx HubSpot answer.

    429 → RateLimited; 5xx → Retryable; 401 EXPIRED_AUTHENTICATION → AuthExpired; other
    401 and all 403 → AuthRevoked (403 MISSING_SCOPES names the scopes, R8); any other
    status → Permanent, with HubSpot's message, category and subCategory, raw body in detail.
    """
    status = response.status_code
    body = json_object(response)
    detail = body_excerpt(response)
    temporary = temporary_error(
        response, service=SERVICE, operation=operation, labels=_labels(body),
        retry_after=lambda: hubspot_retry_after(response.headers, body, now),
    )
    if temporary is not None:
        return temporary
    category = str(body.get("category") or "")
    if status == 401 and category == "EXPIRED_AUTHENTICATION":
        return AuthExpired(
            f"{SERVICE} access token expired while trying to {operation}; refresh it and retry.",
            status_code=status, detail=detail,
        )
    if status == 403 and category == "MISSING_SCOPES":
        scopes = missing_scopes_in(body)
        named = ", ".join(scopes) if scopes else "not named by HubSpot"
        return AuthRevoked(
            f"{SERVICE} refused to {operation}: the app lacks required scopes ({named}). "
            "Re-authorise the HubSpot installation to grant them.",
            status_code=status, detail=detail,
        )
    if status in (401, 403):
        return AuthRevoked(
            f"{SERVICE} refused our credentials while trying to {operation} "
            f"({status}{_labels(body)}): {_reason(body, response)}. "
            "Re-authorise the HubSpot installation.",
            status_code=status, detail=detail,
        )
    return Permanent(
        f"{SERVICE} refused to {operation} ({status}{_labels(body)}): {_reason(body, response)}",
        status_code=status, detail=detail,
    )


def missing_scopes_in(body: Mapping[str, Any]) -> list[str]:
    """Scope names from a MISSING_SCOPES body: `context.missingScopes` (OpenAPI Error example),
    or `requiredScopes` / `requiredGranularScopes` (seen on real answers), top level or in
    `errors[].context`."""
    contexts: list[Any] = [body.get("context")]
    errors = body.get("errors")
    if isinstance(errors, list):
        contexts += [e.get("context") for e in errors if isinstance(e, dict)]
    found: list[str] = []
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for key in ("missingScopes", "requiredScopes", "requiredGranularScopes"):
            values = context.get(key)
            if isinstance(values, list):
                found += [str(v) for v in values if str(v) not in found]
    return found


def staging_token_error(
    response: httpx.Response, *, operation: str, now: datetime
) -> DeliveryError:
    """R5's three failures of the staging-token PATCH; anything else as `hubspot_error`."""
    status = response.status_code
    if status not in (404, 409, 410):
        return hubspot_error(response, operation=operation, now=now)
    detail = body_excerpt(response)
    if status in (404, 410):
        return StagingTokenError("token_not_found", status_code=status, detail=detail)
    body = json_object(response)
    sub_category = str(body.get("subCategory") or "")
    if sub_category == SUBCATEGORY_NUMBER_EXISTS:
        return StagingTokenError("number_exists", status_code=status, detail=detail)
    if sub_category != SUBCATEGORY_TOKEN_USED and _NUMBER_WORDS.search(
        str(body.get("message") or "")
    ):
        return StagingTokenError("number_exists", status_code=status, detail=detail)
    return StagingTokenError("token_used", status_code=status, detail=detail)


def _labels(body: Mapping[str, Any]) -> str:
    labels = [str(body[k]) for k in ("category", "subCategory") if body.get(k)]
    return " " + "/".join(labels) if labels else ""


def _reason(body: Mapping[str, Any], response: httpx.Response) -> str:
    """HubSpot's own words: `message` (API errors) or `error_description` (OAuth errors)."""
    for key in ("message", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return response.reason_phrase or "no reason given"


# --- HubSpot's paths and paging (the request path: `http_transport.ProviderApi`) ----------


class _HubSpotApi(ProviderApi):
    def __init__(self, *, http: httpx.AsyncClient, api_base: str, clock: Clock,
                 headers: Mapping[str, str], params: Mapping[str, str] | None = None,
                 pacer: Pacer | None = None, api_version: str = DEFAULT_API_VERSION):
        super().__init__(service=SERVICE, http=http, api_base=api_base, errors=hubspot_error,
                         headers=headers, params=params, clock=clock, pacer=pacer)
        self._paths: HubSpotPaths = hubspot_paths(api_version)

    async def _paged(
        self, path: str, *, operation: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every result of a list endpoint, following `paging.next.after`."""
        results: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            query = {"limit": PAGE_LIMIT, **(params or {})}
            if after:
                query["after"] = after
            response = await self._request("GET", path, operation=operation, params=query)
            page = response_object(response, operation)
            results += [r for r in page.get("results") or [] if isinstance(r, dict)]
            after = _next_after(page)
            if not after:
                return results
        return results


def _next_after(page: Mapping[str, Any]) -> str | None:
    paging = page.get("paging")
    next_page = paging.get("next") if isinstance(paging, dict) else None
    after = next_page.get("after") if isinstance(next_page, dict) else None
    return str(after) if after else None


def response_object(
    response: httpx.Response, operation: str, *, reveal_body: bool = True
) -> dict[str, Any]:
    """A 2xx body that must be a JSON object (see `http_transport.expect_json_object`)."""
    return expect_json_object(response, service=SERVICE, operation=operation,
                              reveal_body=reveal_body)


def required_text(data: Mapping[str, Any], key: str, operation: str) -> str:
    """A field we cannot do without. Its absence means HubSpot's contract changed."""
    value = data.get(key)
    if value is None or value == "":
        raise missing_field(SERVICE, operation, key, data)
    return str(value)


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _identifier_value(data: Mapping[str, Any]) -> str | None:
    identifier = data.get("deliveryIdentifier")
    return _optional_text(identifier, "value") if isinstance(identifier, dict) else None


def _phone_identifier(e164: str) -> dict[str, str]:
    return {"type": PHONE_IDENTIFIER, "value": e164}


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as HubSpot writes its own timestamps."""
    if moment.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- Developer API (R1) -------------------------------------------------------------------------


class HubSpotDeveloperClient(_HubSpotApi):
    """Registers and updates the app's custom channel (reference §1).

    Auth: developer API key as `hapikey` and the app id as `appId`, both in the query (§1.1).
    """

    def __init__(
        self,
        *,
        developer_api_key: str,
        app_id: str,
        http: httpx.AsyncClient,
        api_base: str = DEFAULT_API_BASE,
        clock: Clock = system_clock,
        api_version: str = DEFAULT_API_VERSION,
    ):
        super().__init__(http=http, api_base=api_base, clock=clock, api_version=api_version,
                         headers={}, params={"hapikey": developer_api_key, "appId": str(app_id)})
        self._app_id = str(app_id)

    def __repr__(self) -> str:
        return (f"HubSpotDeveloperClient(app_id={self._app_id!r}, api_base={self._api_base!r}, "
                f"api_version={self._paths.version!r})")

    async def create_channel(self, spec: ChannelSpec) -> Channel:
        operation = "register the custom channel"
        response = await self._request(
            "POST", self._paths.channels_create, operation=operation, json=spec.body()
        )
        return _channel(response_object(response, operation), operation)

    async def update_channel(self, channel_id: str, spec: ChannelSpec) -> Channel:
        # The PATCH schema (v3 and 2026-03) requires all six keys (§1.2): send the whole spec.
        operation = "update the custom channel"
        response = await self._request(
            "PATCH", self._paths.channel(channel_id), operation=operation, json=spec.body()
        )
        return _channel(response_object(response, operation), operation)

    async def get_channel(self, channel_id: str) -> Channel:
        operation = "read the custom channel"
        response = await self._request("GET", self._paths.channel(channel_id), operation=operation)
        return _channel(response_object(response, operation), operation)

    async def list_channels(self) -> list[Channel]:
        operation = "list the app's custom channels"
        return [_channel(r, operation)
                for r in await self._paged(self._paths.channels_list, operation=operation)]


def _channel(data: Mapping[str, Any], operation: str) -> Channel:
    capabilities = data.get("capabilities")
    return Channel(
        id=required_text(data, "id", operation),
        name=str(data.get("name") or ""),
        webhook_url=_optional_text(data, "webhookUrl"),
        connection_redirect_url=_optional_text(data, "channelAccountConnectionRedirectUrl"),
        capabilities=capabilities if isinstance(capabilities, dict) else {},
    )


# --- Portal API (one installation's OAuth token) ----------------------------------------------


class HubSpotPortalClient(_HubSpotApi):
    """Acts in one HubSpot portal with its OAuth access token (`Authorization: Bearer`)."""

    def __init__(
        self,
        access_token: str,
        *,
        http: httpx.AsyncClient,
        api_base: str = DEFAULT_API_BASE,
        clock: Clock = system_clock,
        pacer: Pacer | None = None,
        api_version: str = DEFAULT_API_VERSION,
    ):
        super().__init__(http=http, api_base=api_base, clock=clock, pacer=pacer,
                         api_version=api_version,
                         headers={"Authorization": f"Bearer {access_token}"})

    def __repr__(self) -> str:
        return (f"HubSpotPortalClient(api_base={self._api_base!r}, "
                f"api_version={self._paths.version!r})")

    # Inboxes (reference §2.1: the help desk has its own inbox, type HELP_DESK)

    async def list_inboxes(self) -> list[Inbox]:
        operation = "list the inboxes"
        return [
            Inbox(id=required_text(r, "id", operation), name=str(r.get("name") or ""),
                  type=_optional_text(r, "type"))
            for r in await self._paged(self._paths.inboxes, operation=operation)
        ]

    # Connection pop-up (R2, R4, R5)

    async def complete_staging_token(
        self,
        channel_id: str,
        *,
        account_token: str,
        account_name: str,
        delivery_identifier_e164: str,
    ) -> StagingToken:
        """Give HubSpot's staging token the number and name of the channel account that
        HubSpot then creates (reference §2.2 B.4). Fails with `StagingTokenError` (R5)."""
        operation = "connect the number to HubSpot"
        response = await self._request(
            "PATCH",
            self._paths.staging_token(channel_id, account_token),
            operation=operation,
            json={
                "accountName": account_name,
                "deliveryIdentifier": _phone_identifier(delivery_identifier_e164),
            },
            errors=staging_token_error,
        )
        data = response_object(response, operation)
        return StagingToken(
            account_token=str(data.get("accountToken") or account_token),
            channel_id=str(data.get("genericChannelId") or channel_id),
            inbox_id=str(data.get("inboxId") or ""),
            account_name=_optional_text(data, "accountName"),
            delivery_identifier=_identifier_value(data),
        )

    # Channel accounts (reference §2.1)

    async def create_channel_account(
        self,
        channel_id: str,
        *,
        inbox_id: str,
        name: str,
        delivery_identifier_e164: str,
        authorized: bool = True,
    ) -> ChannelAccount:
        operation = "create the channel account"
        response = await self._request(
            "POST",
            self._paths.channel_accounts(channel_id),
            operation=operation,
            json={
                "inboxId": str(inbox_id),
                "name": name,
                "authorized": authorized,
                "deliveryIdentifier": _phone_identifier(delivery_identifier_e164),
            },
        )
        return _channel_account(response_object(response, operation), operation)

    async def get_channel_account(self, channel_id: str, channel_account_id: str) -> ChannelAccount:
        operation = "read the channel account"
        response = await self._request(
            "GET",
            self._paths.channel_account(channel_id, channel_account_id),
            operation=operation,
        )
        return _channel_account(response_object(response, operation), operation)

    async def list_channel_accounts(
        self,
        channel_id: str,
        *,
        delivery_identifier_e164: str | None = None,
        include_archived: bool = False,
    ) -> list[ChannelAccount]:
        operation = "list the channel accounts"
        params: dict[str, Any] = {}
        if delivery_identifier_e164 is not None:
            params["deliveryIdentifierType"] = PHONE_IDENTIFIER
            params["deliveryIdentifierValue"] = delivery_identifier_e164
        if include_archived:
            params["archived"] = "true"
        results = await self._paged(
            self._paths.channel_accounts(channel_id), operation=operation, params=params
        )
        return [_channel_account(r, operation) for r in results]

    async def update_channel_account(
        self,
        channel_id: str,
        channel_account_id: str,
        *,
        authorized: bool | None = None,
        name: str | None = None,
    ) -> ChannelAccount:
        """`authorized=False` disables the account (R6); `True` enables it again."""
        body: dict[str, Any] = {}
        if authorized is not None:
            body["authorized"] = authorized
        if name is not None:
            body["name"] = name
        if not body:
            raise ValueError("nothing to update: give authorized and/or name")
        operation = "update the channel account"
        response = await self._request(
            "PATCH",
            self._paths.channel_account(channel_id, channel_account_id),
            operation=operation,
            json=body,
        )
        return _channel_account(response_object(response, operation), operation)

    # Messages (reference §3, §4.3)

    async def publish_message(
        self,
        channel_id: str,
        *,
        channel_account_id: str,
        direction: MessageDirection,
        text: str,
        sender_e164: str,
        sender_name: str | None,
        recipient_e164: str,
        timestamp: datetime,
        idempotency_id: str,
        integration_thread_id: str,
        rich_text: str | None = None,
        attachments: tuple[FileAttachment, ...] = (),
    ) -> PublishedMessage:
        """Publish one message on the channel account (R11) as a `ChannelIntegrationMessageEgg`.

        `idempotency_id` is the provider's message id (R14); `integration_thread_id` is the
        ticket's thread id minted by the service (R20). The sender's company (R31) has no
        field in the message schema (`ChannelIntegrationParticipant` is deliveryIdentifier,
        name, senderActorId): `name` stays the person; see `update_contact_properties`.
        """
        if direction not in ("INCOMING", "OUTGOING"):
            raise ValueError(f"direction must be INCOMING or OUTGOING, not {direction!r}")
        sender: dict[str, Any] = {"deliveryIdentifier": _phone_identifier(sender_e164)}
        if sender_name:
            sender["name"] = sender_name
        body: dict[str, Any] = {
            "channelAccountId": str(channel_account_id),
            "messageDirection": direction,
            "text": text,
            "senders": [sender],
            "recipients": [{"deliveryIdentifier": _phone_identifier(recipient_e164)}],
            "timestamp": iso_utc(timestamp),
            "attachments": [a.body() for a in attachments],
            "integrationIdempotencyId": idempotency_id,
            "integrationThreadId": integration_thread_id,
        }
        if rich_text is not None:
            body["richText"] = rich_text
        operation = "publish the message"
        response = await self._request(
            "POST", self._paths.messages(channel_id), operation=operation, json=body
        )
        data = response_object(response, operation)
        return PublishedMessage(
            message_id=required_text(data, "id", operation),
            conversations_thread_id=required_text(data, "conversationsThreadId", operation),
        )

    # Files (R51; files-2026-03.json)

    async def upload_file(
        self, path: str, *, file_name: str, content_type: str, folder_path: str,
        overwrite_key: str,
    ) -> UploadedFile:
        """Upload the file at `path` (streamed from disk) to the File Manager, PRIVATE: only
        signed URLs reach it. `overwrite_key` names the file in `folder_path`, and HubSpot
        overwrites a file of the same path: a retry after a lost answer replaces the file it
        uploaded instead of adding a second one."""
        operation = "upload the file"
        options = {"access": "PRIVATE", "overwrite": True,
                   "duplicateValidationStrategy": "NONE"}
        with open(path, "rb") as stream:
            request = self._http.build_request(
                "POST", self._api_base + self._paths.files_upload,
                data={"folderPath": folder_path, "fileName": overwrite_key,
                      "options": _json.dumps(options)},
                files={"file": (file_name, stream, content_type)},
                headers=self._headers,
            )
            response = await call(self._http, request, service=SERVICE, operation=operation,
                                  errors=hubspot_error, clock=self._clock)
        data = response_object(response, operation)
        return UploadedFile(id=required_text(data, "id", operation),
                            name=_optional_text(data, "name"))

    async def update_message_status(
        self,
        channel_id: str,
        message_id: str,
        status: MessageStatus,
        error_message: str | None = None,
    ) -> None:
        """Report an agent reply's fate (R23): SENT, FAILED (with a reason a person
        understands) or READ."""
        if status not in WRITABLE_STATUSES:
            raise ValueError(f"status must be one of {sorted(WRITABLE_STATUSES)}, not {status!r}")
        body: dict[str, Any] = {"statusType": status}
        if error_message is not None:
            body["errorMessage"] = error_message
        await self._request(
            "PATCH",
            self._paths.message(channel_id, message_id),
            operation="update the message status",
            json=body,
        )

    async def get_message(self, channel_id: str, message_id: str) -> HubSpotMessage:
        operation = "read the message"
        response = await self._request(
            "GET", self._paths.message(channel_id, message_id),
            operation=operation,
        )
        data = response_object(response, operation)
        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        failure = status.get("failureDetails") if isinstance(status, dict) else None
        return HubSpotMessage(
            id=required_text(data, "id", operation),
            conversations_thread_id=_optional_text(data, "conversationsThreadId"),
            channel_account_id=_optional_text(data, "channelAccountId"),
            direction=_optional_text(data, "direction"),
            text=_optional_text(data, "text"),
            status=_optional_text(status, "statusType") if isinstance(status, dict) else None,
            failure_message=(
                _optional_text(failure, "errorMessage") if isinstance(failure, dict) else None
            ),
        )

    # CRM: contacts and native tickets (R30, R31, R35)

    async def search_contact_by_phone(self, e164: str) -> CrmObject | None:
        """The contact whose `phone` or `mobilephone` equals `e164`, or None.

        Two filter groups are OR-ed by HubSpot's search. Matches only numbers stored in the
        same E.164 form: HubSpot keeps phone properties as typed.
        """
        return await self._first_found(
            self._paths.contacts_search, "search the contact by phone",
            filter_groups=[
                {"filters": [{"propertyName": prop, "operator": "EQ", "value": e164}]}
                for prop in ("phone", "mobilephone")
            ],
            properties=["firstname", "lastname", "phone", "mobilephone", "company"],
        )

    async def update_contact_properties(
        self, contact_id: str, properties: Mapping[str, str]
    ) -> CrmObject:
        """Set properties on a contact, e.g. `{"company": name}`: the contact's own "Company
        name" text property, the documented place for a company that is *not* an
        association (R31)."""
        operation = "update the contact"
        response = await self._request(
            "PATCH", self._paths.contact(contact_id), operation=operation,
            json={"properties": dict(properties)},
        )
        return _crm_object(response_object(response, operation), operation)

    async def find_ticket_with_token(self, token: str) -> CrmObject | None:
        """The ticket whose `content` holds the word `token`, or None.

        HubSpot's tickets API takes no idempotency key: a ticket created by an attempt whose
        answer was lost is found again by a unique word its content carries. The search
        index trails writes by a few seconds, so this only helps a retry made later than
        that (a worker's lease, a backoff)."""
        return await self._first_found(
            self._paths.tickets_search, "search the ticket",
            filter_groups=[{"filters": [
                {"propertyName": "content", "operator": "CONTAINS_TOKEN", "value": token}]}],
            properties=["subject", "content"],
        )

    async def _first_found(
        self, path: str, operation: str, *, filter_groups: list[dict[str, Any]],
        properties: list[str],
    ) -> CrmObject | None:
        """The first result of a CRM search (`PublicObjectSearchRequest`), or None."""
        response = await self._request(
            "POST", path, operation=operation,
            json={"filterGroups": filter_groups, "properties": properties, "sorts": [],
                  "limit": 1, "after": "0"},
        )
        results = response_object(response, operation).get("results") or []
        first = next((r for r in results if isinstance(r, dict)), None)
        return None if first is None else _crm_object(first, operation)

    async def create_ticket(
        self, properties: Mapping[str, str], contact_id: str | None = None
    ) -> CrmObject:
        """Create a CRM ticket (native ticketing, R35), associated with the contact if given.

        `properties` must include what the portal requires (typically `subject`,
        `hs_pipeline`, `hs_pipeline_stage`); values are strings as the CRM API wants.
        """
        associations = []
        if contact_id is not None:
            associations.append({
                "to": {"id": str(contact_id)},
                "types": [{
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": TICKET_TO_CONTACT_ASSOCIATION_TYPE_ID,
                }],
            })
        operation = "create the ticket"
        response = await self._request(
            "POST", self._paths.tickets, operation=operation,
            json={"properties": dict(properties), "associations": associations},
        )
        return _crm_object(response_object(response, operation), operation)


def _channel_account(data: Mapping[str, Any], operation: str) -> ChannelAccount:
    return ChannelAccount(
        id=required_text(data, "id", operation),
        channel_id=str(data.get("channelId") or ""),
        inbox_id=str(data.get("inboxId") or ""),
        name=str(data.get("name") or ""),
        authorized=bool(data.get("authorized", False)),
        active=bool(data.get("active", False)),
        archived=bool(data.get("archived", False)),
        delivery_identifier=_identifier_value(data),
    )


def _crm_object(data: Mapping[str, Any], operation: str) -> CrmObject:
    properties = data.get("properties")
    return CrmObject(
        id=required_text(data, "id", operation),
        properties=(
            {str(k): None if v is None else str(v) for k, v in properties.items()}
            if isinstance(properties, dict) else {}
        ),
    )

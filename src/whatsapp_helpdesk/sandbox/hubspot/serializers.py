"""Records as HubSpot JSON (schemas named after the OpenAPI components they implement)."""

from __future__ import annotations

from typing import Any

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.clock import to_iso
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Channel,
    ChannelAccount,
    Contact,
    Inbox,
    Message,
    SandboxState,
    StagingToken,
    Thread,
    Ticket,
)


def channel_json(channel: Channel) -> dict[str, Any]:
    """`PublicChannelIntegrationChannel`."""
    body: dict[str, Any] = {
        "id": channel.id,
        "name": channel.name,
        "capabilities": channel.capabilities,
        "createdAt": to_iso(channel.created_at),
    }
    optional = {
        "webhookUrl": channel.webhook_url,
        "channelAccountConnectionRedirectUrl": channel.connection_redirect_url,
        "channelDescription": channel.description,
        "channelLogoUrl": channel.logo_url,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def account_json(account: ChannelAccount) -> dict[str, Any]:
    """`PublicChannelAccount`."""
    body: dict[str, Any] = {
        "id": account.id,
        "channelId": account.channel_id,
        "inboxId": account.inbox_id,
        "name": account.name,
        "active": account.active,
        "archived": account.archived,
        "authorized": account.authorized,
        "createdAt": to_iso(account.created_at),
    }
    if account.archived_at is not None:
        body["archivedAt"] = to_iso(account.archived_at)
    if account.delivery_identifier is not None:
        body["deliveryIdentifier"] = account.delivery_identifier.as_json()
    return body


def staging_token_json(token: StagingToken) -> dict[str, Any]:
    """`PublicChannelAccountStagingToken` (ids typed int32 in the spec)."""
    body: dict[str, Any] = {
        "accountToken": token.account_token,
        "createdAt": to_iso(token.created_at),
        "genericChannelId": int(token.channel_id),
        "inboxId": int(token.inbox_id),
        "userId": token.user_id,
    }
    if token.account_name is not None:
        body["accountName"] = token.account_name
    if token.delivery_identifier is not None:
        body["deliveryIdentifier"] = token.delivery_identifier.as_json()
    return body


def inbox_json(inbox: Inbox) -> dict[str, Any]:
    """`PublicInbox`."""
    return {
        "id": inbox.id,
        "name": inbox.name,
        "type": inbox.type,
        "archived": False,
        "createdAt": to_iso(inbox.created_at),
        "updatedAt": to_iso(inbox.created_at),
    }


def message_json(message: Message) -> dict[str, Any]:
    """`PublicConversationsMessage`."""
    body: dict[str, Any] = {
        "id": message.id,
        "type": "MESSAGE",
        "conversationsThreadId": message.thread_id,
        "channelId": message.channel_id,
        "channelAccountId": message.channel_account_id,
        "direction": message.direction,
        "senders": [s.as_json() for s in message.senders],
        "recipients": [r.as_json() for r in message.recipients],
        "text": message.text,
        "attachments": message.attachments,
        "createdAt": to_iso(message.created_at),
        "createdBy": message.created_by,
        "client": _client_json(message),
        "archived": False,
        "truncationStatus": "NOT_TRUNCATED",
    }
    if message.rich_text is not None:
        body["richText"] = message.rich_text
    if message.in_reply_to_id is not None:
        body["inReplyToId"] = message.in_reply_to_id
    if message.status is not None:
        status: dict[str, Any] = {"statusType": message.status.status_type}
        if message.status.status_type == "FAILED":
            failure: dict[str, Any] = {"errorMessageTokens": {}}
            if message.status.error_message is not None:
                failure["errorMessage"] = message.status.error_message
            status["failureDetails"] = failure
        body["status"] = status
    if message.updated_at is not None:
        body["updatedAt"] = to_iso(message.updated_at)
    return body


def _client_json(message: Message) -> dict[str, Any]:
    if message.client_type == "INTEGRATION":
        return {"clientType": "INTEGRATION", "integrationAppId": constants.APP_ID}
    return {"clientType": "HUBSPOT"}


def thread_json(state: SandboxState, thread: Thread, *, with_ticket: bool) -> dict[str, Any]:
    """`PublicThread`; `threadAssociations` only when asked with `association=TICKET`."""
    messages = state.thread_messages(thread.id)
    body: dict[str, Any] = {
        "id": thread.id,
        "inboxId": thread.inbox_id,
        "status": thread.status,
        # Before a contact exists HubSpot returns a visitor id here (spec description).
        "associatedContactId": thread.contact_id or thread.visitor_id,
        "originalChannelId": thread.channel_id,
        "originalChannelAccountId": thread.channel_account_id,
        "createdAt": to_iso(thread.created_at),
        "archived": thread.archived,
        "spam": False,
    }
    if messages:
        body["latestMessageTimestamp"] = to_iso(messages[-1].created_at)
        received = [m for m in messages if m.direction == "INCOMING"]
        sent = [m for m in messages if m.direction == "OUTGOING"]
        if received:
            body["latestMessageReceivedTimestamp"] = to_iso(received[-1].created_at)
        if sent:
            body["latestMessageSentTimestamp"] = to_iso(sent[-1].created_at)
    if thread.closed_at is not None:
        body["closedAt"] = to_iso(thread.closed_at)
    if with_ticket:
        associations: dict[str, Any] = {}
        if thread.ticket_id is not None:
            associations["associatedTicketId"] = thread.ticket_id
        body["threadAssociations"] = associations
    return body


def crm_object_json(
    record: Contact | Ticket,
    *,
    properties: list[str] | None,
    default_properties: tuple[str, ...],
    associations: dict[str, list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """`SimplePublicObject` / `SimplePublicObjectWithAssociations`.

    Like HubSpot, only the default properties (or those asked for) are returned.
    """
    wanted = properties if properties else list(default_properties)
    body: dict[str, Any] = {
        "id": record.id,
        "properties": {name: record.properties[name] for name in wanted
                       if name in record.properties},
        "createdAt": to_iso(record.created_at),
        "updatedAt": to_iso(record.updated_at),
        "archived": record.archived,
    }
    if associations:
        body["associations"] = {
            kind: {"results": results} for kind, results in associations.items()
        }
    return body

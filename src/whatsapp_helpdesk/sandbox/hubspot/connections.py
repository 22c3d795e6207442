"""Channel accounts and the in-HubSpot connection flow with staging tokens (R2–R6).

Flow (reference §2.2 B): an admin clicks "Connect a channel" in Help Desk settings; HubSpot
makes a staging token bound to the portal's help-desk inbox and opens the channel's
`channelAccountConnectionRedirectUrl` in a pop-up with the token; the integration PATCHes
the token with the chosen number; HubSpot creates the channel account and sends
CHANNEL_ACCOUNT_CREATED.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from whatsapp_helpdesk.sandbox.hubspot import constants, errors
from whatsapp_helpdesk.sandbox.hubspot.phone import check_delivery_identifier
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.serializers import account_json
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Channel,
    ChannelAccount,
    DeliveryIdentifier,
    StagingToken,
)
from whatsapp_helpdesk.sandbox.hubspot.webhooks import event_envelope


def live_channel(sandbox: Sandbox, channel_id: str) -> Channel:
    channel = sandbox.state.channels.get(channel_id)
    if channel is None or channel.archived:
        raise errors.not_found(f"Channel {channel_id} not found")
    return channel


def channel_and_account(
    sandbox: Sandbox, portal_id: int, channel_id: str, account_id: str, *, archived: bool = True
) -> tuple[Channel, ChannelAccount]:
    """The live channel, then the portal's account of it (other portals' accounts do not
    exist here): 404 for an unknown or archived channel first, then for the account."""
    channel = live_channel(sandbox, channel_id)
    account = sandbox.state.channel_accounts.get(account_id)
    if (
        account is None
        or account.portal_id != portal_id
        or account.channel_id != channel_id
        or (account.archived and not archived)
    ):
        raise errors.not_found(f"Channel account {account_id} not found")
    return channel, account


def ensure_identifier_free(
    sandbox: Sandbox, portal_id: int, channel_id: str, identifier: DeliveryIdentifier
) -> None:
    """R5 "Number already exists": one live account per identifier, channel and portal."""
    for account in sandbox.state.portal_accounts(portal_id):
        if (
            account.channel_id == channel_id
            and account.is_live
            and account.delivery_identifier is not None
            and account.delivery_identifier.value == identifier.value
        ):
            raise errors.conflict(
                constants.MESSAGE_NUMBER_ALREADY_EXISTS,
                sub_category=constants.SUBCATEGORY_DELIVERY_IDENTIFIER_EXISTS,
            )


def create_account(
    sandbox: Sandbox,
    *,
    portal_id: int,
    channel: Channel,
    inbox_id: str,
    name: str,
    authorized: bool,
    identifier: DeliveryIdentifier | None,
) -> ChannelAccount:
    portal = sandbox.state.portals[portal_id]
    if portal.inbox(inbox_id) is None:
        raise errors.validation_error(f"Inbox {inbox_id} not found in portal {portal_id}")
    if identifier is not None:
        check_delivery_identifier(identifier.type, identifier.value)
        ensure_identifier_free(sandbox, portal_id, channel.id, identifier)
    account = ChannelAccount(
        id=sandbox.state.account_ids.next(),
        portal_id=portal_id,
        channel_id=channel.id,
        inbox_id=inbox_id,
        name=name,
        authorized=authorized,
        created_at=sandbox.clock.now(),
        delivery_identifier=identifier,
    )
    sandbox.state.channel_accounts[account.id] = account
    return account


def update_account(
    sandbox: Sandbox, account: ChannelAccount, *, name: str | None, authorized: bool | None
) -> ChannelAccount:
    """PATCH an account; a real change is announced with CHANNEL_ACCOUNT_UPDATED."""
    changed = False
    if name is not None and name != account.name:
        account.name = name
        changed = True
    if authorized is not None and authorized != account.authorized:
        if authorized and account.delivery_identifier is not None:
            others = _other_live_accounts(sandbox, account)
            if any(o.delivery_identifier == account.delivery_identifier for o in others):
                raise errors.conflict(
                    constants.MESSAGE_NUMBER_ALREADY_EXISTS,
                    sub_category=constants.SUBCATEGORY_DELIVERY_IDENTIFIER_EXISTS,
                )
        account.authorized = authorized
        changed = True
    if changed:
        announce_account(sandbox, constants.EVENT_ACCOUNT_UPDATED, account)
    return account


def _other_live_accounts(sandbox: Sandbox, account: ChannelAccount) -> list[ChannelAccount]:
    return [
        o for o in sandbox.state.portal_accounts(account.portal_id)
        if o.id != account.id and o.channel_id == account.channel_id and o.is_live
    ]


def archive_account(sandbox: Sandbox, account: ChannelAccount) -> ChannelAccount:
    """An admin disconnects the account in HubSpot (R6): archived, then announced."""
    if not account.archived:
        account.archived = True
        account.archived_at = sandbox.clock.now()
        announce_account(sandbox, constants.EVENT_ACCOUNT_UPDATED, account)
    return account


def announce_account(sandbox: Sandbox, event_type: str, account: ChannelAccount) -> None:
    """CHANNEL_ACCOUNT_CREATED / _UPDATED.

    [INF] Payload: the common envelope + `channelAccountId` + the full `PublicChannelAccount`
    under `channelAccount`. The real shape is unknown (reference §10.2); this carries
    everything the integration could need, under the names HubSpot uses elsewhere.
    """
    channel = sandbox.state.channels[account.channel_id]
    payload: dict[str, Any] = {
        **event_envelope(sandbox, event_type, account.portal_id, account.channel_id),
        "channelAccountId": account.id,
        "channelAccount": account_json(account),
    }
    sandbox.webhooks.emit(channel, account.portal_id, payload)


# --- staging tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionStart:
    token: StagingToken
    popup_url: str
    return_url: str


def start_connection(
    sandbox: Sandbox, *, portal_id: int, channel_id: str, user_id: int
) -> ConnectionStart:
    """What HubSpot does when an admin picks the channel under "Connect a channel" (R2)."""
    portal = sandbox.state.portals.get(portal_id)
    if portal is None:
        raise errors.not_found(f"Portal {portal_id} not found")
    channel = live_channel(sandbox, channel_id)
    if not channel.connection_redirect_url:
        raise errors.validation_error(
            f"Channel {channel_id} has no channelAccountConnectionRedirectUrl"
        )
    inbox = portal.help_desk_inbox()
    if inbox is None:
        raise errors.validation_error(f"Portal {portal_id} has no help desk")
    if portal.agent(user_id) is None:
        raise errors.validation_error(f"User {user_id} is not a user of portal {portal_id}")
    now = sandbox.clock.now()
    token = StagingToken(
        account_token=secrets.token_urlsafe(24),
        portal_id=portal_id,
        channel_id=channel.id,
        inbox_id=inbox.id,
        user_id=user_id,
        created_at=now,
        expires_at=now.timestamp() + sandbox.config.staging_token_ttl_seconds,
    )
    sandbox.state.staging_tokens[token.account_token] = token
    return_url = (
        f"{sandbox.base_url}/help-desk/{portal_id}/settings/channels?"
        + urlencode({"connected": token.account_token})
    )
    # [UNK] Parameter names beyond accountToken / channelId / redirectUrl (reference §10.1).
    query = {
        "accountToken": token.account_token,
        "channelId": channel.id,
        "portalId": str(portal_id),
        "inboxId": inbox.id,
        "redirectUrl": return_url,
    }
    return ConnectionStart(
        token=token,
        popup_url=with_query(channel.connection_redirect_url, query),
        return_url=return_url,
    )


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def complete_connection(
    sandbox: Sandbox,
    *,
    portal_id: int,
    channel_id: str,
    account_token: str,
    account_name: str,
    identifier: DeliveryIdentifier,
) -> StagingToken:
    """The integration's PATCH of the staging token (R4, R5)."""
    token = sandbox.state.staging_tokens.get(account_token)
    expired = token is not None and sandbox.clock.unix() >= token.expires_at
    if token is None or token.portal_id != portal_id or token.channel_id != channel_id or (
        expired and token.used_at is None
    ):
        raise errors.not_found(constants.MESSAGE_ACCOUNT_TOKEN_NOT_FOUND)
    if token.used_at is not None:
        raise errors.conflict(
            constants.MESSAGE_STAGING_TOKEN_ALREADY_USED,
            sub_category=constants.SUBCATEGORY_STAGING_TOKEN_ALREADY_USED,
        )
    channel = live_channel(sandbox, channel_id)
    account = create_account(
        sandbox,
        portal_id=portal_id,
        channel=channel,
        inbox_id=token.inbox_id,
        name=account_name,
        authorized=True,
        identifier=identifier,
    )
    token.used_at = sandbox.clock.now()
    token.account_name = account_name
    token.delivery_identifier = identifier
    token.channel_account_id = account.id
    announce_account(sandbox, constants.EVENT_ACCOUNT_CREATED, account)
    return token

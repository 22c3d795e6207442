"""Custom Channels API v3 (conversations-custom-channels-v3.json, reference §1–§4).

Channel registration (create / list / read / update / archive) is app-level and uses the
developer API key (`hapikey`) with `appId`; everything under a channel is per portal and
uses the portal's OAuth bearer token. The spec lists create/list at
`/conversations/custom-channels/v3`; the guide and all known code use
`/conversations/v3/custom-channels` — both are served. Each route is mounted again at its
2026-03 path, `/conversations/custom-channels/2026-03/...` (versions.py, R50).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from whatsapp_helpdesk.sandbox.hubspot import connections, constants, errors, messaging
from whatsapp_helpdesk.sandbox.hubspot.auth import DeveloperKey, PortalAuth, SandboxDep, requires
from whatsapp_helpdesk.sandbox.hubspot.constants import SCOPE_CHANNELS_READ, SCOPE_CHANNELS_WRITE
from whatsapp_helpdesk.sandbox.hubspot.paging import collection
from whatsapp_helpdesk.sandbox.hubspot.parsing import json_object, parse_body, validate
from whatsapp_helpdesk.sandbox.hubspot.serializers import (
    account_json,
    channel_json,
    message_json,
    staging_token_json,
)
from whatsapp_helpdesk.sandbox.hubspot.state import Channel, DeliveryIdentifier

router = APIRouter()

READ_OR_WRITE = requires(SCOPE_CHANNELS_READ, SCOPE_CHANNELS_WRITE)
WRITE = requires(SCOPE_CHANNELS_WRITE)
READ = requires(SCOPE_CHANNELS_READ)

CHANNELS_PATHS = (
    "/conversations/v3/custom-channels",
    "/conversations/v3/custom-channels/",
    "/conversations/custom-channels/v3",
)


class ChannelCreateIn(BaseModel):
    """`PublicChannelIntegrationChannelCreate`."""

    name: str
    capabilities: dict[str, Any]
    webhookUrl: str | None = None
    channelAccountConnectionRedirectUrl: str | None = None
    channelDescription: str | None = None
    channelLogoUrl: str | None = None


class DeliveryIdentifierIn(BaseModel):
    type: str
    value: str

    def record(self) -> DeliveryIdentifier:
        return DeliveryIdentifier(self.type, self.value)


class AccountCreateIn(BaseModel):
    """`PublicChannelAccountEgg`."""

    inboxId: str
    name: str
    authorized: bool
    deliveryIdentifier: DeliveryIdentifierIn | None = None


class AccountUpdateIn(BaseModel):
    """`PublicChannelAccountUpdateRequest`."""

    name: str | None = None
    authorized: bool | None = None


class StagingTokenUpdateIn(BaseModel):
    """`PublicChannelAccountStagingTokenUpdateRequest` (both fields needed to connect)."""

    accountName: str = Field(min_length=1)
    deliveryIdentifier: DeliveryIdentifierIn


class MessageUpdateIn(BaseModel):
    """`PublicChannelIntegrationMessageUpdateRequest`."""

    statusType: Literal["SENT", "FAILED", "READ"]
    errorMessage: str | None = None


# --- channels (developer API key) ------------------------------------------------------------


async def create_channel(request: Request, sandbox: SandboxDep, _: None = DeveloperKey) -> Response:
    body = await parse_body(request, ChannelCreateIn)
    _check_capabilities(body.capabilities)
    channel = Channel(
        id=sandbox.state.channel_ids.next(),
        name=body.name,
        capabilities=body.capabilities,
        created_at=sandbox.clock.now(),
        webhook_url=body.webhookUrl,
        connection_redirect_url=body.channelAccountConnectionRedirectUrl,
        description=body.channelDescription,
        logo_url=body.channelLogoUrl,
    )
    sandbox.state.channels[channel.id] = channel
    location = f"{sandbox.base_url}/conversations/v3/custom-channels/{channel.id}"
    return JSONResponse(channel_json(channel), status_code=201, headers={"Location": location})


def _check_capabilities(capabilities: dict[str, Any]) -> None:
    """The one confirmed capability rule: identifier types are plain strings (§1.3)."""
    kinds = capabilities.get("deliveryIdentifierTypes", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise errors.validation_error(
            "deliveryIdentifierTypes must be a list of strings",
            sub_category="CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES",
        )
    model = capabilities.get("threadingModel")
    known = (constants.THREADING_INTEGRATION_THREAD_ID, constants.THREADING_DELIVERY_IDENTIFIER)
    if model is not None and model not in known:
        raise errors.validation_error(
            f"Unknown threadingModel {model!r}",
            sub_category="CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES",
        )


async def list_channels(
    request: Request, sandbox: SandboxDep, _: None = DeveloperKey
) -> dict[str, Any]:
    live = [channel_json(c) for c in sandbox.state.channels.values() if not c.archived]
    return collection(live, request)


for _path in CHANNELS_PATHS:
    router.add_api_route(_path, create_channel, methods=["POST"], include_in_schema=False)
    router.add_api_route(_path, list_channels, methods=["GET"], include_in_schema=False)


@router.get("/conversations/v3/custom-channels/{channel_id}")
async def get_channel(channel_id: str, sandbox: SandboxDep, _: None = DeveloperKey) -> Any:
    return channel_json(connections.live_channel(sandbox, channel_id))


@router.patch("/conversations/v3/custom-channels/{channel_id}")
async def patch_channel(
    channel_id: str, request: Request, sandbox: SandboxDep, _: None = DeveloperKey
) -> Any:
    """Partial update (the spec's schema says all six keys; clients send the full object)."""
    channel = connections.live_channel(sandbox, channel_id)
    body = await json_object(request)
    if "capabilities" in body:
        if not isinstance(body["capabilities"], dict):
            raise errors.validation_error("capabilities must be an object")
        _check_capabilities(body["capabilities"])
        channel.capabilities = body["capabilities"]
    text_fields = {
        "name": "name",
        "webhookUrl": "webhook_url",
        "channelAccountConnectionRedirectUrl": "connection_redirect_url",
        "channelDescription": "description",
        "channelLogoUrl": "logo_url",
    }
    for key, attribute in text_fields.items():
        if key in body:
            if body[key] is not None and not isinstance(body[key], str):
                raise errors.validation_error(f"{key} must be a string")
            setattr(channel, attribute, body[key])
    return channel_json(channel)


@router.delete("/conversations/v3/custom-channels/{channel_id}", status_code=204)
async def archive_channel(channel_id: str, sandbox: SandboxDep, _: None = DeveloperKey) -> Response:
    connections.live_channel(sandbox, channel_id).archived = True
    return Response(status_code=204)


# --- channel accounts (portal OAuth) --------------------------------------------------------

ACCOUNTS = "/conversations/v3/custom-channels/{channel_id}/channel-accounts"


@router.post(ACCOUNTS)
async def create_account(
    channel_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = READ_OR_WRITE
) -> Response:
    channel = connections.live_channel(sandbox, channel_id)
    body = await parse_body(request, AccountCreateIn)
    account = connections.create_account(
        sandbox,
        portal_id=auth.portal_id,
        channel=channel,
        inbox_id=body.inboxId,
        name=body.name,
        authorized=body.authorized,
        identifier=body.deliveryIdentifier.record() if body.deliveryIdentifier else None,
    )
    location = f"{sandbox.base_url}{ACCOUNTS.format(channel_id=channel.id)}/{account.id}"
    return JSONResponse(account_json(account), status_code=201, headers={"Location": location})


@router.get(ACCOUNTS)
async def list_accounts(
    channel_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = READ_OR_WRITE
) -> Any:
    connections.live_channel(sandbox, channel_id)
    params = request.query_params
    archived = params.get("archived", "false").lower() == "true"
    kinds = set(params.getlist("deliveryIdentifierType"))
    values = set(params.getlist("deliveryIdentifierValue"))
    accounts = [
        a for a in sandbox.state.portal_accounts(auth.portal_id)
        if a.channel_id == channel_id
        and a.archived == archived
        and (not kinds or (a.delivery_identifier and a.delivery_identifier.type in kinds))
        and (not values or (a.delivery_identifier and a.delivery_identifier.value in values))
    ]
    accounts.sort(key=lambda a: int(a.id))
    return collection([account_json(a) for a in accounts], request)


@router.get(ACCOUNTS + "/{account_id}")
async def get_account(
    channel_id: str, account_id: str, request: Request, sandbox: SandboxDep,
    auth: PortalAuth = READ_OR_WRITE,
) -> Any:
    include_archived = request.query_params.get("archived", "false").lower() == "true"
    _, account = connections.channel_and_account(
        sandbox, auth.portal_id, channel_id, account_id, archived=include_archived
    )
    return account_json(account)


@router.patch(ACCOUNTS + "/{account_id}")
async def patch_account(
    channel_id: str, account_id: str, request: Request, sandbox: SandboxDep,
    auth: PortalAuth = READ_OR_WRITE,
) -> Any:
    _, account = connections.channel_and_account(sandbox, auth.portal_id, channel_id, account_id)
    body = await parse_body(request, AccountUpdateIn)
    connections.update_account(sandbox, account, name=body.name, authorized=body.authorized)
    return account_json(account)


@router.patch(
    "/conversations/v3/custom-channels/{channel_id}/channel-account-staging-tokens/{account_token}"
)
async def patch_staging_token(
    channel_id: str, account_token: str, request: Request, sandbox: SandboxDep,
    auth: PortalAuth = READ_OR_WRITE,
) -> Any:
    body = await parse_body(request, StagingTokenUpdateIn)
    token = connections.complete_connection(
        sandbox, portal_id=auth.portal_id, channel_id=channel_id, account_token=account_token,
        account_name=body.accountName, identifier=body.deliveryIdentifier.record(),
    )
    return staging_token_json(token)


# --- messages ------------------------------------------------------------------------------

MESSAGES = "/conversations/v3/custom-channels/{channel_id}/messages"


@router.post(MESSAGES)
async def publish_message(
    channel_id: str, request: Request, sandbox: SandboxDep, auth: PortalAuth = WRITE
) -> Response:
    """201 with the new message; 200 with the earlier one for a repeated idempotency id."""
    payload = await json_object(request)
    egg = validate(payload, messaging.MessageEgg)
    published = messaging.publish(sandbox, portal_id=auth.portal_id, channel_id=channel_id, egg=egg)
    message = published.message
    if not published.created:
        return JSONResponse(message_json(message), status_code=200)
    location = f"{sandbox.base_url}{MESSAGES.format(channel_id=channel_id)}/{message.id}"
    return JSONResponse(message_json(message), status_code=201, headers={"Location": location})


@router.get(MESSAGES + "/{message_id}")
async def get_message(
    channel_id: str, message_id: str, sandbox: SandboxDep, auth: PortalAuth = READ
) -> Any:
    return message_json(messaging.portal_message(sandbox, auth.portal_id, channel_id, message_id))


@router.patch(MESSAGES + "/{message_id}")
async def patch_message(
    channel_id: str, message_id: str, request: Request, sandbox: SandboxDep,
    auth: PortalAuth = WRITE,
) -> Any:
    body = await parse_body(request, MessageUpdateIn)
    message = messaging.portal_message(sandbox, auth.portal_id, channel_id, message_id)
    messaging.set_status(
        sandbox, message, status_type=body.statusType, error_message=body.errorMessage
    )
    return message_json(message)

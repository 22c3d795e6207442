"""HubSpot clients: the exact requests they send (each one checked against HubSpot's OpenAPI
files) and how every failure maps onto the error tree (R44, R5, R8, R23, R35)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from _http_double import FakeNetwork, fixed_clock, json_of, query_of
from openapi_hubspot import PATH_ALIASES, check_request, spec_file_for

from whatsapp_helpdesk.errors import (
    AuthExpired,
    AuthRevoked,
    Permanent,
    RateLimited,
    Retryable,
)
from whatsapp_helpdesk.hubspot import (
    WHATSAPP_CHANNEL_CAPABILITIES,
    ChannelSpec,
    HubSpotDeveloperClient,
    HubSpotPortalClient,
    StagingTokenError,
)
from whatsapp_helpdesk.hubspot.api_paths import API_VERSIONS

pytestmark = pytest.mark.anyio

API = "https://api.hubapi.com"
CHANNEL_ID = "2930388"
ACCOUNT_ID = "3307400689"
ACCESS_TOKEN = "portal-access-token-123"
DEV_KEY = "developer-key-456"
BUSINESS = "+33176360695"
CUSTOMER = "+33612345678"

SPEC = ChannelSpec(
    name="WhatsApp with Aircall",
    capabilities=WHATSAPP_CHANNEL_CAPABILITIES,
    webhook_url="https://bridge.example.com/hubspot/webhook",
    connection_redirect_url="https://bridge.example.com/hubspot/connect",
    description="Answer WhatsApp messages of your Aircall numbers from the help desk.",
    logo_url="https://bridge.example.com/static/logo.png",
)
CHANNEL = {
    "id": CHANNEL_ID, "name": SPEC.name, "createdAt": "2026-01-01T09:00:00Z",
    "webhookUrl": SPEC.webhook_url, "channelAccountConnectionRedirectUrl":
    SPEC.connection_redirect_url, "capabilities": dict(WHATSAPP_CHANNEL_CAPABILITIES),
}
ACCOUNT = {
    "id": ACCOUNT_ID, "channelId": CHANNEL_ID, "inboxId": "1431487401", "name": "Support",
    "active": True, "archived": False, "authorized": True, "createdAt": "2026-01-01T09:00:00Z",
    "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS},
}
MESSAGE = {"id": "msg-1", "conversationsThreadId": "8765432100", "type": "MESSAGE"}


@dataclass(frozen=True)
class Want:
    """The paths a client must call for one API version, copied from HubSpot's OpenAPI files
    (not from the bridge's mapping, so a wrong mapping fails here) (R50)."""

    version: str
    channels_create: str
    channels_list: str
    channel: str  # the channel's own path, CHANNEL_ID included
    crm: str  # prefix of the CRM objects
    spec_version: str  # the version the OpenAPI file checking each request must be


WANT = {
    "2026-03": Want("2026-03", "/conversations/custom-channels/2026-03",
                    "/conversations/custom-channels/2026-03",
                    f"/conversations/custom-channels/2026-03/{CHANNEL_ID}",
                    "/crm/objects/2026-03", "2026-03"),
    "v3": Want("v3", "/conversations/v3/custom-channels", "/conversations/v3/custom-channels/",
               f"/conversations/v3/custom-channels/{CHANNEL_ID}", "/crm/v3/objects", "v3"),
}


@pytest.fixture(params=API_VERSIONS)
def api_version(request: pytest.FixtureRequest) -> str:
    """Every test of this file runs on both of HubSpot's API versions (R50)."""
    return str(request.param)


@pytest.fixture
def want(api_version: str) -> Want:
    return WANT[api_version]


@pytest.fixture(autouse=True)
def every_request_fits_hubspot_openapi(network: FakeNetwork, want: Want) -> Iterator[None]:
    """Each request against HubSpot's OpenAPI files (parameters, body) of the version in use
    (R50), and its credentials: the shared check leaves security out, so it is checked here."""
    yield
    assert network.requests, "the test sent nothing"
    for request in network.requests:
        check_request(request)
        spec = spec_file_for(PATH_ALIASES.get(request.url.path, request.url.path))
        # Inboxes: no date-versioned Conversations file is published (see api_paths).
        assert spec == "conversations-v3.json" or want.spec_version in spec, (request.url, spec)
        developer_key = request.url.params.get("hapikey") == DEV_KEY
        bearer = request.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}"
        assert developer_key != bearer, "exactly one credential: developer key or bearer"


@pytest.fixture
def developer(http: httpx.AsyncClient, api_version: str) -> HubSpotDeveloperClient:
    return HubSpotDeveloperClient(
        developer_api_key=DEV_KEY, app_id="1001", http=http, api_base=API, clock=fixed_clock,
        api_version=api_version,
    )


@pytest.fixture
def portal(http: httpx.AsyncClient, api_version: str) -> HubSpotPortalClient:
    return HubSpotPortalClient(ACCESS_TOKEN, http=http, api_base=API, clock=fixed_clock,
                               api_version=api_version)


def assert_bearer(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def publish(portal: HubSpotPortalClient, **overrides: object) -> object:
    arguments: dict[str, object] = {
        "channel_account_id": ACCOUNT_ID,
        "direction": "INCOMING",
        "text": "Hi, my order hasn't arrived",
        "sender_e164": CUSTOMER,
        "sender_name": "Jane Doe",
        "recipient_e164": BUSINESS,
        "timestamp": datetime(2026, 1, 1, 10, 15, tzinfo=UTC),
        "idempotency_id": "aircall-msg-9f2c1",
        "integration_thread_id": "thread-1",
    }
    arguments.update(overrides)
    return await portal.publish_message(CHANNEL_ID, **arguments)  # type: ignore[arg-type]


# --- Developer API: the channel (R1) -------------------------------------------------------------


async def test_r1_create_channel_posts_the_whole_spec_with_developer_key(
    want: Want, 
    network: FakeNetwork, developer: HubSpotDeveloperClient
) -> None:
    network.reply(201, CHANNEL)
    channel = await developer.create_channel(SPEC)
    request = network.last
    assert request.method == "POST"
    assert request.url.path == want.channels_create
    assert query_of(request) == {"hapikey": DEV_KEY, "appId": "1001"}
    assert "authorization" not in request.headers
    assert json_of(request) == {
        "name": "WhatsApp with Aircall",
        "capabilities": {
            "deliveryIdentifierTypes": ["HS_PHONE_NUMBER"],
            "threadingModel": "INTEGRATION_THREAD_ID",
            "richText": [],
            "allowInlineImages": False,
            "allowOutgoingMessages": True,
            "allowConversationStart": False,
            "allowMultipleRecipients": False,
            "outgoingAttachmentTypes": [],
        },
        "webhookUrl": SPEC.webhook_url,
        "channelAccountConnectionRedirectUrl": SPEC.connection_redirect_url,
        "channelDescription": SPEC.description,
        "channelLogoUrl": SPEC.logo_url,
    }
    assert channel.id == CHANNEL_ID
    assert channel.webhook_url == SPEC.webhook_url
    assert channel.connection_redirect_url == SPEC.connection_redirect_url


async def test_update_channel_patches_all_six_keys(
    want: Want, 
    network: FakeNetwork, developer: HubSpotDeveloperClient
) -> None:
    network.reply(200, CHANNEL)
    await developer.update_channel(CHANNEL_ID, SPEC)
    request = network.last
    assert (request.method, request.url.path) == (
        "PATCH", f"{want.channel}"
    )
    assert query_of(request) == {"hapikey": DEV_KEY, "appId": "1001"}
    assert json_of(request) == SPEC.body()


async def test_get_channel(
    want: Want, network: FakeNetwork, developer: HubSpotDeveloperClient) -> None:
    network.reply(200, CHANNEL)
    channel = await developer.get_channel(CHANNEL_ID)
    assert (network.last.method, network.last.url.path) == (
        "GET", f"{want.channel}"
    )
    assert channel.capabilities["threadingModel"] == "INTEGRATION_THREAD_ID"


async def test_list_channels_follows_the_paging_cursor(
    want: Want, 
    network: FakeNetwork, developer: HubSpotDeveloperClient
) -> None:
    network.reply(200, {"results": [CHANNEL], "total": 2,
                        "paging": {"next": {"after": "cursor-2"}}})
    network.reply(200, {"results": [{**CHANNEL, "id": "2930389"}], "total": 2})
    channels = await developer.list_channels()
    assert [c.id for c in channels] == [CHANNEL_ID, "2930389"]
    first, second = network.requests
    assert first.url.path == want.channels_list
    assert query_of(first) == {"hapikey": DEV_KEY, "appId": "1001", "limit": "100"}
    assert query_of(second) == {"hapikey": DEV_KEY, "appId": "1001", "limit": "100",
                                "after": "cursor-2"}


async def test_developer_key_never_appears_in_errors_or_repr(
    network: FakeNetwork, developer: HubSpotDeveloperClient
) -> None:
    network.fail_with(httpx.ConnectError)
    network.reply(400, {"message": "bad", "category": "VALIDATION_ERROR"})
    for _ in range(2):
        with pytest.raises(Exception) as caught:
            await developer.get_channel(CHANNEL_ID)
        assert DEV_KEY not in str(caught.value)
        assert DEV_KEY not in (getattr(caught.value, "detail", None) or "")
    assert DEV_KEY not in repr(developer)


# --- Portal API: inboxes, staging token, channel accounts -----------------------------------------


async def test_list_inboxes_reads_every_page(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"results": [{"id": "1", "name": "Inbox", "type": "INBOX"}],
                        "paging": {"next": {"after": "2"}}})
    network.reply(200, {"results": [{"id": "1431487401", "name": "Help Desk",
                                     "type": "HELP_DESK"}]})
    inboxes = await portal.list_inboxes()
    assert [(i.id, i.type) for i in inboxes] == [("1", "INBOX"), ("1431487401", "HELP_DESK")]
    assert network.requests[0].url.path == "/conversations/v3/conversations/inboxes"
    assert query_of(network.requests[1]) == {"limit": "100", "after": "2"}
    assert_bearer(network.requests[0])


async def test_r4_complete_staging_token_patches_name_and_number(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {
        "accountToken": "tok/with?odd chars", "createdAt": "2026-01-01T09:00:00Z",
        "genericChannelId": int(CHANNEL_ID), "inboxId": 1431487401, "userId": 7,
        "accountName": "Support", "deliveryIdentifier": {"type": "HS_PHONE_NUMBER",
                                                          "value": BUSINESS},
    })
    token = await portal.complete_staging_token(
        CHANNEL_ID, account_token="tok/with?odd chars", account_name="Support",
        delivery_identifier_e164=BUSINESS,
    )
    request = network.last
    assert request.method == "PATCH"
    assert request.url.raw_path.decode() == (
        f"{want.channel}"
        "/channel-account-staging-tokens/tok%2Fwith%3Fodd%20chars"
    )
    assert json_of(request) == {
        "accountName": "Support",
        "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS},
    }
    assert_bearer(request)
    assert (token.channel_id, token.inbox_id, token.delivery_identifier) == (
        CHANNEL_ID, "1431487401", BUSINESS
    )
    assert "tok/with" not in repr(token)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, {"message": "Staging token not found", "category": "OBJECT_NOT_FOUND"},
         "token_not_found"),
        (410, {"message": "gone"}, "token_not_found"),
        (409, {"message": "Conflict", "category": "CONFLICT",
               "subCategory": "CustomChannelsError.DELIVERY_IDENTIFIER_ALREADY_EXISTS"},
         "number_exists"),
        (409, {"message": "A channel account with this delivery identifier already exists",
               "category": "CONFLICT"}, "number_exists"),
        (409, {"message": "Staging token already used", "category": "CONFLICT",
               "subCategory": "CustomChannelsError.STAGING_TOKEN_ALREADY_USED"}, "token_used"),
        (409, {"message": "Conflict", "category": "CONFLICT"}, "token_used"),
        (409, {}, "token_used"),
    ],
)
async def test_r5_staging_token_errors_have_their_own_kind_and_message(
    network: FakeNetwork, portal: HubSpotPortalClient, status: int, body: dict[str, str],
    kind: str,
) -> None:
    network.reply(status, body)
    with pytest.raises(StagingTokenError) as caught:
        await portal.complete_staging_token(
            CHANNEL_ID, account_token="tok", account_name="Support",
            delivery_identifier_e164=BUSINESS,
        )
    error = caught.value
    assert isinstance(error, Permanent)
    assert error.kind == kind
    assert error.status_code == status
    expected_words = {
        "token_not_found": "Account token not found",
        "number_exists": "Number already exists",
        "token_used": "Same token created by another user",
    }
    assert error.message.startswith(expected_words[kind])


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (401, {"category": "EXPIRED_AUTHENTICATION", "message": "expired"}, AuthExpired),
        (403, {"category": "MISSING_SCOPES", "message": "scopes"}, AuthRevoked),
        (500, {"message": "oops"}, Retryable),
        (400, {"category": "VALIDATION_ERROR", "message": "bad identifier"}, Permanent),
    ],
)
async def test_staging_token_other_failures_keep_their_general_meaning(
    network: FakeNetwork, portal: HubSpotPortalClient, status: int, body: dict[str, str],
    error_class: type[Exception],
) -> None:
    network.reply(status, body)
    with pytest.raises(error_class) as caught:
        await portal.complete_staging_token(
            CHANNEL_ID, account_token="tok", account_name="Support",
            delivery_identifier_e164=BUSINESS,
        )
    assert not isinstance(caught.value, StagingTokenError)


async def test_create_channel_account(
    want: Want, network: FakeNetwork, portal: HubSpotPortalClient) -> None:
    network.reply(201, ACCOUNT)
    account = await portal.create_channel_account(
        CHANNEL_ID, inbox_id="1431487401", name="Support", delivery_identifier_e164=BUSINESS
    )
    request = network.last
    assert (request.method, request.url.path) == (
        "POST", f"{want.channel}/channel-accounts"
    )
    assert json_of(request) == {
        "inboxId": "1431487401", "name": "Support", "authorized": True,
        "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS},
    }
    assert_bearer(request)
    assert account.id == ACCOUNT_ID
    assert account.delivery_identifier == BUSINESS
    assert account.authorized and account.active and not account.archived


async def test_get_channel_account(
    want: Want, network: FakeNetwork, portal: HubSpotPortalClient) -> None:
    network.reply(200, ACCOUNT)
    account = await portal.get_channel_account(CHANNEL_ID, ACCOUNT_ID)
    assert network.last.url.path == (
        f"{want.channel}/channel-accounts/{ACCOUNT_ID}"
    )
    assert account.inbox_id == "1431487401"


async def test_list_channel_accounts_filters_by_number(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"results": [ACCOUNT], "total": 1})
    accounts = await portal.list_channel_accounts(
        CHANNEL_ID, delivery_identifier_e164=BUSINESS, include_archived=True
    )
    assert [a.id for a in accounts] == [ACCOUNT_ID]
    assert query_of(network.last) == {
        "limit": "100", "deliveryIdentifierType": "HS_PHONE_NUMBER",
        "deliveryIdentifierValue": BUSINESS, "archived": "true",
    }


async def test_r6_update_channel_account_deauthorises(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {**ACCOUNT, "authorized": False})
    account = await portal.update_channel_account(CHANNEL_ID, ACCOUNT_ID, authorized=False)
    request = network.last
    assert (request.method, request.url.path) == (
        "PATCH", f"{want.channel}/channel-accounts/{ACCOUNT_ID}"
    )
    assert json_of(request) == {"authorized": False}
    assert account.authorized is False
    with pytest.raises(ValueError):
        await portal.update_channel_account(CHANNEL_ID, ACCOUNT_ID)


# --- Messages -------------------------------------------------------------------------------------


async def test_r11_publish_message_sends_a_channel_integration_message_egg(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, MESSAGE)
    paris = timezone(timedelta(hours=1))
    result = await publish(portal, timestamp=datetime(2026, 1, 1, 11, 15, 30, 250000, paris))
    request = network.last
    assert (request.method, request.url.path) == (
        "POST", f"{want.channel}/messages"
    )
    assert_bearer(request)
    assert json_of(request) == {
        "channelAccountId": ACCOUNT_ID,
        "messageDirection": "INCOMING",
        "text": "Hi, my order hasn't arrived",
        "senders": [{"name": "Jane Doe",
                     "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": CUSTOMER}}],
        "recipients": [{"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS}}],
        "timestamp": "2026-01-01T10:15:30.250Z",
        "attachments": [],
        "integrationIdempotencyId": "aircall-msg-9f2c1",
        "integrationThreadId": "thread-1",
    }
    assert result.message_id == "msg-1"  # type: ignore[attr-defined]
    assert result.conversations_thread_id == "8765432100"  # type: ignore[attr-defined]


async def test_r30_publish_without_a_known_name_sends_only_the_number(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, MESSAGE)
    await publish(portal, sender_name=None, rich_text="<p>Hi</p>", direction="OUTGOING")
    body = json_of(network.last)
    assert body["senders"] == [
        {"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": CUSTOMER}}
    ]
    assert body["richText"] == "<p>Hi</p>"
    assert body["messageDirection"] == "OUTGOING"


async def test_publish_refuses_naive_timestamps_and_odd_directions(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    with pytest.raises(ValueError):
        await publish(portal, timestamp=datetime(2026, 1, 1, 10, 15))
    with pytest.raises(ValueError):
        await publish(portal, direction="SIDEWAYS")
    network.reply(201, MESSAGE)  # the autouse check needs one real request
    await publish(portal)


async def test_publish_answer_without_thread_id_is_permanent(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, {"id": "msg-1"})
    with pytest.raises(Permanent, match="conversationsThreadId"):
        await publish(portal)


async def test_publish_answer_that_is_not_json_is_retryable(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, content=b"<html>proxy</html>")
    with pytest.raises(Retryable):
        await publish(portal)


@pytest.mark.parametrize(
    ("status", "error_message", "expected"),
    [
        ("SENT", None, {"statusType": "SENT"}),
        ("READ", None, {"statusType": "READ"}),
        ("FAILED", "The 24-hour window is closed.",
         {"statusType": "FAILED", "errorMessage": "The 24-hour window is closed."}),
    ],
)
async def test_r23_update_message_status(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient, status: str, error_message: str | None,
    expected: dict[str, str],
) -> None:
    network.reply(200, MESSAGE)
    await portal.update_message_status(CHANNEL_ID, "msg-1", status, error_message)  # type: ignore[arg-type]
    request = network.last
    assert (request.method, request.url.path) == (
        "PATCH", f"{want.channel}/messages/msg-1"
    )
    assert json_of(request) == expected


async def test_update_message_status_refuses_received(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    with pytest.raises(ValueError):
        await portal.update_message_status(CHANNEL_ID, "msg-1", "RECEIVED")  # type: ignore[arg-type]
    network.reply(200, MESSAGE)
    await portal.update_message_status(CHANNEL_ID, "msg-1", "SENT")


async def test_get_message(
    want: Want, network: FakeNetwork, portal: HubSpotPortalClient) -> None:
    network.reply(200, {
        **MESSAGE, "channelAccountId": ACCOUNT_ID, "direction": "OUTGOING", "text": "Hello",
        "status": {"statusType": "FAILED", "failureDetails": {"errorMessage": "window closed"}},
    })
    message = await portal.get_message(CHANNEL_ID, "msg-1")
    assert network.last.method == "GET"
    assert network.last.url.path == f"{want.channel}/messages/msg-1"
    assert (message.status, message.failure_message, message.direction) == (
        "FAILED", "window closed", "OUTGOING"
    )


# --- CRM ------------------------------------------------------------------------------------------


async def test_r30_search_contact_by_phone(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"total": 1, "results": [{
        "id": "501", "properties": {"firstname": "Jane", "phone": CUSTOMER, "company": None},
        "createdAt": "2026-01-01T09:00:00Z", "updatedAt": "2026-01-01T09:00:00Z",
        "archived": False,
    }]})
    contact = await portal.search_contact_by_phone(CUSTOMER)
    request = network.last
    assert (request.method, request.url.path) == ("POST", f"{want.crm}/contacts/search")
    assert json_of(request) == {
        "filterGroups": [
            {"filters": [{"propertyName": "phone", "operator": "EQ", "value": CUSTOMER}]},
            {"filters": [{"propertyName": "mobilephone", "operator": "EQ", "value": CUSTOMER}]},
        ],
        "properties": ["firstname", "lastname", "phone", "mobilephone", "company"],
        "sorts": [],
        "limit": 1,
        "after": "0",
    }
    assert contact is not None
    assert contact.id == "501"
    assert contact.properties["company"] is None


async def test_search_contact_by_phone_finds_nobody(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"total": 0, "results": []})
    assert await portal.search_contact_by_phone(CUSTOMER) is None


async def test_r31_company_goes_on_the_contact_property_not_an_association(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"id": "501", "properties": {"company": "Acme"},
                        "createdAt": "2026-01-01T09:00:00Z",
                        "updatedAt": "2026-01-01T09:00:00Z", "archived": False})
    contact = await portal.update_contact_properties("501", {"company": "Acme"})
    request = network.last
    assert (request.method, request.url.path) == ("PATCH", f"{want.crm}/contacts/501")
    assert json_of(request) == {"properties": {"company": "Acme"}}
    assert contact.properties == {"company": "Acme"}


async def test_r35_find_ticket_by_its_reference_word(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(200, {"total": 1, "results": [{
        "id": "9001", "properties": {"subject": "Missed call", "content": "… aircallrefabc"},
        "createdAt": "2026-01-01T09:00:00Z", "updatedAt": "2026-01-01T09:00:00Z",
        "archived": False,
    }]})
    ticket = await portal.find_ticket_with_token("aircallrefabc")
    request = network.last
    assert (request.method, request.url.path) == ("POST", f"{want.crm}/tickets/search")
    assert json_of(request)["filterGroups"] == [{"filters": [
        {"propertyName": "content", "operator": "CONTAINS_TOKEN", "value": "aircallrefabc"}]}]
    assert ticket is not None and ticket.id == "9001"
    network.reply(200, {"total": 0, "results": []})
    assert await portal.find_ticket_with_token("aircallrefnone") is None


async def test_r35_create_ticket_associated_with_the_contact(
    want: Want, 
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, {"id": "9001", "properties": {"subject": "Missed call"},
                        "createdAt": "2026-01-01T09:00:00Z",
                        "updatedAt": "2026-01-01T09:00:00Z", "archived": False})
    properties = {"subject": "Missed call", "hs_pipeline": "0", "hs_pipeline_stage": "1"}
    ticket = await portal.create_ticket(properties, contact_id="501")
    request = network.last
    assert (request.method, request.url.path) == ("POST", f"{want.crm}/tickets")
    assert json_of(request) == {
        "properties": properties,
        "associations": [{
            "to": {"id": "501"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}],
        }],
    }
    assert ticket.id == "9001"


async def test_r35_create_ticket_without_contact(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(201, {"id": "9002", "properties": {}, "createdAt": "2026-01-01T09:00:00Z",
                        "updatedAt": "2026-01-01T09:00:00Z", "archived": False})
    await portal.create_ticket({"subject": "Voicemail"})
    assert json_of(network.last)["associations"] == []


# --- Every failure onto the error tree (R44, R8) --------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "retry_after"),
    [
        ({"Retry-After": "7"}, {}, 7.0),
        ({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
          "X-HubSpot-RateLimit-Max": "110", "X-HubSpot-RateLimit-Remaining": "0"}, {}, 10.0),
        ({"X-HubSpot-RateLimit-Interval-Milliseconds": "2500"}, {}, 2.5),
        ({}, {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY"}, 3600.0),
        ({}, {"status": "error", "errorType": "RATE_LIMIT",
              "policyName": "TEN_SECONDLY_ROLLING"}, 10.0),
        ({"Retry-After": "Thu, 01 Jan 2026 09:00:30 GMT"}, {}, 30.0),
    ],
)
async def test_r44_429_is_rate_limited_with_the_wait_hubspot_asks_for(
    network: FakeNetwork, portal: HubSpotPortalClient, headers: dict[str, str],
    body: dict[str, str], retry_after: float,
) -> None:
    network.reply(429, body, headers=headers)
    with pytest.raises(RateLimited) as caught:
        await publish(portal)
    assert caught.value.retry_after == pytest.approx(retry_after)
    assert caught.value.status_code == 429


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_r44_5xx_is_retryable(
    network: FakeNetwork, portal: HubSpotPortalClient, status: int
) -> None:
    network.reply(status, {"message": "internal", "category": "INTERNAL_ERROR"})
    with pytest.raises(Retryable) as caught:
        await publish(portal)
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status_code == status


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError,
     httpx.ReadError, httpx.WriteError],
)
async def test_r44_transport_failures_are_retryable(
    network: FakeNetwork, portal: HubSpotPortalClient, failure: type[httpx.RequestError]
) -> None:
    network.fail_with(failure)
    with pytest.raises(Retryable) as caught:
        await publish(portal)
    assert ACCESS_TOKEN not in str(caught.value)
    assert "publish the message" in caught.value.message


async def test_401_expired_authentication_asks_for_a_refresh(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(401, {"status": "error", "category": "EXPIRED_AUTHENTICATION",
                        "message": "The OAuth token used to make this call expired 2 min ago.",
                        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"})
    with pytest.raises(AuthExpired):
        await publish(portal)


async def test_r8_other_401_is_revoked(network: FakeNetwork, portal: HubSpotPortalClient) -> None:
    network.reply(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                        "message": "Authentication credentials not found."})
    with pytest.raises(AuthRevoked) as caught:
        await publish(portal)
    assert "Authentication credentials not found." in caught.value.message


async def test_r8_missing_scopes_names_them(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(403, {
        "status": "error", "category": "MISSING_SCOPES",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "errors": [{
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["conversations.custom_channels.write"]},
        }],
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
    })
    with pytest.raises(AuthRevoked) as caught:
        await publish(portal)
    assert "conversations.custom_channels.write" in caught.value.message
    assert caught.value.status_code == 403


async def test_r8_other_403_is_revoked(network: FakeNetwork, portal: HubSpotPortalClient) -> None:
    network.reply(403, {"status": "error", "category": "FORBIDDEN", "message": "no access"})
    with pytest.raises(AuthRevoked):
        await publish(portal)


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_other_4xx_is_permanent_with_hubspots_words(
    network: FakeNetwork, portal: HubSpotPortalClient, status: int
) -> None:
    body = {"status": "error", "message": "Delivery identifier is not a valid phone number",
            "category": "VALIDATION_ERROR",
            "subCategory": "CustomChannelsError.INVALID_DELIVERY_IDENTIFIER",
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"}
    network.reply(status, body)
    with pytest.raises(Permanent) as caught:
        await publish(portal)
    error = caught.value
    assert error.status_code == status
    assert "Delivery identifier is not a valid phone number" in error.message
    assert "VALIDATION_ERROR/CustomChannelsError.INVALID_DELIVERY_IDENTIFIER" in error.message
    assert error.message.startswith("HubSpot refused to publish the message")
    assert error.detail is not None and '"correlationId"' in error.detail


async def test_4xx_without_json_body_still_explains(
    network: FakeNetwork, portal: HubSpotPortalClient
) -> None:
    network.reply(404, content=b"Not Found")
    with pytest.raises(Permanent) as caught:
        await publish(portal)
    assert caught.value.detail == "Not Found"
    assert "404" in caught.value.message

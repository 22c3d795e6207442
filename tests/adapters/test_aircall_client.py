"""Aircall client: the exact requests it sends (reference §A2–§A8) and how every failure maps
onto the error tree (R44, R24, R3)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from _http_double import NOW, FakeNetwork, fixed_clock, json_of, query_of

from whatsapp_helpdesk.aircall import (
    WINDOW_CLOSED_MESSAGE,
    AircallClient,
    AircallOAuth,
    ApiKey,
    BearerToken,
)
from whatsapp_helpdesk.errors import (
    AuthRevoked,
    Permanent,
    RateLimited,
    Retryable,
    WindowClosed,
)

pytestmark = pytest.mark.anyio

API = "https://api.aircall.io"
TOKEN = "aircall-oauth-token-123"
CUSTOMER = "+33612345678"
NUMBER = {
    "id": 1001, "direct_link": f"{API}/v1/numbers/1001", "name": "Support Line",
    "digits": "+33 1 76 36 06 95", "created_at": "2020-01-02T11:41:01.000Z", "country": "FR",
    "time_zone": "Europe/Paris", "open": True, "availability_status": "open",
    "is_ivr": False, "priority": None, "users": [],
}


@pytest.fixture
def aircall(http: httpx.AsyncClient) -> AircallClient:
    return AircallClient(BearerToken(TOKEN), http=http, api_base=API, clock=fixed_clock)


@pytest.fixture
def oauth(http: httpx.AsyncClient) -> AircallOAuth:
    return AircallOAuth(client_id="client-1", client_secret="secret-1", http=http, api_base=API,
                        auth_base="https://dashboard.aircall.io", clock=fixed_clock)


def assert_bearer(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def send_reply(aircall: AircallClient) -> str:
    return await aircall.send_whatsapp_text(1001, CUSTOMER, "Hello from support")


# --- OAuth (§A2) ----------------------------------------------------------------------------------


def test_authorize_url(oauth: AircallOAuth) -> None:
    url = oauth.authorize_url("https://bridge.example.com/oauth/aircall/callback", "state-1")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "dashboard.aircall.io",
                                                        "/oauth/authorize")
    assert parse_qs(parts.query) == {
        "client_id": ["client-1"],
        "redirect_uri": ["https://bridge.example.com/oauth/aircall/callback"],
        "response_type": ["code"],
        "scope": ["public_api"],
        "state": ["state-1"],
    }
    assert "secret-1" not in url


async def test_exchange_code_posts_json(network: FakeNetwork, oauth: AircallOAuth) -> None:
    network.reply(200, {"access_token": "at-1", "token_type": "Bearer", "scope": "public_api",
                        "created_at": 1767258000})
    token = await oauth.exchange_code("code-1", "https://b/cb")
    request = network.last
    assert (request.method, str(request.url)) == ("POST", f"{API}/v1/oauth/token")
    assert request.headers["content-type"] == "application/json"
    assert json_of(request) == {
        "grant_type": "authorization_code", "code": "code-1", "redirect_uri": "https://b/cb",
        "client_id": "client-1", "client_secret": "secret-1",
    }
    assert (token.access_token, token.scope) == ("at-1", "public_api")
    assert "at-1" not in repr(token)


async def test_exchange_code_failures(network: FakeNetwork, oauth: AircallOAuth) -> None:
    network.reply(400, {"error": "invalid_grant", "troubleshoot":
                        "The authorization code is unknown, expired or already used."})
    network.reply(401, {"error": "invalid_client", "troubleshoot": "Unknown client_id"})
    with pytest.raises(Permanent, match="already used"):
        await oauth.exchange_code("code-1", "https://b/cb")
    with pytest.raises(AuthRevoked):
        await oauth.exchange_code("code-1", "https://b/cb")


# --- Reading the company (R3, R7) -----------------------------------------------------------------


async def test_basic_credentials_header(network: FakeNetwork, http: httpx.AsyncClient) -> None:
    client = AircallClient(ApiKey("api-id", "api-token"), http=http, api_base=API)
    network.reply(200, {"ping": "pong"})
    await client.ping()
    expected = base64.b64encode(b"api-id:api-token").decode()
    assert network.last.headers["authorization"] == f"Basic {expected}"
    assert str(network.last.url) == f"{API}/v1/ping"
    assert "api-token" not in repr(client)


async def test_get_company(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"company": {"name": "Acme", "users_count": 12, "numbers_count": 3}})
    company = await aircall.get_company()
    assert (network.last.method, network.last.url.path) == ("GET", "/v1/company")
    assert_bearer(network.last)
    assert (company.name, company.users_count, company.numbers_count) == ("Acme", 12, 3)


async def test_get_integration(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"integration": {
        "name": "WhatsApp Helpdesk", "custom_name": "WA", "logo": "https://x/logo.png",
        "company_id": 1, "status": "installed", "active": True, "number_ids": [1001, 1002],
        "numbers_count": 2, "user": {"id": 1},
    }})
    integration = await aircall.get_integration()
    assert network.last.url.path == "/v1/integrations/me"
    assert integration.number_ids == (1001, 1002)
    assert integration.active and integration.status == "installed"


async def test_get_integration_without_envelope_is_permanent(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"name": "not enveloped"})
    with pytest.raises(Permanent, match="integration"):
        await aircall.get_integration()


async def test_list_numbers_follows_pages_of_50(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"numbers": [NUMBER], "meta": {
        "count": 1, "total": 2, "current_page": 1, "per_page": 50,
        "next_page_link": f"{API}/v1/numbers?page=2&per_page=50", "previous_page_link": None}})
    network.reply(200, {"numbers": [{**NUMBER, "id": 1002, "digits": "+33 1 76 36 06 96"}],
                        "meta": {"count": 1, "total": 2, "current_page": 2, "per_page": 50,
                                 "next_page_link": None}})
    numbers = await aircall.list_numbers()
    assert [(n.id, n.digits) for n in numbers] == [(1001, "+33 1 76 36 06 95"),
                                                   (1002, "+33 1 76 36 06 96")]
    assert [query_of(r) for r in network.requests] == [
        {"page": "1", "per_page": "50"}, {"page": "2", "per_page": "50"}
    ]
    assert all(r.url.path == "/v1/numbers" for r in network.requests)
    network.assert_all_answered()


async def test_r3_whatsapp_status(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"wabaId": "123456789", "status": "ONLINE", "canSendMessage": True,
                        "messagingLimitTier": "TIER_1K", "qualityRating": "GREEN",
                        "businessVerificationStatus": "VERIFIED"})
    status = await aircall.get_whatsapp_status(1001)
    assert network.last.url.path == "/v1/numbers/1001/whatsapp_status"
    assert status is not None
    assert (status.status, status.can_send_message, status.waba_id) == ("ONLINE", True,
                                                                         "123456789")
    assert status.quality_rating == "GREEN"


async def test_r3_no_whatsapp_is_none(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(404, {"message": "Not Found"})
    assert await aircall.get_whatsapp_status(1002) is None


async def test_whatsapp_status_other_failures_are_not_none(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(503, {"message": "down"})
    network.reply(403, {"message": "Forbidden"})
    with pytest.raises(Retryable):
        await aircall.get_whatsapp_status(1001)
    with pytest.raises(AuthRevoked):
        await aircall.get_whatsapp_status(1001)


async def test_sms_registration(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"registration_status": {"number_id": 1001, "sms_enabled": True,
                                                "status": "approved"}})
    network.reply(200, {"status": "pending"})
    network.reply(404, {"message": "Not Found"})
    first = await aircall.get_sms_registration(1001)
    assert network.last.url.path == "/v1/numbers/1001/registration_status"
    assert first is not None and first.status == "approved"
    assert first.raw["sms_enabled"] is True
    second = await aircall.get_sms_registration(1001)
    assert second is not None and second.status == "pending"
    assert await aircall.get_sms_registration(1002) is None


# --- Webhooks (§A8.1) -----------------------------------------------------------------------------


async def test_r11_create_webhook(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(201, {"webhook": {
        "webhook_id": "c2501111-8a69-4342-bb34-bcd6cfe564ab",
        "direct_link": f"{API}/v1/webhooks/26316", "created_at": "2020-03-24T19:51:24.000Z",
        "custom_name": "whatsapp-helpdesk", "url": "https://bridge.example.com/aircall/webhook",
        "active": True, "events": ["message.received"], "token": "df76g76dpziygs567f0",
    }})
    created = await aircall.create_webhook(
        "https://bridge.example.com/aircall/webhook",
        ["message.received", "message.sent", "message.status_updated"], "whatsapp-helpdesk",
    )
    request = network.last
    assert (request.method, request.url.path) == ("POST", "/v1/webhooks")
    assert json_of(request) == {
        "url": "https://bridge.example.com/aircall/webhook",
        "custom_name": "whatsapp-helpdesk",
        "events": ["message.received", "message.sent", "message.status_updated"],
    }
    assert created.webhook_id == "c2501111-8a69-4342-bb34-bcd6cfe564ab"
    assert created.token == "df76g76dpziygs567f0"
    assert "df76g76dpziygs567f0" not in repr(created)


async def test_create_webhook_refuses_an_empty_event_list(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    with pytest.raises(ValueError):
        await aircall.create_webhook("https://b/hook", [], "x")
    assert network.requests == []


async def test_create_webhook_answer_without_token_is_permanent(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(201, {"webhook": {"webhook_id": "w-1"}})
    with pytest.raises(Permanent, match="token"):
        await aircall.create_webhook("https://b/hook", ["message.received"], "x")


async def test_delete_webhook_and_already_gone(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(204)
    network.reply(404, {"message": "Not Found"})
    await aircall.delete_webhook("c2501111-8a69")
    assert (network.last.method, network.last.url.path) == ("DELETE",
                                                           "/v1/webhooks/c2501111-8a69")
    await aircall.delete_webhook("c2501111-8a69")


async def test_R53_get_webhook_reads_its_state_and_a_missing_one_is_none(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"webhook": {
        "webhook_id": "c2501111-8a69", "url": "https://b/hook", "active": False,
        "events": ["message.received"], "token": "df76g76dpziygs567f0"}})
    network.reply(404, {"message": "Not Found"})
    hook = await aircall.get_webhook("c2501111-8a69")
    assert (network.last.method, network.last.url.path) == ("GET", "/v1/webhooks/c2501111-8a69")
    assert hook is not None and (hook.active, hook.events) == (False, ("message.received",))
    assert "df76g76dpziygs567f0" not in repr(hook)
    assert await aircall.get_webhook("c2501111-8a69") is None


async def test_R53_reactivate_webhook_always_sends_the_events(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    """§A8.5: an update without `events` resubscribes to every event."""
    network.reply(200, {"webhook": {"webhook_id": "w-1", "active": True,
                                    "events": ["message.received", "message.sent"]}})
    hook = await aircall.reactivate_webhook("w-1", ["message.received", "message.sent"])
    request = network.last
    assert (request.method, request.url.path) == ("PUT", "/v1/webhooks/w-1")
    assert json_of(request) == {"active": True, "events": ["message.received", "message.sent"]}
    assert hook.active is True
    with pytest.raises(ValueError):
        await aircall.reactivate_webhook("w-1", [])


# --- Sending (§A6) --------------------------------------------------------------------------------


async def test_r21_send_whatsapp_text(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"id": "1779973182949pqnihp", "status": "pending", "direction": "outbound",
                        "channel": "whatsapp", "created_at": 1767258000000,
                        "number": {"id": 1001}})
    message_id = await aircall.send_whatsapp_text(1001, CUSTOMER, "Hello from support")
    request = network.last
    assert (request.method, request.url.path) == ("POST", "/v1/messages/send/whatsapp/native")
    assert_bearer(request)
    assert json_of(request) == {"lineId": 1001, "externalNumber": CUSTOMER,
                                "text": "Hello from support"}
    assert message_id == "1779973182949pqnihp"


async def test_send_sms(network: FakeNetwork, aircall: AircallClient) -> None:
    network.reply(200, {"id": "abcdSMc6Dc8ea2", "status": "pending", "direction": "outbound",
                        "raw_digits": "33612345678"})
    message_id = await aircall.send_sms(1001, CUSTOMER, "Your code is 1234")
    request = network.last
    assert (request.method, request.url.path) == ("POST", "/v1/numbers/1001/messages/native/send")
    assert json_of(request) == {"to": CUSTOMER, "body": "Your code is 1234"}
    assert message_id == "abcdSMc6Dc8ea2"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, {"error": "Re-engagement message", "troubleshoot":
               "(#131047) More than 24 hours have passed since the customer last replied.",
               "code": 131047, "success": False}),
        (400, {"message": "Message failed to send because more than 24 hours have passed"}),
        (400, {"error": "Bad Request", "troubleshoot": "whatsapp error",
               "details": {"code": 131047}}),
        (409, {"message": "re-engagement required"}),
    ],
)
async def test_r24_window_refusal_is_window_closed(
    network: FakeNetwork, aircall: AircallClient, status: int, body: dict[str, object]
) -> None:
    network.reply(status, body)
    with pytest.raises(WindowClosed) as caught:
        await send_reply(aircall)
    assert caught.value.message == WINDOW_CLOSED_MESSAGE
    assert caught.value.status_code == status
    assert caught.value.detail is not None


async def test_r24_window_words_on_a_5xx_stay_retryable(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(502, {"message": "upstream 131047 gateway"})
    with pytest.raises(Retryable):
        await send_reply(aircall)


async def test_r25_other_4xx_is_permanent_with_aircalls_words(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(400, {"error": "Bad Request", "troubleshoot": "text is longer than 4096",
                        "code": 131009})
    with pytest.raises(Permanent) as caught:
        await send_reply(aircall)
    assert not isinstance(caught.value, WindowClosed)
    assert caught.value.message == (
        "Aircall refused to send the WhatsApp message (400): Bad Request — text is longer "
        "than 4096"
    )
    assert '"code":131009' in (caught.value.detail or "").replace(" ", "")


# --- Every failure onto the error tree (R44) ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"X-AircallApi-Limit": "60", "X-AircallApi-Remaining": "0",
          "X-AircallApi-Reset": str(int(NOW.timestamp()) + 30)}, 30.0),  # UNIX seconds
        ({"X-AircallApi-Reset": str(int(NOW.timestamp() * 1000) + 45_000)}, 45.0),  # ms
        ({"X-AircallApi-Reset": "20"}, 20.0),  # a delay, not a date
        ({"X-AircallApi-Reset": str(int(NOW.timestamp()) - 5)}, 1.0),  # already past
        ({"X-AircallApi-Reset": str(int(NOW.timestamp()) + 86_400)}, 3600.0),  # capped
        ({"Retry-After": "12"}, 12.0),
        ({"X-AircallApi-Reset": "garbage", "Retry-After": "12"}, 12.0),
        ({}, 60.0),
    ],
)
async def test_r44_429_waits_until_the_reset(
    network: FakeNetwork, aircall: AircallClient, headers: dict[str, str], retry_after: float
) -> None:
    network.reply(429, {"error": "Too many requests", "troubleshoot": "slow down"},
                  headers=headers)
    with pytest.raises(RateLimited) as caught:
        await send_reply(aircall)
    assert caught.value.retry_after == pytest.approx(retry_after)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_r44_5xx_is_retryable(
    network: FakeNetwork, aircall: AircallClient, status: int
) -> None:
    network.reply(status, content=b"<html>Bad gateway</html>")
    with pytest.raises(Retryable) as caught:
        await aircall.get_company()
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status_code == status


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout,
     httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_r44_transport_failures_are_retryable(
    network: FakeNetwork, aircall: AircallClient, failure: type[httpx.RequestError]
) -> None:
    network.fail_with(failure)
    with pytest.raises(Retryable) as caught:
        await send_reply(aircall)
    assert TOKEN not in caught.value.message


@pytest.mark.parametrize(("status", "body"), [(401, {"message": "Unauthorized"}),
                                              (403, {"message": "Forbidden"})])
async def test_r8_401_and_403_are_revoked(
    network: FakeNetwork, aircall: AircallClient, status: int, body: dict[str, str]
) -> None:
    network.reply(status, body)
    with pytest.raises(AuthRevoked) as caught:
        await aircall.list_numbers()
    assert body["message"] in caught.value.message
    assert TOKEN not in caught.value.message


@pytest.mark.parametrize("status", [400, 404, 405, 422])
async def test_other_4xx_is_permanent(
    network: FakeNetwork, aircall: AircallClient, status: int
) -> None:
    network.reply(status, {"message": "User unavailable"})
    with pytest.raises(Permanent) as caught:
        await aircall.send_sms(1001, CUSTOMER, "hi")
    assert not isinstance(caught.value, WindowClosed)
    assert "User unavailable" in caught.value.message


async def test_success_that_is_not_json_is_retryable(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, content=b"<html>captive portal</html>")
    with pytest.raises(Retryable):
        await send_reply(aircall)


async def test_bad_base_url_is_permanent(network: FakeNetwork, http: httpx.AsyncClient) -> None:
    # What httpx's real transport raises for a scheme it cannot speak.
    network.fail_with(httpx.UnsupportedProtocol)
    client = AircallClient(BearerToken(TOKEN), http=http, api_base="ftp://api.aircall.io")
    with pytest.raises(Permanent, match="base URL"):
        await client.ping()

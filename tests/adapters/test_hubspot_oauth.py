"""HubSpot OAuth: consent URL, code exchange, refresh, token details (reference §6; R8)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from _http_double import NOW, FakeNetwork, fixed_clock, form_of
from openapi_hubspot import check_request

from whatsapp_helpdesk.errors import AuthExpired, AuthRevoked, Permanent, Retryable
from whatsapp_helpdesk.hubspot import (
    CUSTOM_CHANNEL_SCOPES,
    HUBSPOT_SCOPES,
    HubSpotOAuth,
    scopes_missing,
)

pytestmark = pytest.mark.anyio

API = "https://api.hubapi.com"
SECRET = "client-secret-xyz"


@pytest.fixture
def oauth(http: httpx.AsyncClient) -> HubSpotOAuth:
    return HubSpotOAuth(client_id="client-1", client_secret=SECRET, http=http, api_base=API,
                        auth_base="https://app.hubspot.com", clock=fixed_clock)


@pytest.fixture(autouse=True)
def every_request_fits_hubspot_openapi(network: FakeNetwork) -> Iterator[None]:
    yield
    for request in network.requests:
        check_request(request)


TOKENS = {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 1800,
          "token_type": "bearer"}


def test_r8_scopes_are_one_list_with_the_custom_channel_scopes() -> None:
    assert set(CUSTOM_CHANNEL_SCOPES) <= set(HUBSPOT_SCOPES)
    assert set(HUBSPOT_SCOPES) == {
        "conversations.custom_channels.read", "conversations.custom_channels.write",
        "conversations.read", "conversations.write", "crm.objects.contacts.read",
        "crm.objects.contacts.write", "tickets",
        "files",  # inbound media into the File Manager (R51)
    }
    granted = [s for s in HUBSPOT_SCOPES if s != "tickets"]
    assert scopes_missing(granted) == ["tickets"]
    assert scopes_missing(list(HUBSPOT_SCOPES)) == []


def test_authorize_url(oauth: HubSpotOAuth) -> None:
    url = oauth.authorize_url("https://bridge.example.com/oauth/hubspot/callback", "st@te 1",
                              scopes=["a.read", "b.write"], optional_scopes=["c"])
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.hubspot.com",
                                                        "/oauth/authorize")
    assert "scope=a.read%20b.write" in parts.query  # space-separated, %20 (not "+")
    assert parse_qs(parts.query) == {
        "client_id": ["client-1"],
        "redirect_uri": ["https://bridge.example.com/oauth/hubspot/callback"],
        "scope": ["a.read b.write"],
        "optional_scope": ["c"],
        "state": ["st@te 1"],
    }


def test_authorize_url_defaults_to_the_service_scopes(oauth: HubSpotOAuth) -> None:
    query = parse_qs(urlsplit(oauth.authorize_url("https://b/cb", "s")).query)
    assert query["scope"] == [" ".join(HUBSPOT_SCOPES)]
    assert "optional_scope" not in query


async def test_exchange_code_posts_a_form(network: FakeNetwork, oauth: HubSpotOAuth) -> None:
    network.reply(200, {**TOKENS, "hub_id": 243842089,
                        "scopes": ["conversations.read", "tickets"]})
    tokens = await oauth.exchange_code("code-1", "https://b/cb")
    request = network.last
    assert (request.method, request.url.path) == ("POST", "/oauth/v1/token")
    assert form_of(request) == {
        "grant_type": "authorization_code", "client_id": "client-1", "client_secret": SECRET,
        "redirect_uri": "https://b/cb", "code": "code-1",
    }
    assert tokens.access_token == "at-1"
    assert tokens.refresh_token == "rt-1"
    assert tokens.expires_at == NOW + timedelta(seconds=1800)
    assert tokens.scopes == ("conversations.read", "tickets")
    assert tokens.hub_id == "243842089"
    assert "at-1" not in repr(tokens) and "rt-1" not in repr(tokens)


async def test_exchange_code_invalid_grant_is_permanent(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(400, {"error": "invalid_grant", "error_description": "code already used",
                        "status": "BAD_AUTH_CODE", "message": "code already used"})
    with pytest.raises(Permanent) as caught:
        await oauth.exchange_code("code-1", "https://b/cb")
    assert not isinstance(caught.value, AuthRevoked)
    assert "code already used" in caught.value.message


async def test_refresh_posts_the_refresh_token(network: FakeNetwork, oauth: HubSpotOAuth) -> None:
    network.reply(200, {**TOKENS, "access_token": "at-2", "refresh_token": "rt-2",
                        "expires_in": 1750})
    tokens = await oauth.refresh("rt-1")
    assert form_of(network.last) == {
        "grant_type": "refresh_token", "client_id": "client-1", "client_secret": SECRET,
        "refresh_token": "rt-1",
    }
    assert (tokens.access_token, tokens.refresh_token) == ("at-2", "rt-2")
    assert tokens.expires_at == NOW + timedelta(seconds=1750)
    assert tokens.scopes is None


async def test_refresh_keeps_the_refresh_token_hubspot_did_not_repeat(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(200, {"access_token": "at-2", "expires_in": 1800})
    tokens = await oauth.refresh("rt-1")
    assert tokens.refresh_token == "rt-1"


async def test_r8_refresh_invalid_grant_is_revoked(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(400, {"error": "invalid_grant", "error_description": "refresh token revoked",
                        "status": "BAD_REFRESH_TOKEN", "message": "refresh token revoked"})
    with pytest.raises(AuthRevoked) as caught:
        await oauth.refresh("rt-1")
    assert "refresh token revoked" in caught.value.message
    assert "rt-1" not in caught.value.message


async def test_refresh_survives_transient_failures_as_retryable(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(503, {"message": "down"})
    network.fail_with(httpx.ReadTimeout)
    for _ in range(2):
        with pytest.raises(Retryable):
            await oauth.refresh("rt-1")


async def test_token_info_gives_portal_and_scopes(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(200, {"token": "at-1", "user": "admin@example.com", "hub_id": 243842089,
                        "app_id": 1001, "user_id": 7, "expires_in": 1500,
                        "token_type": "access",
                        "scopes": ["conversations.custom_channels.read", "oauth"]})
    info = await oauth.token_info("at/1")
    request = network.last
    assert request.method == "GET"
    assert request.url.raw_path == b"/oauth/v1/access-tokens/at%2F1"
    assert info.hub_id == "243842089"
    assert info.scopes == ("conversations.custom_channels.read", "oauth")
    assert (info.app_id, info.user, info.expires_in) == ("1001", "admin@example.com", 1500)


async def test_token_info_on_an_unknown_token_asks_for_a_refresh(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(404, {"status": "error", "message": "Token not found",
                        "category": "OBJECT_NOT_FOUND"})
    with pytest.raises(AuthExpired):
        await oauth.token_info("at-1")


def test_client_secret_is_not_in_repr(oauth: HubSpotOAuth) -> None:
    assert SECRET not in repr(oauth)


async def test_odd_token_answers_never_echo_tokens(
    network: FakeNetwork, oauth: HubSpotOAuth
) -> None:
    network.reply(200, {"refresh_token": "rt-secret", "expires_in": 1800})  # no access_token
    network.reply(200, content=b"access_token=at-secret&refresh_token=rt-secret")  # not JSON
    with pytest.raises(Permanent) as missing:
        await oauth.refresh("rt-1")
    with pytest.raises(Retryable) as garbled:
        await oauth.refresh("rt-1")
    for error in (missing.value, garbled.value):
        text = f"{error.message} {error.detail}"
        assert "rt-secret" not in text and "at-secret" not in text
    assert missing.value.detail == "keys in the answer: expires_in, refresh_token"

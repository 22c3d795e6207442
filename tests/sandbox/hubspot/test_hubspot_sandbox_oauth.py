"""OAuth of the sandbox HubSpot: authorize, token, refresh, token info, bearer checks."""

from __future__ import annotations

import httpx
import pytest
from hubspot_sandbox_harness import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Hub

pytestmark = pytest.mark.anyio


async def test_authorize_redirects_with_code_and_state(hub: Hub) -> None:
    response = await hub.http.get(
        "/oauth/authorize",
        params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "abc",
                "scope": "conversations.read", "optional_scope": "tickets"},
    )
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location.copy_with(query=None)) == REDIRECT_URI
    assert location.params["state"] == "abc"
    tokens = await hub.exchange(location.params["code"])
    assert tokens["hub_id"] == 4242
    assert tokens["scopes"] == ["conversations.read", "tickets"]


async def test_authorize_refuses_unknown_client_with_html_page(hub: Hub) -> None:
    response = await hub.http.get(
        "/oauth/authorize",
        params={"client_id": "nope", "redirect_uri": REDIRECT_URI, "scope": "tickets"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Couldn" in response.text


async def test_token_response_fields(hub: Hub) -> None:
    tokens = await hub.exchange(await hub.authorize())
    assert tokens["expires_in"] == 1800
    assert tokens["token_type"] == "bearer"
    assert tokens["access_token"] and tokens["refresh_token"]


async def test_authorization_codes_are_single_use(hub: Hub) -> None:
    code = await hub.authorize()
    await hub.exchange(code)
    again = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert again.status_code == 400
    body = again.json()
    assert body["error"] == "invalid_grant"
    assert body["status"] == "BAD_AUTH_CODE"
    assert body["error_description"] and body["message"]


async def test_token_exchange_checks_redirect_uri_and_secret(hub: Hub) -> None:
    code = await hub.authorize()
    wrong_redirect = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://evil",
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert wrong_redirect.json()["status"] == "BAD_REDIRECT_URI"
    wrong_secret = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "client_id": CLIENT_ID, "client_secret": "guess"},
    )
    assert wrong_secret.status_code == 400
    assert wrong_secret.json()["error"] == "invalid_client"


async def test_refresh_token_grant_issues_a_new_access_token(hub: Hub) -> None:
    tokens = await hub.exchange(await hub.authorize())
    refreshed = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["access_token"] != tokens["access_token"]
    assert body["refresh_token"] == tokens["refresh_token"]
    bad = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": "unknown",
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert bad.status_code == 400
    assert bad.json()["status"] == "BAD_REFRESH_TOKEN"
    assert bad.json()["error"] == "invalid_grant"


async def test_access_token_info(hub: Hub) -> None:
    token = await hub.token(portal_id=4343)
    info = await hub.http.get(f"/oauth/v1/access-tokens/{token}")
    assert info.status_code == 200
    body = info.json()
    assert body["hub_id"] == 4343
    assert body["app_id"] == 1001
    assert body["user_id"] == 3
    assert 1790 <= body["expires_in"] <= 1800
    assert "tickets" in body["scopes"]
    unknown = await hub.http.get("/oauth/v1/access-tokens/nope")
    assert unknown.status_code == 404


async def test_missing_or_unknown_bearer_is_401_invalid_authentication(hub: Hub) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        response = await hub.http.get("/conversations/v3/conversations/inboxes", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["status"] == "error"
        assert body["correlationId"]


async def test_access_token_expires_after_1800_seconds_of_sandbox_clock(hub: Hub) -> None:
    token = await hub.token()
    # The sandbox clock also runs in real time: a 10 s margin on each side, so a loaded
    # machine's slowness between two requests does not decide the test (it failed once so).
    await hub.advance(1790)
    ok = await hub.http.get("/conversations/v3/conversations/inboxes", headers=hub.bearer(token))
    assert ok.status_code == 200
    await hub.advance(20)
    expired = await hub.http.get(
        "/conversations/v3/conversations/inboxes", headers=hub.bearer(token)
    )
    assert expired.status_code == 401
    body = expired.json()
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"].startswith("The OAuth token used to make this call expired")


async def test_missing_scope_is_403_listing_required_scopes(hub: Hub) -> None:
    token = await hub.token(scope="conversations.read")
    response = await hub.http.get(
        "/crm/v3/objects/contacts/501", headers=hub.bearer(token)
    )
    assert response.status_code == 403
    body = response.json()
    assert body["category"] == "MISSING_SCOPES"
    required = body["errors"][0]["context"]["requiredScopes"]
    assert "crm.objects.contacts.read" in required


async def test_revoked_installation_tokens_stop_working(hub: Hub) -> None:
    tokens = await hub.exchange(await hub.authorize())
    revoked = await hub.http.post("/_sandbox/portals/4242/oauth/revoke")
    assert revoked.json() == {"revokedRefreshTokens": 1}
    call = await hub.http.get(
        "/conversations/v3/conversations/inboxes", headers=hub.bearer(tokens["access_token"])
    )
    assert call.status_code == 401
    refresh = await hub.http.post(
        "/oauth/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert refresh.json()["status"] == "BAD_REFRESH_TOKEN"


async def test_refresh_token_info_and_delete(hub: Hub) -> None:
    tokens = await hub.exchange(await hub.authorize())
    info = await hub.http.get(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}")
    assert info.status_code == 200
    assert info.json()["client_id"] == CLIENT_ID
    deleted = await hub.http.delete(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}")
    assert deleted.status_code == 204
    gone = await hub.http.get(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}")
    assert gone.status_code == 404

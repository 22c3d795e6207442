"""Auth (§A1/§A2), OAuth, company, integration (§A4) and numbers (§A5) of the Aircall sandbox."""

from __future__ import annotations

import httpx
from aircall_sandbox_harness import CLIENT_ID, CLIENT_SECRET, Sandbox

REDIRECT = "https://bridge.example/oauth/aircall/callback"


def _authorize(aircall: Sandbox, **overrides: str) -> httpx.Response:
    params = {
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "public_api", "state": "s-123",
    }
    params.update(overrides)
    return aircall.http.get("/oauth/authorize", params=params)


def _exchange(aircall: Sandbox, code: str, **overrides: str) -> httpx.Response:
    body = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }
    body.update(overrides)
    return aircall.http.post("/v1/oauth/token", json=body)


# --- 401 vs 403 -------------------------------------------------------------------------------


def test_missing_authorization_is_401_unauthorized(aircall: Sandbox) -> None:
    response = aircall.http.get("/v1/ping")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_bad_basic_credentials_are_403_forbidden(aircall: Sandbox) -> None:
    response = aircall.http.get("/v1/ping", auth=("sandbox-api-id", "wrong"))
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_unknown_bearer_and_garbage_schemes_are_403(aircall: Sandbox) -> None:
    for value in ("Bearer nope", "Basic !!!notbase64", "Token abc"):
        response = aircall.http.get("/v1/ping", headers={"Authorization": value})
        assert response.status_code == 403, value
        assert response.json() == {"message": "Forbidden"}


def test_ping_with_basic_key(aircall: Sandbox) -> None:
    response = aircall.basic.get("/v1/ping")
    assert response.status_code == 200
    assert response.json() == {"ping": "pong"}


def test_unknown_v1_path_is_404_not_found(aircall: Sandbox) -> None:
    response = aircall.basic.get("/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


# --- OAuth ------------------------------------------------------------------------------------


def test_oauth_authorize_redirects_with_code_and_state(aircall: Sandbox) -> None:
    response = _authorize(aircall)
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(REDIRECT + "?")
    assert location.params["state"] == "s-123"
    assert location.params["code"]


def test_oauth_token_exchange_gives_a_permanent_bearer_token(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    response = _exchange(aircall, code)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "public_api"
    with aircall.bearer(body["access_token"]) as client:
        assert client.get("/v1/ping").json() == {"ping": "pong"}
    aircall.advance(400 * 24 * 3600)  # no expiry: tokens are permanent (§A2)
    with aircall.bearer(body["access_token"]) as client:
        assert client.get("/v1/ping").status_code == 200


def test_oauth_code_is_single_use(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    assert _exchange(aircall, code).status_code == 200
    again = _exchange(aircall, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert "troubleshoot" in again.json()


def test_oauth_wrong_secret_is_401_invalid_client(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    response = _exchange(aircall, code, client_secret="nope")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_oauth_redirect_uri_must_match(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    response = _exchange(aircall, code, redirect_uri="https://evil.example/cb")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_oauth_wrong_grant_type(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    response = _exchange(aircall, code, grant_type="client_credentials")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_oauth_code_expires_on_the_sandbox_clock(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    aircall.advance(601)
    assert _exchange(aircall, code).status_code == 400


def test_oauth_authorize_refuses_unknown_client_and_other_scopes(aircall: Sandbox) -> None:
    assert _authorize(aircall, client_id="someone-else").status_code == 400
    bad_scope = _authorize(aircall, scope="conversation")
    assert bad_scope.status_code == 400
    assert "text/html" in bad_scope.headers["content-type"]
    assert _authorize(aircall, company_id="99").status_code == 400


def test_oauth_token_endpoint_accepts_form_encoding(aircall: Sandbox) -> None:
    code = httpx.URL(_authorize(aircall).headers["location"]).params["code"]
    response = aircall.http.post("/v1/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    })
    assert response.status_code == 200


def test_bearer_token_is_scoped_to_its_company(aircall: Sandbox) -> None:
    token = aircall.oauth_token(company_id=2)
    with aircall.bearer(token) as client:
        assert client.get("/v1/company").json() == {
            "company": {"name": "Other Company", "users_count": 2, "numbers_count": 2}
        }
        assert client.get("/v1/numbers/1001").status_code == 404


# --- company and integration ------------------------------------------------------------------


def test_company(aircall: Sandbox) -> None:
    assert aircall.basic.get("/v1/company").json() == {
        "company": {"name": "Demo Company", "users_count": 3, "numbers_count": 5}
    }


def test_integration_me_with_oauth_lists_connected_numbers(aircall: Sandbox) -> None:
    with aircall.bearer(aircall.oauth_token()) as client:
        integration = client.get("/v1/integrations/me").json()["integration"]
        assert set(integration) == {
            "name", "custom_name", "logo", "company_id", "status", "active", "number_ids",
            "numbers_count", "user",
        }
        assert integration["company_id"] == 1
        assert integration["status"] == "installed"
        assert integration["active"] is True
        assert integration["number_ids"] == [1001, 1002, 1003, 1004, 1005]
        assert integration["numbers_count"] == 5
        changed = aircall.http.put(
            "/_sandbox/integrations/1/number_ids", json={"number_ids": [1001, 1003]}
        )
        assert changed.status_code == 200
        assert client.get("/v1/integrations/me").json()["integration"]["number_ids"] == [
            1001, 1003,
        ]
        disabled = client.post("/v1/integrations/disable").json()["integration"]
        assert disabled["active"] is False
        enabled = client.post("/v1/integrations/enable").json()["integration"]
        assert enabled["active"] is True


def test_number_ids_control_refuses_numbers_of_another_company(aircall: Sandbox) -> None:
    response = aircall.http.put(
        "/_sandbox/integrations/1/number_ids", json={"number_ids": [1001, 2001]}
    )
    assert response.status_code == 400


def test_integration_me_with_basic_key_is_the_api_key_integration(aircall: Sandbox) -> None:
    integration = aircall.basic.get("/v1/integrations/me").json()["integration"]
    assert integration["name"] == "API Key"
    assert integration["number_ids"] == [1001, 1002, 1003, 1004, 1005]


# --- numbers ----------------------------------------------------------------------------------


def test_numbers_list_is_paginated_with_meta(aircall: Sandbox) -> None:
    first = aircall.basic.get("/v1/numbers", params={"per_page": 2}).json()
    assert [n["id"] for n in first["numbers"]] == [1001, 1002]
    assert first["meta"] == {
        "count": 2, "total": 5, "current_page": 1, "per_page": 2,
        "next_page_link": f"{aircall.url}/v1/numbers?page=2&per_page=2",
        "previous_page_link": None,
    }
    last = aircall.basic.get("/v1/numbers", params={"page": 3, "per_page": 2}).json()
    assert [n["id"] for n in last["numbers"]] == [1005]
    assert last["meta"]["next_page_link"] is None
    assert last["meta"]["previous_page_link"] == f"{aircall.url}/v1/numbers?page=2&per_page=2"


def test_numbers_default_page_size_is_20_and_max_is_50(aircall: Sandbox) -> None:
    assert aircall.basic.get("/v1/numbers").json()["meta"]["per_page"] == 20
    clamped = aircall.basic.get("/v1/numbers", params={"per_page": 500}).json()
    assert clamped["meta"]["per_page"] == 50
    assert aircall.basic.get("/v1/numbers", params={"page": "x"}).status_code == 400


def test_numbers_show_digits_in_display_format_without_capability_flags(aircall: Sandbox) -> None:
    numbers = aircall.basic.get("/v1/numbers").json()["numbers"]
    assert [n["digits"] for n in numbers] == [
        "+33 1 76 36 06 95", "+44 20 7946 0958", "+49 30 901820", "+34 911 23 45 67",
        "+1 415-555-0100",
    ]
    first = numbers[0]
    assert {"id", "direct_link", "name", "digits", "created_at", "country", "time_zone", "open",
            "availability_status", "is_ivr", "live_recording_activated", "priority",
            "messages", "users"} == set(first)
    assert "e164_digits" not in first  # webhook-only (§A5)
    assert first["direct_link"] == f"{aircall.url}/v1/numbers/1001"


def test_number_detail_and_cross_tenant_404(aircall: Sandbox) -> None:
    number = aircall.basic.get("/v1/numbers/1003").json()["number"]
    assert number["name"] == "Berlin Service"
    assert aircall.basic.get("/v1/numbers/2001").status_code == 404
    assert aircall.basic.get("/v1/numbers/abc").status_code == 404
    assert aircall.basic2.get("/v1/numbers/2001").json()["number"]["name"] == "Other Support"


def test_whatsapp_status_camel_case_for_whatsapp_numbers(aircall: Sandbox) -> None:
    assert aircall.basic.get("/v1/numbers/1001/whatsapp_status").json() == {
        "wabaId": "104857600001", "status": "ONLINE", "canSendMessage": True,
        "messagingLimitTier": "TIER_1K", "qualityRating": "GREEN",
        "businessVerificationStatus": "VERIFIED",
    }
    pending = aircall.basic.get("/v1/numbers/1005/whatsapp_status").json()
    assert pending["status"] == "PENDING"
    assert pending["canSendMessage"] is False


def test_whatsapp_status_of_a_number_without_whatsapp_is_404(aircall: Sandbox) -> None:
    for number_id in (1002, 1004):
        response = aircall.basic.get(f"/v1/numbers/{number_id}/whatsapp_status")
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}


def test_registration_status_tells_sms_capability(aircall: Sandbox) -> None:
    for number_id in (1001, 1002, 1005):
        body = aircall.basic.get(f"/v1/numbers/{number_id}/registration_status").json()
        assert body == {"registration_status": {
            "number_id": number_id, "sms_enabled": True, "status": "approved",
        }}
    for number_id in (1003, 1004):
        response = aircall.basic.get(f"/v1/numbers/{number_id}/registration_status")
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}

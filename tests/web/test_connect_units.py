"""Small rules of the pages: where the pop-up may send the browser back to (no open
redirect), where sign-in may return to, and the CSRF comparison (R4, R10)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from whatsapp_helpdesk.web.auth import safe_next
from whatsapp_helpdesk.web.connect_routes import ConnectRequest, hubspot_return_url
from whatsapp_helpdesk.web.csrf import csrf_valid


def _services(auth_base: str, api_base: str) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(hubspot_auth_base=auth_base,
                                                    hubspot_api_base=api_base))


SANDBOX = _services("http://127.0.0.1:8701", "http://127.0.0.1:8701")
REAL = _services("https://app.hubspot.com", "https://api.hubapi.com")


@pytest.mark.parametrize(("services", "url", "allowed"), [
    (SANDBOX, "http://127.0.0.1:8701/help-desk/4242/settings/channels?connected=t", True),
    (SANDBOX, "http://127.0.0.1:9999/help-desk/4242/settings/channels", False),
    (SANDBOX, "https://evil.example/", False),
    (SANDBOX, "javascript:alert(1)", False),
    (SANDBOX, "//127.0.0.1:8701/x", False),
    (SANDBOX, "", False),
    (REAL, "https://app.hubspot.com/help-desk/4242/settings", True),
    (REAL, "https://app-eu1.hubspot.com/help-desk/4242/settings", True),
    (REAL, "http://app-eu1.hubspot.com/help-desk", False),  # not https
    (REAL, "https://hubspot.com.evil.example/", False),
    (REAL, "https://evilhubspot.com/", False),
])
def test_R4_the_popup_returns_only_to_hubspot(services: Any, url: str, allowed: bool) -> None:
    assert (hubspot_return_url(services, url) == url) is allowed


@pytest.mark.parametrize(("value", "expected"), [
    ("/connect?accountToken=t&portalId=4242", "/connect?accountToken=t&portalId=4242"),
    ("/dashboard", "/dashboard"),
    ("https://evil.example/", "/dashboard"),
    ("//evil.example/", "/dashboard"),
    ("/\\evil.example", "/dashboard"),
    ("dashboard", "/dashboard"),
    (None, "/dashboard"),
])
def test_R10_sign_in_returns_only_to_a_page_of_this_service(value: str | None,
                                                            expected: str) -> None:
    assert safe_next(value) == expected


def test_R10_csrf_tokens_must_match_the_session() -> None:
    request: Any = SimpleNamespace(session={"csrf_token": "a" * 43})
    assert csrf_valid(request, "a" * 43)
    assert not csrf_valid(request, "b" * 43)
    assert not csrf_valid(request, "")
    assert not csrf_valid(request, None)
    assert not csrf_valid(SimpleNamespace(session={}), "")  # type: ignore[arg-type]


def test_the_popup_carries_hubspots_parameters_through_its_form() -> None:
    asked = ConnectRequest.of({"accountToken": " t ", "channelId": "2930001",
                               "portalId": "4242", "redirectUrl": "http://h/x", "other": "y"})
    assert asked.query() == {"accountToken": "t", "channelId": "2930001", "portalId": "4242",
                             "redirectUrl": "http://h/x"}
    assert asked.page_url().startswith("/connect?accountToken=t&channelId=2930001")

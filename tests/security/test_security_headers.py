"""Issue 12, item 5 (R10, R42): security headers on every answer. No page may be framed by
another site, except the connection pop-up, which HubSpot's own domains may frame; HSTS
only when the service is served over HTTPS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from harness.aircall_webhooks import message_received, post_to_bridge
from harness.pages import open_popup, signed_in
from harness.stack import Stack

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app


def _directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    parts = (p.strip().split(None, 1) for p in policy.split(";") if p.strip())
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def test_R10_pages_cannot_be_framed_and_carry_the_common_headers(stack: Stack) -> None:
    client, _ = signed_in(stack)
    for path in ("/dashboard", "/", "/healthz", "/signin"):
        answer = client.get(path)
        csp = _directives(answer)
        assert csp.get("frame-ancestors") == "'none'", (path, answer.headers)
        assert answer.headers.get("x-frame-options") == "DENY", path
        assert answer.headers.get("x-content-type-options") == "nosniff", path
        assert answer.headers.get("referrer-policy") == "no-referrer", path
        assert "strict-transport-security" not in answer.headers  # served over http here
    page = _directives(client.get("/dashboard"))
    assert page["default-src"] == "'self'" and "'unsafe-inline'" not in page.get(
        "script-src", "'self'")


def test_R10_the_webhook_fast_path_answers_carry_the_common_headers(stack: Stack) -> None:
    # The fast path answers ahead of the middleware that adds them (decision 0011).
    stack.connect()
    stack.web_app.state.webhook_spool.refresh_digests()
    token = stack.aircall.get("/_sandbox/webhooks").json()["webhooks"][0]["token"]
    spooled = post_to_bridge(stack, message_received(token, "hello"))
    too_large = post_to_bridge(stack, b"x" * (300 * 1024))
    assert (spooled.status_code, too_large.status_code) == (200, 413)
    for answer in (spooled, too_large):
        assert _directives(answer).get("frame-ancestors") == "'none'", answer.headers
        assert answer.headers.get("x-frame-options") == "DENY"
        assert answer.headers.get("x-content-type-options") == "nosniff"
        assert answer.headers.get("referrer-policy") == "no-referrer"
        assert answer.headers.get("content-type") == "application/json"


def test_R10_the_connect_popup_may_be_framed_by_hubspot_only(stack: Stack) -> None:
    client, _ = signed_in(stack)
    popup = open_popup(stack)
    answer = client.get(popup["popupUrl"])
    assert answer.status_code == 200
    ancestors = _directives(answer)["frame-ancestors"].split()
    assert "https://app.hubspot.com" in ancestors and "https://*.hubspot.com" in ancestors
    # Sandbox mode: the sandbox HubSpot, whose settings page opens the pop-up.
    assert stack.settings.hubspot_auth_base in ancestors
    assert "*" not in ancestors and "'self'" not in ancestors
    assert "x-frame-options" not in answer.headers  # it cannot name several origins


def test_R10_hsts_only_over_https(tmp_path: Path) -> None:
    async def headers_of(public_url: str) -> httpx.Headers:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}",
                            public_url=public_url, _env_file=None)  # type: ignore[call-arg]
        services = build_services(settings)
        try:
            transport = httpx.ASGITransport(app=create_app(services))
            async with httpx.AsyncClient(transport=transport, base_url=public_url) as c:
                return (await c.get("/static/style.css")).headers
        finally:
            services.engine.dispose()

    secure = asyncio.run(headers_of("https://helpdesk.example.com"))
    assert secure["strict-transport-security"].startswith("max-age=")
    plain = asyncio.run(headers_of("http://127.0.0.1:8700"))
    assert "strict-transport-security" not in plain

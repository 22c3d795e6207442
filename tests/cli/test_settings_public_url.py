"""PORT alone moves every URL the service derives (issue 15 item 9; R41): the printed URLs
and the OAuth redirect URIs follow HOST/PORT unless PUBLIC_URL is set."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.cli import _print_urls
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture(autouse=True)
def _no_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUBLIC_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)


def test_R41_port_alone_moves_the_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8800")

    assert _settings().public_url == "http://127.0.0.1:8800"


def test_R41_default_public_url_is_unchanged() -> None:
    assert _settings().public_url == "http://127.0.0.1:8700"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8800"),  # every interface: this machine reaches it so
        ("::", "http://[::1]:8800"),
        ("192.168.1.20", "http://192.168.1.20:8800"),
        ("fd00::5", "http://[fd00::5]:8800"),
        ("helpdesk.internal", "http://helpdesk.internal:8800"),
    ],
)
def test_R41_public_url_follows_host_and_port(host: str, url: str) -> None:
    assert _settings(host=host, port=8800).public_url == url


def test_R41_an_explicit_public_url_wins_over_host_and_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "8800")
    monkeypatch.setenv("PUBLIC_URL", "https://helpdesk.example.com/")

    assert _settings().public_url == "https://helpdesk.example.com"


def test_R41_sandbox_clock_and_printed_urls_follow_the_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = _settings(port=8800)

    _print_urls(settings)

    printed = capsys.readouterr().out
    assert "http://127.0.0.1:8800/dashboard" in printed
    assert "8700" not in printed
    assert "http://127.0.0.1:8800/_sandbox/clock" in settings.sandbox_clocks


def test_R41_oauth_redirect_uri_follows_the_port(tmp_path) -> None:
    settings = _settings(port=8800, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    services = build_services(settings)
    upgrade(services.engine)  # the OAuth state lives in a server-side session (issue 12)

    async def install() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get("/oauth/hubspot/install")

    try:
        to_hubspot = asyncio.run(install())
    finally:
        services.engine.dispose()

    query = parse_qs(urlparse(to_hubspot.headers["location"]).query)
    assert query["redirect_uri"] == ["http://127.0.0.1:8800/oauth/hubspot/callback"]

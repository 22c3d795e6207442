"""The sandbox-only parts of the service exist only in sandbox mode (issue 6, R40)."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.domain.clock import SystemClock
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app


def _get_and_post(settings: Settings) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
    services = build_services(settings)
    upgrade(services.engine)

    async def main() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            home = await client.get("/")
            clock = await client.post("/_sandbox/clock", json={"advance_seconds": 90000})
            reset = await client.post("/_sandbox/reset", data={"csrf_token": "x"})
            return home, clock, reset

    try:
        return asyncio.run(main())
    finally:
        services.engine.dispose()


def test_sandbox_home_links_the_four_screens_and_the_clock_moves(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/s.db", _env_file=None)
    home, clock, _ = _get_and_post(settings)
    for screen in ("/settings/channels", "/phone?also_notify=", "/tickets", "/dashboard"):
        assert screen in home.text
    assert clock.status_code == 200 and clock.json() == {"offset_seconds": 90000.0}


def test_production_service_has_no_clock_to_move_and_no_reset(tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/p.db", hubspot_client_id="real-app",
        hubspot_client_secret=SecretStr("s"), aircall_client_id="real",
        aircall_client_secret=SecretStr("s"), secret_key=SecretStr("x" * 40), _env_file=None,
    )
    assert not settings.sandbox_mode
    assert isinstance(build_services(settings).clock, SystemClock)
    home, clock, reset = _get_and_post(settings)
    assert "also_notify" not in home.text and "_sandbox/reset" not in home.text
    assert clock.status_code in (404, 405)
    assert reset.status_code in (404, 405)


def test_placeholder_secret_is_refused_outside_the_sandbox() -> None:
    import pytest

    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(hubspot_client_id="real-app", _env_file=None)


def test_the_clock_takes_json_only_and_sane_numbers(tmp_path) -> None:
    """A page of another site can POST text or a form without asking: neither moves the
    clock; nor can a NaN or an absurd jump break every page that reads it."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/s.db", _env_file=None)
    services = build_services(settings)
    upgrade(services.engine)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [
                await client.post("/_sandbox/clock", content='{"advance_seconds": 90000}',
                                  headers={"Content-Type": "text/plain"}),
                await client.post("/_sandbox/clock", data={"advance_seconds": "90000"}),
            ]
            for body in ('{"offset_seconds": "nan"}', '{"advance_seconds": 1e300}', "[1]",
                         "{}", '{"advance_seconds": 1, "offset_seconds": 2}'):
                answers.append(await client.post(
                    "/_sandbox/clock", content=body,
                    headers={"Content-Type": "application/json"}))
            answers.append(await client.get("/"))
            return answers

    try:
        *refused, home = asyncio.run(main())
    finally:
        services.engine.dispose()
    assert [r.status_code for r in refused] == [415, 415, 422, 422, 422, 422, 422]
    assert home.status_code == 200 and "ahead of real time" not in home.text

"""The bridge's routes are built once per process and shared by every app it builds
(web/app.py `shared_routes`): FastAPI's analysis of ~34 routes was ~28 ms of CPU per app, and
a test process builds hundreds. Each app still answers with its own services."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app


def _services(tmp_path, name: str, public_url: str, *, sandbox: bool) -> Services:
    real = {} if sandbox else {
        "hubspot_client_id": "real-app", "hubspot_client_secret": SecretStr("s"),
        "aircall_client_id": "real", "aircall_client_secret": SecretStr("s"),
        "secret_key": SecretStr("x" * 40)}
    settings = Settings(database_url=f"sqlite:///{tmp_path}/{name}.db", public_url=public_url,
                        _env_file=None, **real)
    assert settings.sandbox_mode is sandbox
    services = build_services(settings)
    upgrade(services.engine)
    return services


def _sign_in_redirect(services: Services) -> str:
    async def main() -> str:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.get("/signin")
            assert answer.status_code == 303
            return answer.headers["location"]

    return asyncio.run(main())


def test_two_apps_share_their_route_objects(tmp_path) -> None:
    first = _services(tmp_path, "a", "http://one.test", sandbox=True)
    second = _services(tmp_path, "b", "http://two.test", sandbox=True)
    real = _services(tmp_path, "c", "http://three.test", sandbox=False)
    try:
        one, two = create_app(first), create_app(second)
        shared = [route for route in one.router.routes if route in two.router.routes]
        # Every route of ours (FastAPI adds /openapi.json per app).
        assert len(shared) >= 30, [getattr(route, "path", route) for route in shared]
        production = create_app(real)
        assert {getattr(route, "path", "") for route in production.router.routes} >= {
            "/", "/healthz", "/dashboard", "/connect"}
        assert "/_sandbox/reset" not in {getattr(route, "path", "")
                                         for route in production.router.routes}
    finally:
        for services in (first, second, real):
            services.engine.dispose()


def test_each_app_answers_with_its_own_services(tmp_path) -> None:
    first = _services(tmp_path, "a", "http://one.test", sandbox=True)
    second = _services(tmp_path, "b", "http://two.test", sandbox=True)
    try:
        # The sign-in sends HubSpot this service's own callback URL (its PUBLIC_URL).
        assert "one.test%2Fsignin%2Fcallback" in _sign_in_redirect(first)
        assert "two.test%2Fsignin%2Fcallback" in _sign_in_redirect(second)
        assert "one.test%2Fsignin%2Fcallback" in _sign_in_redirect(first)
    finally:
        for services in (first, second):
            services.engine.dispose()

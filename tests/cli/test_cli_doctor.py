"""`whatsapp-helpdesk doctor` against the sandboxes (issue 15 item 12; R41, R8): a healthy
installation passes, and each thing that can be wrong is named in words, with what to do."""

from __future__ import annotations

import argparse
import asyncio
import socket

import pytest
from harness.stack import PORTAL, Stack
from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.cli import cmd_doctor
from whatsapp_helpdesk.connect.install import register_channel
from whatsapp_helpdesk.credentials import aircall_access_token
from whatsapp_helpdesk.db.migrate import downgrade
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.doctor import Finding, check_public_url, check_settings, run_checks
from whatsapp_helpdesk.settings import Settings

SECRET = "s" * 48


def _doctor(stack: Stack, settings: Settings | None = None) -> list[Finding]:
    if settings is None:
        return stack.run(run_checks)
    services = build_services(settings)

    async def main() -> list[Finding]:
        try:
            return await run_checks(services)
        finally:
            await services.aclose()

    try:
        return asyncio.run(main())
    finally:
        services.engine.dispose()


def _failures(findings: list[Finding]) -> list[str]:
    return [f.line() for f in findings if f.verdict == "fail"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _webhook_id(stack: Stack) -> str:
    with stack.services.sessions() as session:
        installation = session.get(Installation, stack.installation_id)
        assert installation is not None and installation.aircall_webhook_id
        return installation.aircall_webhook_id


def _aircall(stack: Stack) -> str:
    return aircall_access_token(stack.services, stack.installation_id)


def test_R41_doctor_passes_a_healthy_installation(stack: Stack, capsys) -> None:
    findings = _doctor(stack)

    assert _failures(findings) == []
    ok = {f.what for f in findings if f.verdict == "ok"}
    assert {"Database", "PUBLIC_URL", "HubSpot channel"} <= ok
    installation = [f for f in findings if f.what.startswith("Installation")]
    assert [f.verdict for f in installation] == ["ok", "ok"]
    assert cmd_doctor(stack.settings, argparse.Namespace()) == 0
    assert "All good." in capsys.readouterr().out


@pytest.mark.both_databases
def test_R41_doctor_names_a_database_not_migrated(stack: Stack) -> None:
    downgrade(stack.services.engine, "0002")

    [failure] = _failures(_doctor(stack))
    assert "Database" in failure and "run `whatsapp-helpdesk migrate`" in failure
    assert cmd_doctor(stack.settings, argparse.Namespace()) == 1


@pytest.mark.both_databases
def test_R41_doctor_names_an_unreachable_database(stack: Stack) -> None:
    settings = stack.settings.model_copy(update={
        "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none"})

    failures = _failures(_doctor(stack, settings))
    assert len(failures) == 1 and "cannot reach" in failures[0]
    assert "Check DATABASE_URL" in failures[0]


def test_R41_doctor_names_a_public_url_that_does_not_answer(stack: Stack) -> None:
    elsewhere = f"http://127.0.0.1:{_closed_port()}"
    settings = stack.settings.model_copy(update={"public_url": elsewhere})

    failures = _failures(_doctor(stack, settings))
    assert any(f"{elsewhere}/healthz does not answer" in f for f in failures), failures


def test_R41_doctor_names_a_channel_whose_webhook_goes_elsewhere(stack: Stack) -> None:
    moved = stack.settings.model_copy(update={"public_url": "https://old.example.com"})
    services = build_services(moved)
    asyncio.run(register_channel(services))
    services.engine.dispose()

    [failure] = _failures(_doctor(stack))
    assert "HubSpot sends the channel's events to https://old.example.com/webhooks/hubspot" \
        in failure
    assert "register-channel" in failure


def test_R8_doctor_names_revoked_hubspot_credentials(stack: Stack) -> None:
    assert stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/oauth/revoke").status_code < 300
    with stack.services.sessions.begin() as session:  # force the refresh, now refused
        installation = session.scalars(select(Installation)).one()
        installation.hubspot_token_expires_at = None

    [failure] = _failures(_doctor(stack))
    assert "Installation 1" in failure and "HubSpot refused its credentials" in failure
    assert "/oauth/hubspot/install" in failure


def test_R41_doctor_names_a_missing_aircall_webhook(stack: Stack) -> None:
    token = _aircall(stack)
    answer = stack.aircall.delete(f"/v1/webhooks/{_webhook_id(stack)}",
                                  headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204

    [failure] = _failures(_doctor(stack))
    assert "Aircall has no webhook of ours" in failure and "/oauth/aircall/install" in failure


def test_R41_doctor_names_a_disabled_aircall_webhook(stack: Stack) -> None:
    token = _aircall(stack)
    answer = stack.aircall.put(f"/v1/webhooks/{_webhook_id(stack)}", json={"active": False},
                               headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["webhook"]["active"] is False

    [failure] = _failures(_doctor(stack))
    assert "Aircall disabled our webhook" in failure


def _real(**values: object) -> Settings:
    base = {"secret_key": SECRET, "hubspot_client_id": "app-client", "_env_file": None}
    return Settings(**{**base, **values})  # type: ignore[arg-type]


def test_R41_doctor_lists_each_missing_setting_and_what_it_is_for() -> None:
    [failure, *_] = check_settings(_real())

    assert failure.verdict == "fail"
    for name in ("HUBSPOT_APP_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_DEVELOPER_API_KEY",
                 "AIRCALL_CLIENT_ID", "AIRCALL_CLIENT_SECRET"):
        assert name in failure.detail
    assert "HUBSPOT_CLIENT_ID" not in failure.detail.replace("HUBSPOT_CLIENT_IDS", "")


def test_R41_doctor_refuses_a_public_url_without_https(stack: Stack) -> None:
    settings = _real(public_url=str(stack.bridge.base_url),
                     database_url=stack.settings.database_url)
    services = build_services(settings)

    async def main() -> list[Finding]:
        try:
            return await check_public_url(services)
        finally:
            await services.aclose()

    findings = asyncio.run(main())
    services.engine.dispose()
    assert [f.verdict for f in findings] == ["fail"]
    assert "is not HTTPS" in findings[0].detail and "deploy/" in findings[0].detail


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_R41_doctor_warns_that_sqlite_is_for_one_machine(database_url: str) -> None:
    findings = check_settings(_real(database_url=database_url, hubspot_app_id="1",
                                    hubspot_client_secret="x", hubspot_developer_api_key="x",
                                    aircall_client_id="x", aircall_client_secret="x"))

    assert [f.verdict for f in findings] == ["ok", "warn"]
    assert "PostgreSQL" in findings[1].detail


@pytest.mark.both_databases
def test_R41_doctor_on_a_database_never_migrated_says_so_without_crashing(
    stack: Stack, tmp_path
) -> None:
    settings = stack.settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})

    failures = _failures(_doctor(stack, settings))
    assert len(failures) == 1
    assert "at revision none" in failures[0] and "whatsapp-helpdesk migrate" in failures[0]

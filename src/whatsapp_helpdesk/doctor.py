"""`whatsapp-helpdesk doctor`: check a configuration before going live (issue 15 item 12).

Each check says, in words, what is right or what is wrong and what to do. It reads and never
changes anything: no token is written, no webhook registered, no migration run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from whatsapp_helpdesk.aircall import AIRCALL_EVENTS
from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.credentials import aircall_access_token, hubspot_access_token
from whatsapp_helpdesk.db.migrate import alembic_config
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.hubspot import scopes_missing
from whatsapp_helpdesk.settings import Settings

Verdict = Literal["ok", "warn", "fail"]
MARKS: dict[Verdict, str] = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}

# Needed outside the sandbox, with what each is for.
REAL_SETTINGS = {
    "HUBSPOT_APP_ID": "the HubSpot app's id",
    "HUBSPOT_CLIENT_ID": "the HubSpot app's OAuth client id",
    "HUBSPOT_CLIENT_SECRET": "the HubSpot app's client secret (also checks webhook signatures)",
    "HUBSPOT_DEVELOPER_API_KEY": "registers the custom channel",
    "AIRCALL_CLIENT_ID": "the Aircall app's OAuth client id",
    "AIRCALL_CLIENT_SECRET": "the Aircall app's OAuth client secret",
}


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    what: str
    detail: str

    def line(self) -> str:
        return f"[{MARKS[self.verdict]}] {self.what}: {self.detail}"


def check_settings(settings: Settings) -> list[Finding]:
    if settings.sandbox_mode:
        return [Finding("warn", "Settings", "no HubSpot and no Aircall credentials are set, so "
                        "the service runs in sandbox mode against the built-in emulators. For "
                        "real traffic set " + ", ".join(REAL_SETTINGS) + ".")]
    values = {
        "HUBSPOT_APP_ID": settings.hubspot_app_id,
        "HUBSPOT_CLIENT_ID": settings.hubspot_client_id,
        "HUBSPOT_CLIENT_SECRET": settings.hubspot_client_secret.get_secret_value(),
        "HUBSPOT_DEVELOPER_API_KEY": settings.hubspot_developer_api_key.get_secret_value(),
        "AIRCALL_CLIENT_ID": settings.aircall_client_id,
        "AIRCALL_CLIENT_SECRET": settings.aircall_client_secret.get_secret_value(),
    }
    missing = [f"{name} ({REAL_SETTINGS[name]})" for name, value in values.items() if not value]
    findings = []
    if missing:
        findings.append(Finding("fail", "Settings", "missing: " + "; ".join(missing) + "."))
    else:
        findings.append(Finding("ok", "Settings", "every HubSpot and Aircall setting is set."))
    if settings.database_url.startswith("sqlite"):
        findings.append(Finding("warn", "Database", "DATABASE_URL is SQLite: fine for one "
                                "machine, but several web and worker processes need "
                                "PostgreSQL (postgresql+psycopg://…)."))
    return findings


def check_database(services: Services) -> Finding:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_revision()
    except Exception as exc:  # any driver error: the words matter, not the type
        return Finding("fail", "Database", f"cannot reach {services.engine.url.render_as_string()}"
                       f" ({type(exc).__name__}: {str(exc).splitlines()[0]}). Check DATABASE_URL "
                       "and that the server is running.")
    url = services.engine.url.render_as_string(hide_password=False)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        return Finding("fail", "Database", f"reachable, but its schema is at revision "
                       f"{current or 'none'} while this version needs {head}: run "
                       "`whatsapp-helpdesk migrate`.")
    return Finding("ok", "Database", f"reachable and migrated (revision {head}).")


async def check_public_url(services: Services) -> list[Finding]:
    settings = services.settings
    url = settings.public_url
    findings = []
    parts = urlsplit(url)
    if parts.scheme != "https" and not settings.sandbox_mode:
        findings.append(Finding("fail", "PUBLIC_URL", f"{url} is not HTTPS: HubSpot and Aircall "
                                "call webhooks and OAuth redirects over HTTPS only. Put the "
                                "service behind a TLS reverse proxy (see deploy/)."))
    try:
        answer = await services.http.get(f"{url}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        findings.append(Finding("fail", "PUBLIC_URL", f"{url}/healthz does not answer "
                                f"({type(exc).__name__}): is `whatsapp-helpdesk web` running, "
                                "and does the proxy forward to it?"))
        return findings
    if answer.status_code != 200:
        findings.append(Finding("fail", "PUBLIC_URL", f"{url}/healthz answered "
                                f"{answer.status_code}, not 200: the proxy may send it "
                                "somewhere else."))
    elif not findings:
        findings.append(Finding("ok", "PUBLIC_URL", f"{url}/healthz answers."))
    return findings


async def check_channel(services: Services) -> Finding:
    channel_id = services.channel_id()
    if not channel_id:
        return Finding("fail", "HubSpot channel", "no custom channel is registered: run "
                       "`whatsapp-helpdesk hubspot register-channel`, then set "
                       "HUBSPOT_CHANNEL_ID to the id it prints.")
    try:
        channel = await services.hubspot_developer().get_channel(channel_id)
    except DeliveryError as exc:
        return Finding("fail", "HubSpot channel", f"HubSpot refused to show channel "
                       f"{channel_id}: {exc.message} Check HUBSPOT_DEVELOPER_API_KEY, "
                       "HUBSPOT_APP_ID and HUBSPOT_CHANNEL_ID.")
    expected = f"{services.settings.public_url}/webhooks/hubspot"
    if channel.webhook_url != expected:
        return Finding("fail", "HubSpot channel", f"HubSpot sends the channel's events to "
                       f"{channel.webhook_url or 'nowhere'}, not {expected}: run "
                       "`whatsapp-helpdesk hubspot register-channel` again.")
    return Finding("ok", "HubSpot channel", f"channel {channel_id} sends its events to "
                   f"{expected}.")


async def check_installation(services: Services, installation: Installation) -> list[Finding]:
    name = (f"Installation {installation.id} (HubSpot account "
            f"{installation.hubspot_portal_id or '?'}, Aircall "
            f"{installation.aircall_company_name or '?'})")
    findings = []
    try:
        token = await hubspot_access_token(services, installation.id)
        info = await services.hubspot_oauth().token_info(token)
    except DeliveryError as exc:
        findings.append(Finding("fail", name, f"HubSpot refused its credentials: {exc.message} "
                                "An admin reinstalls at PUBLIC_URL/oauth/hubspot/install."))
    else:
        missing = scopes_missing(info.scopes)
        if missing:
            findings.append(Finding("fail", name, "HubSpot did not grant the scopes "
                                    + ", ".join(missing) + ": add them to the app and "
                                    "reinstall at PUBLIC_URL/oauth/hubspot/install."))
        else:
            findings.append(Finding("ok", name, "HubSpot credentials valid, every scope granted."))
    findings.append(await _check_aircall(services, installation, name))
    return findings


async def _check_aircall(services: Services, installation: Installation, name: str) -> Finding:
    reinstall = "Reinstall Aircall at PUBLIC_URL/oauth/aircall/install (the service "\
        "registers its webhook then)."
    try:
        client = services.aircall(aircall_access_token(services, installation.id))
        await client.ping()
        webhook = (await client.get_webhook(installation.aircall_webhook_id)
                   if installation.aircall_webhook_id else None)
    except DeliveryError as exc:
        return Finding("fail", name, f"Aircall refused its credentials: {exc.message} "
                       + reinstall)
    expected = f"{services.settings.public_url}/webhooks/aircall"
    if webhook is None:
        return Finding("fail", name, "Aircall has no webhook of ours: no message would "
                       "arrive. " + reinstall)
    if webhook.url != expected:
        return Finding("fail", name, f"Aircall's webhook calls {webhook.url}, not {expected}. "
                       + reinstall)
    if not webhook.active:
        return Finding("fail", name, "Aircall disabled our webhook (it failed too often): "
                       "no message arrives. Check that PUBLIC_URL answers, then " + reinstall)
    missing = [e for e in AIRCALL_EVENTS if e not in webhook.events]
    if missing:
        return Finding("fail", name, "Aircall's webhook lacks the events "
                       + ", ".join(missing) + ". " + reinstall)
    return Finding("ok", name, f"Aircall credentials valid; webhook active at {expected}.")


async def run_checks(services: Services) -> list[Finding]:
    findings = check_settings(services.settings)
    database = check_database(services)
    findings.append(database)
    findings += await check_public_url(services)
    if database.verdict == "fail":
        return findings  # the channel id and the installations are read from it
    findings.append(await check_channel(services))
    with services.sessions() as session:
        installations = list(session.scalars(select(Installation).order_by(Installation.id)))
        for installation in installations:
            session.expunge(installation)
    if not installations:
        findings.append(Finding("warn", "Installations", "none yet: an admin installs at "
                                f"{services.settings.public_url}/oauth/hubspot/install."))
    for installation in installations:
        findings += await check_installation(services, installation)
    return findings

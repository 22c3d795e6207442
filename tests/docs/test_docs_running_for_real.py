"""The README's "Running for real" and deploy/ match the code (issue 15 item 11; R40, R41):
the HubSpot scopes the service asks for, the callback and webhook paths it serves, the
commands it has, and the settings it reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from whatsapp_helpdesk.cli import main
from whatsapp_helpdesk.hubspot.oauth import HUBSPOT_SCOPES
from whatsapp_helpdesk.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEPLOY = ROOT / "deploy"


def _running_for_real() -> str:
    text = README.read_text()
    return text[text.index("## Running for real"):text.index("## Settings")]


def test_R41_readme_lists_exactly_the_hubspot_scopes_the_service_asks_for() -> None:
    [row] = [line for line in _running_for_real().splitlines()
             if line.startswith("| required scopes |")]
    assert sorted(re.findall(r"`([^`]+)`", row)) == sorted(HUBSPOT_SCOPES)


@pytest.mark.parametrize("path", ["/oauth/hubspot/callback", "/oauth/aircall/callback",
                                  "/webhooks/hubspot", "/webhooks/aircall", "/connect",
                                  "/oauth/hubspot/install"])
def test_R41_readme_names_each_url_the_providers_need(path: str) -> None:
    assert f"PUBLIC_URL{path}" in _running_for_real()


def _commands() -> list[list[str]]:
    """Every `whatsapp-helpdesk …` command of the README's section and of deploy/."""
    texts = [_running_for_real(), *(p.read_text() for p in sorted(DEPLOY.rglob("*"))
                                     if p.is_file())]
    found = []
    for text in texts:
        for match in re.finditer(r"whatsapp-helpdesk ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)",
                                 text):
            words = match.group(1).split()
            if words[0] not in ("web", "worker", "migrate", "doctor", "hubspot", "deliveries",
                                "serve", "sandbox", "replay"):
                continue  # "whatsapp-helpdesk-web@…" unit names, prose
            found.append(words)
    assert len(found) >= 8
    return found


def test_R40_every_command_the_docs_give_exists() -> None:
    for words in _commands():
        with pytest.raises(SystemExit) as exit_:
            main([*words, "--help"])
        assert exit_.value.code == 0, words


def test_R41_deploy_env_example_sets_only_real_settings() -> None:
    names = re.findall(r"^([A-Z_]+)=", (DEPLOY / "whatsapp-helpdesk.env.example").read_text(),
                       re.MULTILINE)
    known = {name.upper() for name in Settings.model_fields}
    assert names and set(names) <= known
    assert {"PUBLIC_URL", "SECRET_KEY", "DATABASE_URL"} <= set(names)


def test_R41_systemd_units_run_the_packaged_command_with_the_env_file() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert [u.name for u in units] == ["whatsapp-helpdesk-migrate.service",
                                       "whatsapp-helpdesk-web@.service",
                                       "whatsapp-helpdesk-worker@.service"]
    for unit in units:
        text = unit.read_text()
        assert "EnvironmentFile=/etc/whatsapp-helpdesk/env" in text
        assert re.search(r"^ExecStart=\S+/bin/whatsapp-helpdesk \w+$", text, re.MULTILINE)
    assert "Environment=PORT=%i" in (DEPLOY / "systemd/whatsapp-helpdesk-web@.service"
                                     ).read_text()


@pytest.mark.parametrize("proxy", ["Caddyfile", "nginx.conf"])
def test_R41_proxy_examples_forward_to_the_web_units_ports(proxy: str) -> None:
    text = (DEPLOY / proxy).read_text()
    assert "127.0.0.1:8710" in text and "127.0.0.1:8711" in text
    assert "helpdesk.example.com" in text

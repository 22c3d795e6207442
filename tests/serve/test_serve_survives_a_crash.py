"""Issue 11 item 1 (soak): the real `serve` survives its worker's crash.

`whatsapp-helpdesk serve` in sandbox mode on free ports and a temp SQLite; the worker child
is SIGKILLed; `/healthz` shows it restarted under a new pid, and a customer's message sent
afterwards is published in HubSpot (only the new worker can have done it). SIGTERM then
stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.private_postgres import free_port
from harness.spawned import NOT_INHERITED, children
from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db.models import Number
from whatsapp_helpdesk.settings import Settings

pytestmark = pytest.mark.slow(seconds=13)

PORTAL = 4242
SUPPORT_FR = "1001"


def _wait_for(what: str, check: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout:.0f} s\n{log.read_text()[-3000:]}", pytrace=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _connect_support_france(settings: Settings, hubspot: str) -> None:
    services = build_services(settings)
    try:
        token = httpx.post(f"{hubspot}/_sandbox/portals/{PORTAL}/channel-connections",
                           json={"channelId": services.channel_id(), "userId": 1}
                           ).json()["accountToken"]
        with services.sessions() as session:
            number = session.scalars(select(Number).where(
                Number.aircall_number_id == SUPPORT_FR)).one()
            installation_id, number_id = number.installation_id, number.id

        async def main() -> None:
            try:
                await connect_number(services, installation_id=installation_id,
                                     number_id=number_id, account_token=token)
            finally:
                await services.aclose()

        asyncio.run(main())
    finally:
        services.engine.dispose()


def test_issue11_serve_restarts_a_sigkilled_worker_and_messages_still_flow(tmp_path) -> None:
    web_port, hub_port, air_port = free_port(), free_port(), free_port()
    web = f"http://127.0.0.1:{web_port}"
    hubspot, aircall = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{air_port}"
    database_url = f"sqlite:///{tmp_path}/demo.sqlite3"
    env = {key: value for key, value in os.environ.items() if not NOT_INHERITED.match(key)}
    env.update({"DATABASE_URL": database_url, "PORT": str(web_port), "PUBLIC_URL": web,
                "SANDBOX_HUBSPOT_PORT": str(hub_port), "SANDBOX_AIRCALL_PORT": str(air_port),
                "REORDER_GRACE_SECONDS": "0.2", "LOG_LEVEL": "WARNING"})
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "whatsapp_helpdesk.cli", "serve"], cwd=tmp_path, env=env,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for("`serve` did not start", lambda: "Stop with Ctrl-C." in log.read_text(),
                  90, log)
        first = _wait_for("/healthz did not list the worker",
                          lambda: children(web).get("worker"), 10, log)
        assert first["restarts"] == 0 and first["running"] and _alive(first["pid"])

        os.kill(first["pid"], signal.SIGKILL)
        restarted = _wait_for(
            "the worker was not restarted",
            lambda: (c := children(web).get("worker")) and c["restarts"] == 1
            and c["running"] and c, 30, log)
        assert restarted["pid"] != first["pid"] and _alive(restarted["pid"])
        assert restarted["last_exit_code"] == -signal.SIGKILL
        assert "serve.child_restarted" in log.read_text()

        settings = Settings(database_url=database_url, public_url=web,
                            sandbox_hubspot_port=hub_port, sandbox_aircall_port=air_port,
                            _env_file=None)  # type: ignore[call-arg]
        _connect_support_france(settings, hubspot)
        sent = httpx.post(f"{aircall}/_sandbox/customer/messages", json={
            "from": "+33612345678", "number_id": int(SUPPORT_FR),
            "text": "still there after the crash?"})
        assert sent.status_code == 201, sent.text

        def published() -> bool:
            tickets = httpx.get(f"{hubspot}/_sandbox/portals/{PORTAL}/tickets").json()["tickets"]
            return any(m["text"] == "still there after the crash?"
                       for t in tickets for m in t["messages"])

        _wait_for("the message was not published after the restart", published, 30, log)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            exit_code: int | None = serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            exit_code = None
        try:
            os.killpg(serve.pid, 0)
            left_behind = True
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            left_behind = False
    assert exit_code == 0, f"`serve` did not stop cleanly:\n{log.read_text()[-3000:]}"
    assert not left_behind, "`serve` left some of its processes running"

"""`whatsapp-helpdesk` — run, migrate, register, replay.

    serve      web app + worker (+ the sandboxes when no credentials are set), URLs printed
    web        the web app alone          worker    the worker alone
    migrate    apply database migrations  sandbox   the two emulators alone
    hubspot register-channel              replay FIXTURE   POST a webhook fixture to a server
    rotate-keys   re-encrypt stored tokens with the first SECRET_KEY
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: `whatsapp-helpdesk --help` stays quick, and
    # a command imports only what it uses (the worker no web server: uvicorn)
    from whatsapp_helpdesk.bootstrap import Services
    from whatsapp_helpdesk.doctor import Finding
    from whatsapp_helpdesk.settings import Settings


def _configure_logging(settings: Settings) -> None:
    # Secrets are never logged (R41): logging_redaction.py redacts every log line.
    from whatsapp_helpdesk.logging_redaction import configure_logging, settings_secrets

    configure_logging(settings.log_level, secrets=settings_secrets(settings))


def _services(settings: Settings) -> Services:
    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db.migrate import upgrade

    services = build_services(settings)
    upgrade(services.engine)  # migrations run on every start (idempotent)
    return services


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db.migrate import upgrade

    services = build_services(settings)
    try:
        print(f"migrating {services.engine.url.render_as_string()}", flush=True)
        upgrade(services.engine, progress=lambda line: print(line, flush=True))
    finally:
        services.engine.dispose()
    return 0


def cmd_deliveries_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Requeue every failed delivery (of one installation with --installation), as the
    dashboard's Retry does one by one, counting as it goes."""
    from sqlalchemy import select

    from whatsapp_helpdesk.dashboard.actions import ActionRefused, retry_delivery
    from whatsapp_helpdesk.dashboard.reads import KIND_LABELS
    from whatsapp_helpdesk.db import outbox
    from whatsapp_helpdesk.db.models import OutboxEntry

    services = _services(settings)
    query = select(OutboxEntry.id, OutboxEntry.installation_id, OutboxEntry.kind).where(
        OutboxEntry.state == outbox.FAILED).order_by(OutboxEntry.id)
    if args.installation is not None:
        query = query.where(OutboxEntry.installation_id == args.installation)
    with services.sessions() as session:
        failed = list(session.execute(query))
    if not failed:
        print("No failed delivery to retry.")
        return 0
    print(f"{len(failed)} failed deliveries to retry", flush=True)
    requeued = 0
    for done, (entry_id, installation_id, kind) in enumerate(failed, 1):
        try:
            retry_delivery(services, installation_id, entry_id)
        except ActionRefused as exc:
            outcome = f"skipped: {exc.message}"
        else:
            requeued += 1
            outcome = "requeued"
        print(f"[{done}/{len(failed)}] delivery {entry_id} ({KIND_LABELS.get(kind, kind)}): "
              f"{outcome}", flush=True)
    print(f"{requeued} requeued, {len(failed) - requeued} skipped. Running workers send them "
          "now.")
    return 0


def _ports_taken(settings: Settings, *, web: bool, sandbox: bool) -> bool:
    """Say at once which wanted port is busy, by whom and what moves it (issue 15)."""
    from whatsapp_helpdesk.ports import WantedPort, busy_ports

    wanted = []
    if sandbox:
        wanted += [
            WantedPort("127.0.0.1", settings.sandbox_hubspot_port, "SANDBOX_HUBSPOT_PORT",
                       "the sandbox HubSpot"),
            WantedPort("127.0.0.1", settings.sandbox_aircall_port, "SANDBOX_AIRCALL_PORT",
                       "the sandbox Aircall"),
        ]
    if web:
        wanted.append(WantedPort(settings.host, settings.port, "PORT", "the web app"))
    problems = busy_ports(wanted)
    for problem in problems:
        print(f"cannot start: {problem}", file=sys.stderr)
    return bool(problems)


def web_server_options(settings: Settings) -> dict[str, Any]:
    """How `web` serves (uvicorn's options), shared with bench/ingest.py's bare endpoint so
    that the two are measured on the same server stack."""
    return {"host": settings.host, "port": settings.port, "log_level": "warning",
            # uvicorn's 5 s equals common clients' idle expiry: a request sent as the server
            # closed the connection got no response (issue 17, ~1 in 1,400 under load).
            "timeout_keep_alive": settings.web_keep_alive_seconds}


def cmd_web(settings: Settings, _args: argparse.Namespace) -> int:
    import structlog
    from sqlalchemy.exc import SQLAlchemyError

    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db.migrate import upgrade
    from whatsapp_helpdesk.web.app import create_app

    if _ports_taken(settings, web=True, sandbox=False):
        return 2
    services = build_services(settings)
    try:
        upgrade(services.engine)
    except SQLAlchemyError as exc:
        # R53: a web process (re)started while the database is down must still take
        # authenticated webhooks into its spool, or Aircall disables the webhook; it migrates
        # nothing then (`migrate`, `serve` and the worker do, once the database answers).
        structlog.get_logger(__name__).warning(
            "web.started_without_database", error=str(exc).splitlines()[0][:200])
    app = create_app(services)
    import uvicorn

    uvicorn.run(app, **web_server_options(settings))
    return 0


# The longest pause between two tries of a worker waiting for its database at start.
DATABASE_WAIT_MAX_SECONDS = 5.0


def _migrated_once_the_database_answers(
    services: Services, *, sleep: Callable[[float], None] = time.sleep,
    process: str = "worker",
) -> None:
    """Migrations, tried until the database answers (R53). A worker (re)started during an
    outage exited with a traceback (rc 1): under `serve` the supervisor restarted it again
    and again, and a process manager would count it as crashing. Only an unreachable
    database is waited for; a migration that fails on a reachable one still stops the
    worker. SIGTERM while waiting ends the process as usual (nothing is held)."""
    import structlog
    from sqlalchemy.exc import InterfaceError, OperationalError

    from whatsapp_helpdesk.db.migrate import upgrade

    wait, attempt = 0.25, 0
    while True:
        try:
            upgrade(services.engine)
            return
        except (OperationalError, InterfaceError) as exc:
            attempt += 1
            structlog.get_logger(__name__).warning(
                f"{process}.waiting_for_database", attempt=attempt, retry_in_seconds=wait,
                error=str(exc).splitlines()[0][:200])
            services.engine.dispose()  # no half-open connection kept for the next try
            sleep(wait)
            wait = min(wait * 2, DATABASE_WAIT_MAX_SECONDS)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.scheduling import lower_priority
    from whatsapp_helpdesk.worker.runner import Worker

    lower_priority(settings.worker_niceness, settings.worker_cpu_policy)
    services = build_services(settings, for_the_worker=True)
    _migrated_once_the_database_answers(services)
    worker = Worker(services)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        if args.once:
            await worker.run_until_idle()
            await worker.services.aclose()
        else:
            await worker.run()

    asyncio.run(main())
    return 0


def cmd_sandbox(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    # The only place the bridge's code touches the sandbox: starting it.
    from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app
    from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app

    if _ports_taken(settings, web=False, sandbox=True):
        return 2
    hubspot_url = f"http://127.0.0.1:{settings.sandbox_hubspot_port}"
    aircall_url = f"http://127.0.0.1:{settings.sandbox_aircall_port}"
    servers = [
        uvicorn.Server(uvicorn.Config(
            hubspot_app(public_base_url=hubspot_url, demo_home_url=f"{settings.public_url}/"),
            host="127.0.0.1", port=settings.sandbox_hubspot_port, log_level="warning")),
        uvicorn.Server(uvicorn.Config(
            # The customer phone's "jump the clock" moves HubSpot's clock and ours too.
            aircall_app(public_base_url=aircall_url, clock_followers=settings.sandbox_clocks,
                        demo_home_url=f"{settings.public_url}/"),
            host="127.0.0.1", port=settings.sandbox_aircall_port, log_level="warning")),
    ]

    async def main() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(main())
    return 0


def cmd_doctor(settings: Settings, _args: argparse.Namespace) -> int:
    """Check the configuration before going live; changes nothing (not even migrations)."""
    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.doctor import run_checks

    services = build_services(settings)

    async def main() -> list[Finding]:
        try:
            return await run_checks(services)
        finally:
            await services.aclose()

    findings = asyncio.run(main())
    for finding in findings:
        print(finding.line())
    failed = sum(f.verdict == "fail" for f in findings)
    print(f"{failed} problem{'s' if failed != 1 else ''} found." if failed else "All good.")
    return 1 if failed else 0


def cmd_register_channel(settings: Settings, _args: argparse.Namespace) -> int:
    from whatsapp_helpdesk.connect.install import register_channel

    services = _services(settings)

    async def main() -> str:
        try:
            return await register_channel(services)
        finally:
            await services.aclose()

    channel_id = asyncio.run(main())
    print(f"custom channel registered: id {channel_id} (set HUBSPOT_CHANNEL_ID={channel_id})")
    return 0


def cmd_rotate_keys(settings: Settings, _args: argparse.Namespace) -> int:
    """Re-encrypt every stored token with the first SECRET_KEY (issue 12, item 6)."""
    from whatsapp_helpdesk.operations.key_rotation import rotate_keys

    report = rotate_keys(_services(settings))
    return 1 if report.failed else 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    """POST a fixture to a running service (zulip's replay): `--token` replaces the body's."""
    import httpx

    body = json.loads(Path(args.fixture).read_text())
    if args.token and isinstance(body, dict):
        body["token"] = args.token
    provider = args.provider or ("hubspot" if "hubspot" in args.fixture else "aircall")
    url = args.url or f"{settings.public_url}/webhooks/{provider}"
    response = httpx.post(url, json=body, timeout=10)
    print(response.status_code, response.text)
    return 0 if response.is_success else 1


async def install_on_sandbox(settings: Settings) -> None:
    """Sandbox mode: start from the installed demo (operations/sandbox_demo.py)."""
    from whatsapp_helpdesk.operations.sandbox_demo import install_demo

    services = _services(settings)
    try:
        await install_demo(services)
    finally:
        await services.aclose()


def _wait_http(url: str, seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up in {seconds:.0f} s")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from whatsapp_helpdesk.supervisor import Supervisor

    if _ports_taken(settings, web=True, sandbox=settings.sandbox_mode):
        return 2
    _migrated_before_the_children(settings)
    # SIGTERM (a process manager, `docker stop`) stops the children like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    exe = [sys.executable, "-m", "whatsapp_helpdesk.cli"]
    state_dir = Path(tempfile.mkdtemp(prefix="whatsapp-helpdesk-serve-"))
    # A child that exits is started again (with back-off) rather than stopping the stack;
    # the web's /healthz shows the children's state from this file (issue 11 item 1).
    supervisor = Supervisor(env=dict(os.environ), state_path=state_dir / "children.json")
    try:
        if settings.sandbox_mode:
            supervisor.start("sandbox", [*exe, "sandbox"])
            _wait_http(f"http://127.0.0.1:{settings.sandbox_hubspot_port}/_sandbox/clock")
            _wait_http(f"http://127.0.0.1:{settings.sandbox_aircall_port}/_sandbox/clock")
        supervisor.start("web", [*exe, "web"])
        _wait_http(f"http://{settings.host}:{settings.port}/healthz")
        if settings.sandbox_mode:
            asyncio.run(install_on_sandbox(settings))
        supervisor.start("worker", [*exe, "worker"])
        _print_urls(settings)
        while True:
            supervisor.tick()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and orphan children.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _migrated_before_the_children(settings: Settings) -> None:
    """Migrate once, before the children start. With the database unreachable (R53) a real
    deployment starts anyway: its web process takes authenticated webhooks into the spool
    (or Aircall disables the webhook), and its worker waits for the database and migrates
    then. `serve` used to exit with a traceback here, so a restart during an outage left
    no web process at all. The sandbox waits instead: its demo install needs the database."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.db.migrate import upgrade

    services = build_services(settings)
    try:
        if settings.sandbox_mode:
            _migrated_once_the_database_answers(services, process="serve")
            return
        try:
            upgrade(services.engine)
        except (OperationalError, InterfaceError) as exc:
            import structlog

            structlog.get_logger(__name__).warning(
                "serve.started_without_database", error=str(exc).splitlines()[0][:200])
    finally:
        services.engine.dispose()


def _print_urls(settings: Settings) -> None:
    url = settings.public_url
    if settings.sandbox_mode:
        lines = [
            "",
            "whatsapp-helpdesk is running on the built-in sandbox",
            f"  start here           {url}/   (the four screens, the story, a reset)",
            f"  sandbox HubSpot      http://127.0.0.1:{settings.sandbox_hubspot_port}/",
            f"  sandbox Aircall      http://127.0.0.1:{settings.sandbox_aircall_port}/",
        ]
    else:
        lines = ["", "whatsapp-helpdesk is running", f"  service              {url}/"]
    lines += [
        f"  dashboard            {url}/dashboard",
        f"  health / metrics     {url}/healthz  {url}/metrics",
        "Stop with Ctrl-C.",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whatsapp-helpdesk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="web app + worker (+ sandboxes in sandbox mode)")
    commands.add_parser("web", help="the web app alone")
    worker = commands.add_parser("worker", help="the outbox worker alone")
    worker.add_argument("--once", action="store_true", help="drain what is due, then exit")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("rotate-keys",
                        help="re-encrypt stored tokens with the first SECRET_KEY")
    commands.add_parser("doctor", help="check settings, database, URLs and credentials")
    deliveries = commands.add_parser("deliveries", help="failed deliveries")
    deliveries_commands = deliveries.add_subparsers(dest="deliveries_command", required=True)
    retry = deliveries_commands.add_parser("retry", help="requeue every failed delivery")
    retry.add_argument("--installation", type=int, help="only this installation's")
    commands.add_parser("sandbox", help="the sandbox HubSpot and Aircall emulators alone")
    hubspot = commands.add_parser("hubspot", help="HubSpot administration")
    hubspot_commands = hubspot.add_subparsers(dest="hubspot_command", required=True)
    hubspot_commands.add_parser("register-channel", help="create/update the custom channel (R1)")
    replay = commands.add_parser("replay", help="POST a webhook fixture to a running service")
    replay.add_argument("fixture")
    replay.add_argument("--provider", choices=["aircall", "hubspot"])
    replay.add_argument("--url")
    replay.add_argument("--token", help="Aircall webhook token to put in the body")
    args = parser.parse_args(argv)
    from whatsapp_helpdesk.settings import Settings

    try:
        settings = Settings()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    handlers = {
        "serve": cmd_serve, "web": cmd_web, "worker": cmd_worker, "migrate": cmd_migrate,
        "sandbox": cmd_sandbox, "replay": cmd_replay, "rotate-keys": cmd_rotate_keys,
        "doctor": cmd_doctor,
    }
    if args.command == "hubspot":
        return cmd_register_channel(settings, args)
    if args.command == "deliveries":
        return cmd_deliveries_retry(settings, args)
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    raise SystemExit(main())

"""A private, throw-away PostgreSQL cluster (initdb + pg_ctl in a temporary directory, on a
port of its own), for the tests when no server answers on the configured URL and for the
chaos suite, which stops and starts its database at will.

Where the server binaries come from: Debian's PostgreSQL packages when installed
(/usr/lib/postgresql/<version>/bin), otherwise the `pgserver` package from PyPI (a test
extra), which carries PostgreSQL's binaries in its wheel. So the suite needs no system
PostgreSQL and no root.

initdb refuses to run as root: as root, the cluster is owned by and run as the `postgres`
system user when there is one (Debian's package creates it), else as `nobody` (always
there); no user is created. Otherwise it runs as the current user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    # Bound then released: a small race with other programs, acceptable on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def system_binaries() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                        key=lambda p: int(p.parent.parent.name))
    return candidates[-1].parent if candidates else None


def package_binaries() -> Path | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return found if (found / "pg_ctl").exists() else None


def postgres_binaries() -> Path:
    found = system_binaries() or package_binaries()
    if found is None:
        raise RuntimeError(
            "no PostgreSQL server binaries: neither Debian's (/usr/lib/postgresql/*/bin) nor "
            "the pgserver package's (pip install -e '.[test]' installs it)")
    return found


def _user_for_root() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists "
                       "to run PostgreSQL as (initdb refuses root)")


class PrivatePostgres:
    """A cluster the caller may init, start, stop and destroy; nothing shared with the
    machine's other servers."""

    def __init__(self, root: Path, *, binaries: Path | None = None):
        self.bin = binaries or postgres_binaries()
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.as_user = _user_for_root() if os.geteuid() == 0 else None

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True,
                              timeout=120, cwd=self.root)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return done

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.as_user:
            owner = pwd.getpwnam(self.as_user)
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            # The cluster's user must reach its directory through the run's (private) one.
            for parent in self.root.parents:
                if parent == Path(tempfile.gettempdir()):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self, *, fsync: bool = False) -> None:
        # fsync off by default: the cluster is thrown away at the end, and an immediate
        # stop kills the server, not the OS, so committed data survives in the page cache.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.socket_dir} "
                   f"-c fsync={'on' if fsync else 'off'} -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)

    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status",
                         check=False).returncode == 0

    def libpq_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.libpq_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        if self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def started_in_a_temporary_directory() -> PrivatePostgres:
    """Init and start a cluster under a new temporary directory (destroy() removes it)."""
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="whatsapp-helpdesk-pg-")))
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server

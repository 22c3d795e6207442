"""Is a port free before we listen on it? (issue 15 item 8)

Starting on a busy port used to end in a 30-second wait and an error naming another port.
`busy_ports` answers before anything starts: the port, the process that holds it when this
machine lets us see it (Linux's /proc), and the variable that moves it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class WantedPort:
    host: str
    port: int
    variable: str  # the setting that moves it, e.g. "PORT"
    what: str  # who wanted it, in words: "the web app"


def is_free(host: str, port: int) -> bool:
    """Binding works: SO_REUSEADDR as uvicorn sets it, so a closed socket in TIME_WAIT does
    not count as busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == _TCP_LISTEN:
                inodes.add(fields[9])
    return inodes


def holder(port: int) -> str | None:
    """"process 1234 (python -m http.server)" for the listener on `port`, when /proc shows
    it (another user's processes are hidden from an ordinary user: then None)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for process in _PROC.iterdir():
        if not process.name.isdigit():
            continue
        try:
            for fd in (process / "fd").iterdir():
                if str(fd.readlink()) in targets:
                    command = (process / "cmdline").read_bytes().replace(b"\0", b" ")
                    name = command.decode(errors="replace").strip() or "?"
                    return f"process {process.name} ({name[:120]})"
        except OSError:
            continue  # gone, or not ours to look at
    return None


def busy_message(wanted: WantedPort) -> str:
    held_by = holder(wanted.port)
    by = f", held by {held_by}" if held_by else " (by a process this user cannot see)"
    return (
        f"Port {wanted.port} on {wanted.host}, wanted by {wanted.what}, is already in use"
        f"{by}. Stop that process, or choose another port: {wanted.variable}=<port>."
    )


def busy_ports(wanted: list[WantedPort]) -> list[str]:
    """One message per port of `wanted` that is already taken; empty when all are free."""
    return [busy_message(w) for w in wanted if not is_free(w.host, w.port)]

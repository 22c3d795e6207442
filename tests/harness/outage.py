"""Make the database unreachable for the service under test, then bring it back (R53).

Never the system PostgreSQL itself: on PostgreSQL the test's own database refuses new
connections (`ALLOW_CONNECTIONS false`) and its open ones are terminated; on SQLite the
file is moved aside and a dangling symbolic link takes its place, so that opening it fails.

Each SQLite step is a single rename, so the path is never missing for an instant: when it
was (an `rmdir` then a `rename` back), a reconnect landing in between created a fresh,
empty database there and the spool replayed into it ("no installation for this portal").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url


class DatabaseOutage:
    def __init__(self, database_url: str, engine: Engine, postgres_server: Any = None) -> None:
        self.url = make_url(database_url)
        self.engine = engine
        self.server = postgres_server
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        self.is_down = False
        if self.is_postgres and postgres_server is None:
            raise ValueError("a PostgreSQL outage needs the postgres_server fixture")

    def cut(self) -> None:
        self.is_down = True
        if self.is_postgres:
            name = self.url.database
            with self.server.admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            return
        # Close the pool's connections while the file is still in place (WAL checkpoint).
        self.engine.dispose()
        path = Path(str(self.url.database))
        os.link(path, self._away(path))  # the database lives on under a second name
        link = path.with_name(path.name + ".cut")
        # A link to a file in a directory that does not exist: opening fails, and SQLite
        # cannot create a fresh database there either.
        os.symlink(path.with_name(path.name + ".no-such-dir") / "database", link)
        os.replace(link, path)  # one atomic step
        self.engine.dispose()  # one opened in between would still reach the moved file

    def restore(self) -> None:
        self.is_down = False
        if self.is_postgres:
            with self.server.admin.connect() as connection:
                connection.execute(text(
                    f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS true'))
            return
        path = Path(str(self.url.database))
        os.replace(self._away(path), path)  # replaces the link in one atomic step

    @staticmethod
    def _away(path: Path) -> Path:
        return path.with_name(path.name + ".away")

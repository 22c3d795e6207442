"""Alembic migrations, run programmatically (on start, and by `whatsapp-helpdesk migrate`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def _migrating(engine: Engine) -> Iterator[tuple[Config, Connection]]:
    """One transaction for the whole run. On SQLite, foreign keys are off meanwhile: a batch
    migration rebuilds a table (copy, drop, rename), and dropping the old table with foreign
    keys on would cascade-delete every row that points at it. They are checked before the
    commit and switched on again after."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection
        assert raw is not None  # a live connection has its driver's connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, or it is ignored
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                yield config, connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, progress: Callable[[str], None] | None = None) -> None:
    """To the newest schema; with `progress`, one migration at a time, each one reported
    (`whatsapp-helpdesk migrate`, issue 15), still in one transaction."""
    with _migrating(engine) as (config, connection):
        if progress is None:
            command.upgrade(config, "head")
            return
        scripts = ScriptDirectory.from_config(config)
        current = MigrationContext.configure(connection).get_current_revision()
        head = scripts.get_current_head()
        pending = list(reversed(list(scripts.iterate_revisions(head, current))))
        if not pending:
            progress(f"already up to date at revision {head}: nothing to do")
            return
        progress(f"at revision {current or 'none'}: {len(pending)} migration"
                 f"{'s' if len(pending) != 1 else ''} to apply")
        for done, script in enumerate(pending, 1):
            started = time.monotonic()
            progress(f"[{done}/{len(pending)}] {script.revision} {script.doc} …")
            command.upgrade(config, script.revision)
            progress(f"      done in {time.monotonic() - started:.1f} s")
        progress(f"up to date at revision {head}")


def downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision` (operators and tests; the service itself only upgrades)."""
    with _migrating(engine) as (config, _):
        command.downgrade(config, revision)

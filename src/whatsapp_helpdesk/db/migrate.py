"""Alembic migrations, run programmatically (on start, and by `whatsapp-helpdesk migrate`).

Every process of the service migrates at its start; nearly always the database is at the
newest revision already. That is seen without Alembic (`at_head`): importing it, loading its
environment and every migration script cost ~0.1-0.2 s of CPU per process start, and the
tests start many."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:  # imported when a migration runs (see the docstring)
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.MULTILINE)


@functools.cache
def head_revision() -> str | None:
    """The newest revision, read from the scripts' `revision` and `down_revision` lines as
    Alembic would find it; None when that is not one plain revision (a script it cannot
    read so, or several heads): then Alembic decides."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        replaced.update(re.findall(r"['\"]([^'\"]+)['\"]", down[0]))
    heads = revisions - replaced
    return heads.pop() if len(heads) == 1 and replaced <= revisions else None


def at_head(engine: Engine) -> bool:
    """Whether the database is at the newest revision: then an upgrade has nothing to do."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no such table: a fresh, empty database
        return False
    return [tuple(row) for row in current] == [(head,)]


def alembic_config(url: str) -> Config:
    from alembic.config import Config

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
    if progress is None and at_head(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

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
    from alembic import command

    with _migrating(engine) as (config, _):
        command.downgrade(config, revision)

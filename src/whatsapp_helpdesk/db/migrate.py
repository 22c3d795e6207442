"""Alembic migrations, run programmatically (on start, and by `whatsapp-helpdesk migrate`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
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


def upgrade(engine: Engine) -> None:
    with _migrating(engine) as (config, _):
        command.upgrade(config, "head")


def downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision` (operators and tests; the service itself only upgrades)."""
    with _migrating(engine) as (config, _):
        command.downgrade(config, revision)

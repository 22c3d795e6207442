"""Every process of the service migrates at its start (db/migrate.py `upgrade`); at the
newest revision it sees so without Alembic, whose import, environment and scripts cost
~0.1-0.2 s of CPU per process start."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from whatsapp_helpdesk.db.migrate import alembic_config, at_head, head_revision, upgrade


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    expected = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head_revision() == expected


def test_at_head_only_on_the_newest_revision(tmp_path, migrated_engine: Engine) -> None:
    empty = create_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        assert not at_head(empty)  # no alembic_version table
    finally:
        empty.dispose()
    assert at_head(migrated_engine)
    with migrated_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert not at_head(migrated_engine)


def test_a_start_on_a_migrated_database_does_not_load_alembic(migrated_database_url: str) -> None:
    probe = (
        "import sys\n"
        "from sqlalchemy import create_engine, text\n"
        "from whatsapp_helpdesk.db.migrate import upgrade\n"
        f"engine = create_engine({migrated_database_url!r})\n"
        "upgrade(engine)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_behind_the_head_upgrade_still_migrates(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/fresh.db")
    try:
        upgrade(engine)  # from nothing: Alembic runs every script
        assert at_head(engine)
    finally:
        engine.dispose()

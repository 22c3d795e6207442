"""`alembic revision` writes a migration alembic can load from the project's template."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from whatsapp_helpdesk.db.migrate import MIGRATIONS, alembic_config


def _copy_of_migrations(tmp_path: Path) -> Path:
    # A copy, so the new revision never lands in the source tree.
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _config(location: Path, tmp_path: Path) -> Config:
    config = alembic_config(f"sqlite:///{tmp_path / 'unused.db'}")
    config.set_main_option("script_location", str(location))
    return config


def test_a_new_revision_follows_the_head_with_its_date_on_the_revision_line(
    tmp_path: Path,
) -> None:
    location = _copy_of_migrations(tmp_path)
    head = ScriptDirectory(str(location)).get_current_head()

    command.revision(_config(location, tmp_path), message="a new table", rev_id="9001")

    script = ScriptDirectory(str(location)).get_revision("9001")
    assert script is not None and script.down_revision == head
    assert script.doc == "a new table"
    assert script.branch_labels == set()
    source = Path(script.path).read_text()
    assert source.startswith('"""a new table"""\n')
    assert "revision = '9001'  # created " in source
    assert "branch_labels" not in source and "depends_on" not in source


def test_a_branch_label_given_to_alembic_is_written(tmp_path: Path) -> None:
    location = _copy_of_migrations(tmp_path)

    command.revision(_config(location, tmp_path), message="a branch", rev_id="9002",
                     branch_label="reports")

    script = ScriptDirectory(str(location)).get_revision("9002")
    assert script is not None and script.branch_labels == {"reports"}

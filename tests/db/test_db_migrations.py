"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Base


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _schema_snapshot(engine: Engine) -> dict[str, object]:
    inspector = inspect(engine)
    return {
        table: (
            [column["name"] for column in inspector.get_columns(table)],
            sorted(index["name"] or "" for index in inspector.get_indexes(table)),
            sorted(uq["name"] or "" for uq in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_migrations_create_every_table_of_the_models(migrated_engine: Engine) -> None:
    assert _tables(migrated_engine) == set(Base.metadata.tables)


def test_migrations_record_the_head_revision(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()

    assert versions == [("0002",)]


def test_running_upgrade_twice_is_a_no_op(migrated_engine: Engine) -> None:
    # The service migrates on every start (R40), so the second run must change nothing.
    before = _schema_snapshot(migrated_engine)

    upgrade(migrated_engine)

    assert _schema_snapshot(migrated_engine) == before
    with migrated_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_autogenerate_finds_no_difference_between_models_and_migrated_schema(
    migrated_engine: Engine,
) -> None:
    # Types and server defaults are compared too; no noise needs ignoring on either
    # database (UTCDateTime compares as its DateTime(timezone=True) implementation).
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_unique_constraint_names_are_unique(migrated_engine: Engine) -> None:
    # Regression: both unique constraints of `messages` were named after their first
    # column ("uq_messages_installation_id"); PostgreSQL refused the migration.
    inspector = inspect(migrated_engine)
    names = [
        uq["name"]
        for table in inspector.get_table_names()
        for uq in inspector.get_unique_constraints(table)
    ]

    assert len(names) == len(set(names))
    assert {"uq_messages_provider_message_id", "uq_messages_hubspot_message_id"} <= set(names)

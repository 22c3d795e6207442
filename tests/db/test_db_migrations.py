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

    assert versions == [("0015",)]


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


def test_downgrade_and_upgrade_again_keep_every_row(migrated_engine: Engine) -> None:
    """A batch migration rebuilds a table on SQLite; with foreign keys on that would
    cascade-delete the rows pointing at it (0002 rebuilds `conversations`)."""
    from whatsapp_helpdesk.db.migrate import downgrade

    statements = [
        "INSERT INTO installations (id, hubspot_scopes, aircall_scopes, created_at, updated_at,"
        " reauth_required) VALUES (1, '', '', '2026-01-01', '2026-01-01', false)",
        "INSERT INTO numbers (id, installation_id, aircall_number_id, name, digits, e164,"
        " calls_enabled, sms_enabled, whatsapp_enabled, connected_to_hubspot,"
        " helpdesk_enabled, native_ticketing) VALUES (1, 1, '1001', 'n', 'd', '+33176360695',"
        " true, true, true, true, true, false)",
        "INSERT INTO conversations (id, installation_id, number_id, customer_e164, created_at)"
        " VALUES (1, 1, 1, '+33612345678', '2026-01-01')",
        "INSERT INTO tickets (id, conversation_id, integration_thread_id, started_at)"
        " VALUES (1, 1, 'wa-1', '2026-01-01')",
        "INSERT INTO messages (id, installation_id, conversation_id, ticket_id, direction, kind,"
        " text, sent_at, stored_at, status) VALUES (1, 1, 1, 1, 'inbound', 'text', 'hi',"
        " '2026-01-01', '2026-01-01', 'published')",
    ]
    with migrated_engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)

    downgrade(migrated_engine, "0001")
    upgrade(migrated_engine)

    with migrated_engine.connect() as connection:
        counts = [connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                  for table in ("conversations", "tickets", "messages")]
    assert counts == [1, 1, 1]

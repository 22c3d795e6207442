"""webhook dedupe per verified registration, not across installations (issue 11, item 2)

A delivery is a duplicate only of a delivery to the same verified registration: the same
Aircall webhook (by its token digest, which names one installation) or, for HubSpot, the
same installation (or portal). One Aircall company connected to two portals gets every
event on both webhooks, and each copy must be kept by its own installation.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'  # created 2026-12-03 07:00:00
down_revision = '0004'


def upgrade() -> None:
    with op.batch_alter_table('webhook_events') as batch:
        batch.add_column(sa.Column('scope', sa.String(length=100), nullable=True))
    # Rows kept before this revision get the scope a new delivery of theirs would get, so
    # a late retry of an old event is still recognised as a duplicate.
    op.execute(
        "UPDATE webhook_events SET scope = COALESCE(("
        " SELECT 'webhook:' || installations.aircall_webhook_token_hash FROM installations"
        " WHERE installations.id = webhook_events.installation_id"
        "   AND installations.aircall_webhook_token_hash IS NOT NULL), '')"
        " WHERE source = 'aircall'"
    )
    op.execute(
        "UPDATE webhook_events SET scope = COALESCE("
        " 'installation:' || CAST(installation_id AS VARCHAR(20)), '')"
        " WHERE source <> 'aircall'"
    )
    with op.batch_alter_table('webhook_events') as batch:
        batch.alter_column('scope', existing_type=sa.String(length=100), nullable=False)
        batch.drop_constraint('uq_webhook_events_source', type_='unique')
        batch.create_unique_constraint(
            'uq_webhook_events_scope_dedupe_key', ['source', 'scope', 'dedupe_key']
        )


def downgrade() -> None:
    with op.batch_alter_table('webhook_events') as batch:
        batch.drop_constraint('uq_webhook_events_scope_dedupe_key', type_='unique')
    # Copies kept by several registrations collapse to one: keep the oldest of each key.
    op.execute(
        "DELETE FROM webhook_events WHERE id NOT IN ("
        " SELECT min(id) FROM webhook_events GROUP BY source, dedupe_key)"
    )
    with op.batch_alter_table('webhook_events') as batch:
        batch.create_unique_constraint('uq_webhook_events_source', ['source', 'dedupe_key'])
        batch.drop_column('scope')

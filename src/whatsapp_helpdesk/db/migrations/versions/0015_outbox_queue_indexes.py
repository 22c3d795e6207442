"""the claim finds each conversation's head by index (issue 17 item 2)"""
import sqlalchemy as sa
from alembic import op

revision = '0015'  # created 2026-12-03 18:50:00
down_revision = '0014'


def upgrade() -> None:
    # Pending entries only, per conversation in its order: the first row of a key is that
    # conversation's head; skipping from key to key lists the conversations with work.
    op.create_index('ix_outbox_queue', 'outbox', ['ordering_key', 'ordering_at', 'id'],
                    sqlite_where=sa.text("state = 'pending'"),
                    postgresql_where=sa.text("state = 'pending'"))
    # Leased entries only (a worker holds them): whether a conversation is being worked.
    op.create_index('ix_outbox_leased', 'outbox', ['ordering_key', 'locked_until'],
                    sqlite_where=sa.text("locked_until IS NOT NULL"),
                    postgresql_where=sa.text("locked_until IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_outbox_leased', table_name='outbox')
    op.drop_index('ix_outbox_queue', table_name='outbox')

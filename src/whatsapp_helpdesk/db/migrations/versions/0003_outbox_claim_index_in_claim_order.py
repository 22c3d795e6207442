"""the outbox claim index in the claim's own order (state, available_at, id)"""
from alembic import op

revision = '0003'  # created 2026-11-24 21:40:00
down_revision = '0002'


def upgrade() -> None:
    op.drop_index('ix_outbox_claim', table_name='outbox')
    op.create_index('ix_outbox_claim', 'outbox', ['state', 'available_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_claim', table_name='outbox')
    op.create_index('ix_outbox_claim', 'outbox', ['state', 'available_at'])

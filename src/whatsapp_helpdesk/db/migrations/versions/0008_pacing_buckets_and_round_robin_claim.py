"""rate_buckets (pacing shared by every worker) and the round-robin claim's index (R44)"""
import sqlalchemy as sa
from alembic import op

revision = '0008'  # created 2026-12-03 07:00:00
down_revision = '0007'


def upgrade() -> None:
    op.create_table(
        'rate_buckets',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('next_slot_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets')),
    )
    op.create_index('ix_outbox_claim_turn', 'outbox',
                    ['state', 'installation_id', 'available_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_claim_turn', table_name='outbox')
    op.drop_table('rate_buckets')

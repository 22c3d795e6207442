"""outbox: when temporary failures began (time-based retry budget) and why an entry failed"""
import sqlalchemy as sa
from alembic import op

revision = '0004'  # created 2026-12-03 07:00:00
down_revision = '0003'


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('retrying_since', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('failure_kind', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('failure_kind')
        batch.drop_column('retrying_since')

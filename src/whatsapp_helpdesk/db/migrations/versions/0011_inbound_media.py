"""messages: the inbound file uploaded to HubSpot, stored before the publish (R51)"""
import sqlalchemy as sa
from alembic import op

revision = '0011'  # created 2026-12-03 08:00:00
down_revision = '0010'


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('media_state', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('media_file_id', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('media_file_name', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('media_usage_type', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('media_usage_type')
        batch.drop_column('media_file_name')
        batch.drop_column('media_file_id')
        batch.drop_column('media_state')

"""the customer's company as Aircall names it (R31)"""
import sqlalchemy as sa
from alembic import op

revision = '0002'  # created 2026-11-24 20:45:00
down_revision = '0001'


def upgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('customer_company', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('customer_company')

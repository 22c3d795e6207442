"""the customer's company as Aircall names it (R31)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('customer_company', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('customer_company')

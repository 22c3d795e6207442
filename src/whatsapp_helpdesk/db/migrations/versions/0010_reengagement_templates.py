"""re-engagement template per number, and when one last went to a customer (R52)"""
import sqlalchemy as sa
from alembic import op

revision = '0010'  # created 2026-12-03 08:00:00
down_revision = '0008'


def upgrade() -> None:
    op.create_table('reengagement_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number_id', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.String(length=64), nullable=True),
        sa.Column('template_name', sa.String(length=200), nullable=True),
        sa.Column('template_language', sa.String(length=20), nullable=True),
        sa.Column('fills_text', sa.Boolean(), nullable=False),
        sa.Column('problem', sa.Text(), nullable=True),
        sa.Column('problem_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('listing', sa.Text(), nullable=True),
        sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['number_id'], ['numbers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number_id'),
    )
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('template_sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('template_sent_at')
    op.drop_table('reengagement_templates')

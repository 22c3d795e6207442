"""server-side browser sessions (issue 12, item 4)"""
import sqlalchemy as sa
from alembic import op

revision = '0007'  # created 2026-12-03 07:00:00
down_revision = '0005'


def upgrade() -> None:
    op.create_table(
        'admin_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('installation_id', sa.Integer(), nullable=True),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['installation_id'], ['installations.id'],
                                name=op.f('fk_admin_sessions_installation_id_installations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_admin_sessions_token_hash')),
    )
    op.create_index(op.f('ix_admin_sessions_installation_id'), 'admin_sessions',
                    ['installation_id'], unique=False)
    op.create_index(op.f('ix_admin_sessions_expires_at'), 'admin_sessions', ['expires_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_admin_sessions_expires_at'), table_name='admin_sessions')
    op.drop_index(op.f('ix_admin_sessions_installation_id'), table_name='admin_sessions')
    op.drop_table('admin_sessions')

"""indexes the dashboard's counts read instead of scanning (issue 17 item 6)"""
import sqlalchemy as sa
from alembic import op

revision = '0012'  # created 2026-12-03 07:50:00
down_revision = '0011'


def upgrade() -> None:
    # Native tickets made (done entries of one kind): without it, every done entry is read.
    op.create_index('ix_outbox_installation_kind_state', 'outbox',
                    ['installation_id', 'kind', 'state'])
    # Failed messages are few among millions: a partial index holds only them.
    op.create_index('ix_messages_failed', 'messages', ['installation_id'],
                    sqlite_where=sa.text("status = 'failed'"),
                    postgresql_where=sa.text("status = 'failed'"))


def downgrade() -> None:
    op.drop_index('ix_messages_failed', table_name='messages')
    op.drop_index('ix_outbox_installation_kind_state', table_name='outbox')

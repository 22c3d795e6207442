"""a number Aircall deleted stays, marked removed, for its conversations (issue 17 item 7)"""

import sqlalchemy as sa
from alembic import op

revision = "0014"  # created 2026-12-03 09:50:00
down_revision = "0012"


def upgrade() -> None:
    with op.batch_alter_table("numbers") as batch:
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("numbers") as batch:
        batch.drop_column("removed_at")

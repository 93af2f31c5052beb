"""open items index: the lease query walks open items by id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:28:23.609725
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_index("ix_item_done_id")
    op.create_index("ix_item_open", "item", ["id"], unique=False,
                    postgresql_where=sa.text("done IS false"), sqlite_where=sa.text("done IS 0"))


def downgrade() -> None:
    op.drop_index("ix_item_open", table_name="item")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.create_index("ix_item_done_id", ["done", "id"], unique=False)

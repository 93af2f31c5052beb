"""gated rounds: a round's gates and report, a checkpoint's status reason

Statuses are VARCHAR(16) without a CHECK constraint, so the new values
(checkpoint "candidate" and "rejected", round "rejected") need no change here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_round", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gates", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("checkpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("checkpoint", schema=None) as batch_op:
        batch_op.drop_column("status_reason")
    with op.batch_alter_table("training_round", schema=None) as batch_op:
        batch_op.drop_column("report")
        batch_op.drop_column("gates")

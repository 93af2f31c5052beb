"""conversations: a prompt's messages; a sample's token ids and tokenizer fingerprint

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messages", sa.JSON(), nullable=True))
    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tokenizer", sa.String(length=16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.drop_column("tokenizer")
        batch_op.drop_column("token_ids")
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.drop_column("messages")

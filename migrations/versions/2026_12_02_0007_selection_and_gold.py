"""active selection and gold items: per-source selection settings, how each item's pair was
chosen, and an item's gold (known right) answer

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_source",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("selection", sa.Enum("random", "uncertainty", "contrast", name="selection", native_enum=False, length=16),
                  nullable=False),
        sa.Column("random_share", sa.Double(), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_prompt_source")),
    )
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("selection", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("gold", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_column("gold")
        batch_op.drop_column("selection")
    op.drop_table("prompt_source")

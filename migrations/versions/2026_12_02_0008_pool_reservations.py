"""pool reservations: items a generation worker is sampling, counted by the other workers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pool_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_reservation")),
    )
    op.create_index(op.f("ix_pool_reservation_source"), "pool_reservation", ["source"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pool_reservation_source"), table_name="pool_reservation")
    op.drop_table("pool_reservation")

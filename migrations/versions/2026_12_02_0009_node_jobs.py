"""node jobs: a round's trainer runs that other machines join (tuneloop train-node)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "node_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("processes", sa.Integer(), nullable=False),
        sa.Column("master", sa.String(length=255), nullable=False),
        sa.Column("rendezvous_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("reward_model_path", sa.String(length=1024), nullable=True),
        sa.Column("reward_model_hash", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoint.id"],
                                name=op.f("fk_node_job_checkpoint_id_checkpoint")),
        sa.ForeignKeyConstraint(["round_id"], ["training_round.id"], ondelete="CASCADE",
                                name=op.f("fk_node_job_round_id_training_round")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_job")),
    )
    op.create_index(op.f("ix_node_job_round_id"), "node_job", ["round_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_node_job_round_id"), table_name="node_job")
    op.drop_table("node_job")

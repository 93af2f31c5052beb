from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, CreatedAt, str_enum


class CheckpointStatus(StrEnum):
    training = "training"
    # Produced by a round and through its gates; raters compare it blind with the
    # current checkpoint until the win rate's interval decides (app.checkpoints.review).
    candidate = "candidate"
    ready = "ready"
    current = "current"
    retired = "retired"
    # A gate or the raters' comparisons (or an admin) turned it down; kept for inspection.
    rejected = "rejected"


class Checkpoint(CreatedAt, Base):
    __tablename__ = "checkpoint"
    __table_args__ = (
        # At most one current checkpoint: switching is one transaction.
        sa.Index(
            "uq_checkpoint_one_current",
            "status",
            unique=True,
            sqlite_where=sa.text("status = 'current'"),
            postgresql_where=sa.text("status = 'current'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkpoint.id"))
    name: Mapped[str] = mapped_column(sa.String(128), default="")
    # Directory of a Hugging Face causal LM, relative to the checkpoint store or absolute.
    path: Mapped[str] = mapped_column(sa.String(1024))
    content_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    status: Mapped[CheckpointStatus] = mapped_column(
        str_enum(CheckpointStatus), default=CheckpointStatus.ready
    )
    metrics: Mapped[dict] = mapped_column(default=dict)
    # Why it has its status: the failed gates, the raters' verdict, or the admin who decided.
    status_reason: Mapped[str] = mapped_column(sa.Text, default="")

    parent: Mapped["Checkpoint | None"] = relationship(remote_side=[id])

    @property
    def is_current(self) -> bool:
        return self.status == CheckpointStatus.current

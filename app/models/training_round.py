from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, CreatedAt, str_enum, utcnow
from app.models.checkpoint import Checkpoint


class RoundStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    # Ran to the end, but a gate turned its result down: nothing new went live.
    rejected = "rejected"

    @property
    def finished(self) -> bool:
        return self not in (RoundStatus.queued, RoundStatus.running)


class Algorithm(StrEnum):
    ppo = "ppo"
    dpo = "dpo"


class TrainingRound(CreatedAt, Base):
    __tablename__ = "training_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[RoundStatus] = mapped_column(
        str_enum(RoundStatus), default=RoundStatus.queued, index=True
    )
    algorithm: Mapped[Algorithm] = mapped_column(str_enum(Algorithm))
    config: Mapped[dict] = mapped_column(default=dict)
    base_checkpoint_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkpoint.id"))
    produced_checkpoint_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkpoint.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    error: Mapped[str | None] = mapped_column(sa.Text)
    log: Mapped[str] = mapped_column(sa.Text, default="")
    progress: Mapped[float] = mapped_column(default=0.0)
    # Each gate the result met or failed: [{name, value, limit, passed, detail}].
    gates: Mapped[list] = mapped_column(default=list)
    # What actually ran: examples used, steps planned and run, why it stopped early,
    # samples of the parent and the result on the same held-out prompts.
    report: Mapped[dict] = mapped_column(default=dict)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The worker running it proves it is alive; a stale heartbeat fails the round.
    worker: Mapped[str] = mapped_column(sa.String(255), default="")
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    base_checkpoint: Mapped[Checkpoint | None] = relationship(foreign_keys=[base_checkpoint_id])
    produced_checkpoint: Mapped[Checkpoint | None] = relationship(
        foreign_keys=[produced_checkpoint_id]
    )


class RoundRating(Base):
    """The exact set of ratings a round trained on."""

    __tablename__ = "round_rating"

    round_id: Mapped[int] = mapped_column(
        sa.ForeignKey("training_round.id", ondelete="CASCADE"), primary_key=True
    )
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("rating.id"), primary_key=True)


class RoundMetric(Base):
    __tablename__ = "round_metric"
    __table_args__ = (sa.Index("ix_round_metric_round_id_name_step", "round_id", "name", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("training_round.id", ondelete="CASCADE"))
    # Which phase wrote it: reward_model, ppo, dpo, eval.
    phase: Mapped[str] = mapped_column(sa.String(32))
    step: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float]

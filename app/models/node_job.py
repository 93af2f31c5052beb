from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class NodeJob(CreatedAt, Base):
    """A trainer run of a round that spans several machines (worker.train_node): the training
    worker runs it as node 0 and `tuneloop train-node` on each other machine joins it while it is
    open, loading the same models from its own copies."""

    __tablename__ = "node_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("training_round.id", ondelete="CASCADE"), index=True)
    # The job as node 0 wrote it (worker.training.job): its paths are node 0's.
    job: Mapped[str] = mapped_column(sa.Text)
    nodes: Mapped[int]
    processes: Mapped[int]  # on each node
    master: Mapped[str] = mapped_column(sa.String(255))
    rendezvous_timeout_seconds: Mapped[int]
    # What each node loads from its own copy instead of node 0's paths: the policy checkpoint,
    # and for PPO the round's reward model, shared through the checkpoint store.
    checkpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("checkpoint.id"))
    reward_model_path: Mapped[str | None] = mapped_column(sa.String(1024))
    reward_model_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # Node 0's torchrun ended (result, failure or cancel): the other nodes stop theirs.
    ended_at: Mapped[datetime | None]

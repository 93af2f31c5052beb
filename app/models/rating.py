from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, CreatedAt, str_enum
from app.models.item import Item
from app.models.user import User


class Verdict(StrEnum):
    preferred = "preferred"  # one response is better: preferred_sample_id
    tie = "tie"
    both_bad = "both_bad"


class Rating(CreatedAt, Base):
    """One rater's answer to one item, with the provenance of what they saw."""

    __tablename__ = "rating"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "user_id"),
        sa.UniqueConstraint("user_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    verdict: Mapped[Verdict | None] = mapped_column(str_enum(Verdict))
    preferred_sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.id"))
    # {sample id (as a string): 1..7}
    scores: Mapped[dict] = mapped_column(default=dict)
    # "up" or "down", on an item with one response
    thumb: Mapped[str | None] = mapped_column(sa.String(4))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    time_spent_ms: Mapped[int | None]
    # A client's key for safe retries, and a hash of the body it came with.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    request_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    # What the rater saw, in display order: [{sample_id, checkpoint_id, source,
    # generation}], so the answer stays interpretable after items change.
    provenance: Mapped[list] = mapped_column(default=list)

    item: Mapped[Item] = relationship()
    user: Mapped[User] = relationship()

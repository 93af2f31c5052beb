from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, CreatedAt, str_enum
from app.models.prompt import Prompt
from app.models.sample import Sample


class ItemKind(StrEnum):
    compare = "compare"  # two or more responses to one prompt
    score = "score"  # one response, scored 1..7


class ItemPurpose(StrEnum):
    train = "train"  # two samples of the current policy: reward-model data
    progress = "progress"  # current vs previous checkpoint, blind: human win rate
    client = "client"  # responses a REST client brought


class Item(CreatedAt, Base):
    """What a rater is asked: a comparison of responses, or one response to score."""

    __tablename__ = "item"
    __table_args__ = (
        # Open items in lease order: finding the next item stays one short index
        # scan however many items are done. The predicates match how the lease
        # query spells `done IS false` on each backend.
        sa.Index("ix_item_open", "id",
                 postgresql_where=sa.text("done IS false"), sqlite_where=sa.text("done IS 0")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind))
    purpose: Mapped[ItemPurpose] = mapped_column(str_enum(ItemPurpose), default=ItemPurpose.train)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompt.id", ondelete="CASCADE"), index=True)
    # How many raters must answer it, and how many have (kept with each rating).
    overlap: Mapped[int] = mapped_column(default=1)
    answers: Mapped[int] = mapped_column(default=0)
    # answers >= overlap; kept as a column so finding open items is one index scan.
    done: Mapped[bool] = mapped_column(default=False)
    # Set when live leases fill the overlap: the earliest of their expiries. Until
    # then the lease query passes the item without counting its leases (a hint;
    # the count under the row lock still decides). Cleared when a lease is skipped.
    full_until: Mapped[datetime | None]
    # How its responses were chosen (worker.selection): {"method": "random"} or
    # {"method": "uncertainty", "score", "candidates", "heads", "comparisons"}; None for client items.
    selection: Mapped[dict | None]
    # An admin's answer, known right (app.feedback.gold): {"verdict", "preferred_sample_id"}. Raters
    # cannot tell a gold item from others; their answers to it measure their reliability.
    gold: Mapped[dict | None]

    prompt: Mapped[Prompt] = relationship()
    responses: Mapped[list["ItemResponse"]] = relationship(
        order_by="ItemResponse.position", cascade="all, delete-orphan"
    )
    leases: Mapped[list["Lease"]] = relationship(cascade="all, delete-orphan")


class ItemResponse(Base):
    __tablename__ = "item_response"

    item_id: Mapped[int] = mapped_column(
        sa.ForeignKey("item.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.id"), index=True)

    sample: Mapped[Sample] = relationship()


class Lease(CreatedAt, Base):
    """A rater's claim on an item; counts toward its overlap until it expires."""

    __tablename__ = "lease"
    __table_args__ = (sa.UniqueConstraint("item_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Positions of the item's responses in the order this rater sees them
    # (sides are swapped at random, per lease).
    display_order: Mapped[list] = mapped_column(default=list)
    # A skipped item is never offered to this rater again and frees its slot.
    skipped_at: Mapped[datetime | None]

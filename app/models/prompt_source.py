from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, str_enum


class Selection(StrEnum):
    random = "random"  # two samples of the current policy, as drawn
    uncertainty = "uncertainty"  # of K samples, the pair the reward-head ensemble disagrees on most
    contrast = "contrast"  # of K samples, the best and the worst by the reward-head ensemble


class PromptSource(Base):
    """How the pool draws training pairs for one prompt source (Prompt.source); a source
    without a row draws at random."""

    __tablename__ = "prompt_source"

    name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    # Every field is written by app.prompts.sources.configure_source, whose SourceSettings holds
    # the defaults (and what a source without a row does).
    selection: Mapped[Selection] = mapped_column(str_enum(Selection))
    # Of the training pairs, this share stays random whatever `selection` says: the reward model
    # keeps seeing the policy's pairs as they come, not only the hard ones.
    random_share: Mapped[float]
    # Samples drawn per prompt to choose a pair from, under uncertainty or contrast selection.
    candidates: Mapped[int]
    # Responses per training item: 2 to compare, or 1 to score or to rate with a thumb up or down
    # (selection then does not apply).
    responses: Mapped[int]

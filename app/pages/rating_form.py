"""What the rating form posts, and how it becomes a RatingInput.

The page labels responses A and B in the lease's display order; the form carries
the sample id behind each side, so a retry after the lease is gone (the answer
was stored) still rebuilds the identical body and replays the first result.
"""

from typing import Literal

from pydantic import BaseModel, Field

from app.errors import InvalidInput
from app.feedback.ratings import RatingInput
from app.models import ItemKind

CHOICES = {"a", "b", "tie", "both_bad"}


class Submission(BaseModel):
    """One post of the rating form, as a plain form or as JSON from rate.js."""

    item_id: int
    action: Literal["submit", "skip"] = "submit"
    choice: str = ""
    side_a: int | None = None
    side_b: int | None = None
    # Strings: an unanswered optional score arrives as "".
    score_a: str = ""
    score_b: str = ""
    thumb: Literal["", "up", "down"] = ""
    comment: str = Field(default="", max_length=4000)
    idempotency_key: str = Field(default="", max_length=128)
    time_spent_ms: int | None = None

    def _score(self, side: str) -> int | None:
        raw = (self.score_a if side == "a" else self.score_b).strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise InvalidInput("scores are whole numbers from 1 to 7", field=f"score_{side}")
        return int(raw)

    def rating_input(self, kind: ItemKind) -> RatingInput:
        """The service's input; friendly messages for what the page itself asks for."""
        sides = {"a": self.side_a, "b": self.side_b}
        scores = {sides[s]: score for s in ("a", "b")
                  if (score := self._score(s)) is not None and sides[s] is not None}
        answer = RatingInput(item_id=self.item_id, scores=scores, comment=self.comment.strip(),
                             time_spent_ms=self.time_spent_ms, thumb=self.thumb or None)
        if kind == ItemKind.score:
            if not scores and not self.thumb:
                raise InvalidInput("Give the response a score from 1 to 7, or a thumb, first.", field="score_a")
            return answer
        if self.choice not in CHOICES:
            raise InvalidInput("Choose A better, B better, tie or both bad first (keys 1–4).",
                               field="choice")
        if self.choice in ("a", "b"):
            answer.verdict, answer.preferred_response_id = "preferred", sides[self.choice]
        else:
            answer.verdict = self.choice
        return answer

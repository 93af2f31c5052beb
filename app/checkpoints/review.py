"""The raters' verdict on a candidate: blind comparisons with the current checkpoint decide.

While a round's result is a candidate, a share of the pool compares it with
the current checkpoint (worker.pool), sides shuffled and models hidden. The
verdict is a sign test: ties say nothing about which model is better and are
left out, and the candidate's share of the decisive comparisons gets a 95%
Wilson interval. Once it has at least `MIN_COMPARISONS` decisive comparisons
the candidate

- becomes current when the interval lies above 50%,
- is rejected when the interval lies below 50%,
- is rejected when `review_max_comparisons` comparisons (ties included: the
  raters' effort) still leave 50% inside the interval: no gain the raters can
  see, so the current model stays.

Looking again after every new comparison makes a false verdict likelier than
a single test would; bench/review.py measures it with simulated raters
(bench/README.md, "Candidate review"). The beat calls `review_candidates`;
an admin may decide by hand at any time.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, make_current, reject_checkpoint, under_review
from app.checkpoints.win_rate import HeadToHead, comparisons, head_to_head, wilson_interval
from app.models import Checkpoint
from app.settings import get_settings

MIN_COMPARISONS = 20


@dataclass(frozen=True)
class Review:
    wins: float  # decisive comparisons won
    decisive: int
    ties: int
    low: float
    high: float
    decision: str | None  # "promote", "reject" or None (keep comparing)

    @property
    def comparisons(self) -> int:
        return self.decisive + self.ties

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.decisive if self.decisive else None

    def describe(self, against: str) -> str:
        return (f"won {self.wins:g} of {self.decisive} decisive blind comparisons against {against} "
                f"({self.win_rate or 0:.0%}, 95% interval {self.low:.0%}-{self.high:.0%}; {self.ties} ties)")


def decide(record: HeadToHead, max_comparisons: int) -> Review:
    low, high = wilson_interval(record.decisive_wins, record.decisive)
    decision = None
    if record.decisive >= MIN_COMPARISONS:
        if low > 0.5:
            decision = "promote"
        elif high < 0.5:
            decision = "reject"
    if decision is None and record.games >= max_comparisons:
        decision = "reject"
    return Review(record.decisive_wins, record.decisive, record.ties, low, high, decision)


def review_of(db: Session, candidate: Checkpoint, current: Checkpoint) -> Review:
    record = head_to_head(comparisons(db, involving=candidate.id), candidate.id, current.id)
    return decide(record, get_settings().review_max_comparisons)


def review_candidates(db: Session) -> Review | None:
    """Apply the raters' verdict to the candidate under review, if there is one and a verdict."""
    candidate, current = under_review(db), current_checkpoint(db)
    if candidate is None or current is None:
        return None
    review = review_of(db, candidate, current)
    against = f"v{current.version}"
    if review.decision == "promote":
        make_current(db, candidate, reason=f"raters preferred it: {review.describe(against)}")
    elif review.decision == "reject":
        verdict = "raters preferred the current checkpoint" if review.high < 0.5 else (
            f"no gain raters could see in {review.comparisons} comparisons")
        reject_checkpoint(db, candidate, f"{verdict}: {review.describe(against)}")
    return review

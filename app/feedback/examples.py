"""What a rating means for training: the one rule that turns ratings into comparisons.

Torch-free, so the launch check (app.rounds.service) and the training worker
(worker.rounds) use the same rule: a round is refused with the number it would
train on.

- "preferred" on an item of n responses: n - 1 decisive comparisons, the
  preferred response over each other one.
- "tie" and "both bad": every two responses shown make a tied comparison.
  Neither says which is better; Bradley-Terry pulls the two rewards together.
  (The preference export writes the same pairs; `include_ties` adds the tied
  ones, each with its verdict, so a "both bad" can be told from a "tie".)
- Scores (1..7): every two scored responses to the same prompt make a
  comparison, decisive when the scores differ and tied when they are equal.
  Raters use a scale consistently only relative to what they saw near it, so
  a score alone, or scores across prompts, say nothing.

- A thumb up or down on one response is a unary label (`thumbs_of`): the
  reward model reads its reward as the log-odds of a thumb up. It makes no
  comparison, so DPO does not use it; a PPO round may train from thumbs alone
  (app.rounds.service: as many thumbs as the minimum of decisive comparisons).

Each comparison and thumb carries its rater's weight (app.feedback.reliability decides
it; rounds use it unless their settings turn it off).

A decisive comparison says which response is better: it is what a reward
model's held-out accuracy and DPO's pairs are made of, and what a round needs
at least `min_round_comparisons` of (or, for PPO, as many thumbs).
"""

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.models import Item, Rating, RoundRating, User, Verdict


@dataclass(frozen=True)
class Comparison:
    """Two samples (by id) of one prompt: `chosen` judged better, or a tie (then the order is arbitrary)."""

    prompt_id: int
    chosen: int
    rejected: int
    tie: bool = False
    weight: float = 1.0  # its rater's weight (app.feedback.reliability); for two scores, the lesser


@dataclass(frozen=True)
class RatingRow:
    """The parts of a rating the rule reads."""

    rating_id: int
    rater_id: int
    prompt_id: int
    verdict: Verdict | None
    preferred_sample_id: int | None
    shown: tuple[int, ...]  # sample ids in the order the rater saw them
    scores: dict[int, float]
    thumb: str | None = None


@dataclass(frozen=True)
class ComparisonCounts:
    ratings: int
    decisive: int
    ties: int
    thumbs: int = 0

    def describe(self) -> str:
        return (f"{self.ratings} rating(s) give {self.decisive} decisive comparison(s), "
                f"{self.ties} tie(s) and {self.thumbs} thumb(s)")


def verdict_pairs(verdict: Verdict | None, preferred: int | None,
                  shown: Iterable[int]) -> list[tuple[int, int, bool]]:
    """(better, worse, tie) sample ids that one rating's verdict states."""
    shown = list(shown)
    if verdict == Verdict.preferred and preferred in shown:
        return [(preferred, other, False) for other in shown if other != preferred]
    if verdict in (Verdict.tie, Verdict.both_bad):
        return [(a, b, True) for a, b in itertools.combinations(shown, 2)]
    return []


def comparisons_of(rows: Iterable[RatingRow], weights: dict[int, float] | None = None) -> list[Comparison]:
    """Every comparison the ratings make, verdicts first, then scores grouped by prompt; each
    weighted by its rater's weight (`weights` by rater id; 1 when not given)."""
    weights = weights or {}
    comparisons: list[Comparison] = []
    scored: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for row in rows:
        weight = weights.get(row.rater_id, 1.0)
        comparisons += [Comparison(row.prompt_id, better, worse, tie, weight)
                        for better, worse, tie in verdict_pairs(row.verdict, row.preferred_sample_id, row.shown)]
        scored[row.prompt_id] += [(sample, score, weight) for sample, score in row.scores.items()
                                  if sample in row.shown]
    for prompt_id, group in scored.items():
        for (a, score_a, weight_a), (b, score_b, weight_b) in itertools.combinations(group, 2):
            better, worse = (a, b) if score_a >= score_b else (b, a)
            comparisons.append(Comparison(prompt_id, better, worse, score_a == score_b, min(weight_a, weight_b)))
    return comparisons


@dataclass(frozen=True)
class Thumb:
    """A thumb up or down on one response: a unary label for the reward model."""

    prompt_id: int
    sample_id: int
    up: bool
    weight: float = 1.0


def thumbs_of(rows: Iterable[RatingRow], weights: dict[int, float] | None = None) -> list[Thumb]:
    weights = weights or {}
    return [Thumb(row.prompt_id, row.shown[0], row.thumb == "up", weights.get(row.rater_id, 1.0))
            for row in rows if row.thumb is not None and len(row.shown) == 1]


def count(comparisons: list[Comparison], ratings: int, thumbs: int = 0) -> ComparisonCounts:
    ties = sum(c.tie for c in comparisons)
    return ComparisonCounts(ratings=ratings, decisive=len(comparisons) - ties, ties=ties, thumbs=thumbs)


def rating_rows(db: Session, which: str, exclude_raters: Iterable[str] = (),
                latest: int | None = None) -> list[RatingRow]:
    """The ratings a round uses, in one query: "all", or "since_last_round" (none a round used yet),
    leaving out those of the raters named in `exclude_raters`; only the `latest` ones when given."""
    query = (select(Rating.id, Rating.user_id, Item.prompt_id, Rating.verdict, Rating.preferred_sample_id,
                    Rating.provenance, Rating.scores, Rating.thumb)
             .join(Item, Item.id == Rating.item_id))
    query = query.order_by(Rating.id) if latest is None else query.order_by(Rating.id.desc()).limit(latest)
    if which == "since_last_round":
        query = query.where(~exists().where(RoundRating.rating_id == Rating.id))
    if exclude_raters := list(exclude_raters):
        query = query.where(Rating.user_id.not_in(select(User.id).where(User.name.in_(exclude_raters))))
    rows = [RatingRow(rating_id, rater_id, prompt_id, verdict, preferred, tuple(p["sample_id"] for p in provenance),
                      {int(sample): float(score) for sample, score in scores.items()}, thumb)
            for rating_id, rater_id, prompt_id, verdict, preferred, provenance, scores, thumb in db.execute(query)]
    return rows if latest is None else rows[::-1]

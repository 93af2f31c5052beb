"""How much each rater's answers count: reliability from the items several raters answered.

A one-coin Dawid-Skene model (Dawid & Skene 1979, with one accuracy per
rater): each item has one right answer among the verdicts a rater can give
(A better, B better, tie, both bad), and rater r gives it with probability
p_r, else one of the other answers at random. EM alternates between the
posterior over each shared item's right answer, given the raters' accuracies,
and each accuracy as the posterior share of that rater's answers that were
right (add-one smoothed). With two raters on an item EM lets whoever is
ahead win their disagreements, so equally careful raters drift apart (four
in the demo: 0.83-0.95 on 425 shared items). Shrinking towards 75% by 20
pseudo-answers narrowed that to 0.84-0.91 but gave random clickers more
weight and cost 1.9 points of win rate in the crowd benchmark
(bench/README.md), so the flag below, not the estimate, allows for it.
Written here rather than taken from crowd-kit, whose aggregators need
pandas, scikit-learn and transformers: the web server shows these figures
and loads none of them.

Gold items (app.feedback.gold), whose right answer an admin marked, inform it
from a single rater's answer: their right answer is known, not inferred.
Besides them, only items with a verdict from two or more raters inform it, and only once
there are `MIN_SHARED_ITEMS` of them; a rater needs `MIN_RATER_ITEMS` shared
items for an estimate. Each estimate gets Wilson's 95% interval over that
rater's shared items. A rater is flagged, as far below the rest, when their
whole interval lies below the median of the others' lower ends (below what
most others surely reach) and their estimate is `FLAG_GAP` or more below the
others' median: in the demo one of four equally careful simulated raters sat
at 0.84 (0.79-0.88) against others at 0.90-0.96, which the interval alone
flags.

The training weight of a rater's ratings is 2p - 1 (0 for a coin, 1 for a
rater who is always right; a rater worse than a coin weighs 0, not less), and
the median weight for raters without an estimate. With too little overlap
every weight is 1: the ratings count as they always did.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.checkpoints.win_rate import wilson_interval
from app.feedback.gold import Answer, gold_answers
from app.models import Item, Rating

MIN_SHARED_ITEMS = 20
MIN_RATER_ITEMS = 5
ANSWERS = 4  # per item of two responses: A better, B better, tie, both bad
ITERATIONS = 50  # at most; EM stops once no accuracy moves by more than TOLERANCE
TOLERANCE = 1e-6
FLAG_GAP = 0.1


@dataclass(frozen=True)
class Reliability:
    accuracy: float | None  # None: too few shared items for an estimate
    interval: tuple[float, float] | None
    shared_items: int
    flagged: bool = False

    @property
    def weight(self) -> float | None:
        return None if self.accuracy is None else max(0.0, 2 * self.accuracy - 1)


def answers_on_shared_items(db: Session) -> dict[int, list[tuple[int, Answer]]]:
    """item id -> [(user id, answer)] for items with a verdict from two or more raters, and gold items."""
    shared = (select(Rating.item_id).where(Rating.verdict.is_not(None))
              .group_by(Rating.item_id).having(func.count() >= 2))
    gold = select(Item.id).where(Item.gold.is_not(None))
    rows = db.execute(select(Rating.item_id, Rating.user_id, Rating.verdict, Rating.preferred_sample_id)
                      .where(Rating.verdict.is_not(None), Rating.item_id.in_(shared.union(gold))))
    answers: dict[int, list[tuple[int, Answer]]] = defaultdict(list)
    for item_id, user_id, verdict, preferred in rows:
        answers[item_id].append((user_id, (str(verdict), preferred)))
    return answers


def reliabilities(db: Session) -> dict[int, Reliability]:
    """Each rater's reliability from what is in the database now."""
    return estimate(answers_on_shared_items(db), gold_answers(db))


def estimate(answers: dict[int, list[tuple[int, Answer]]],
             gold: dict[int, Answer] | None = None) -> dict[int, Reliability]:
    """Each rater's accuracy from the shared and gold items (see the module's docstring); `gold`
    holds the known right answer of gold items by item id."""
    gold = gold or {}
    counts: dict[int, int] = defaultdict(int)
    for item_answers in answers.values():
        for user, _ in item_answers:
            counts[user] += 1
    if len(answers) < MIN_SHARED_ITEMS:
        return {user: Reliability(None, None, n) for user, n in counts.items()}
    accuracy = dict.fromkeys(counts, 0.8)  # any start above a coin finds the majority-consistent answer
    for _ in range(ITERATIONS):
        right: dict[int, float] = defaultdict(float)
        for item, item_answers in answers.items():
            posterior = {gold[item]: 1.0} if item in gold else _posterior(item_answers, accuracy)
            for user, answer in item_answers:
                right[user] += posterior.get(answer, 0.0)
        updated = {user: (right[user] + 1) / (counts[user] + 2) for user in counts}
        settled = max(abs(updated[user] - accuracy[user]) for user in counts) < TOLERANCE
        accuracy = updated
        if settled:
            break
    estimates = {}
    for user, n in counts.items():
        if n < MIN_RATER_ITEMS:
            estimates[user] = Reliability(None, None, n)
        else:
            estimates[user] = Reliability(accuracy[user], wilson_interval(accuracy[user] * n, n), n)
    known = {user: e for user, e in estimates.items() if e.accuracy is not None}
    for user, e in known.items():
        others = [o for u, o in known.items() if u != user]
        if others and e.interval[1] < median(o.interval[0] for o in others) \
                and e.accuracy <= median(o.accuracy for o in others) - FLAG_GAP:
            estimates[user] = Reliability(e.accuracy, e.interval, e.shared_items, flagged=True)
    return estimates


def rater_weights(estimates: dict[int, Reliability], raters: set[int]) -> dict[int, float]:
    """The training weight of each rater's ratings (see the module's docstring)."""
    weights = {user: e.weight for user, e in estimates.items() if e.weight is not None}
    if not weights:
        return dict.fromkeys(raters, 1.0)
    fallback = median(weights.values())
    return {user: weights.get(user, fallback) for user in raters}


def _posterior(item_answers: list[tuple[int, Answer]], accuracy: dict[int, float]) -> dict[Answer, float]:
    """The probability that each answer given to one item is its right one."""
    candidates = {answer for _, answer in item_answers}
    scores = {}
    for candidate in candidates:
        scores[candidate] = sum(
            math.log(accuracy[user]) if answer == candidate else math.log((1 - accuracy[user]) / (ANSWERS - 1))
            for user, answer in item_answers)
    top = max(scores.values())
    total = sum(math.exp(s - top) for s in scores.values())
    return {candidate: math.exp(score - top) / total for candidate, score in scores.items()}

"""Per-rater statistics: volume, speed, how often they agree with other raters, and their
reliability (app.feedback.reliability).

Agreement is counted over items answered by at least two raters: every pair of
raters on such an item is one comparison, and they agree when they gave the
same verdict (and, for "preferred", the same response). Scored-only answers
(no verdict) are left out. Agreement with the reward model is not computed
here: it needs the model's scores, and the web app never loads torch.
"""

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.feedback.gold import gold_answers
from app.feedback.reliability import Reliability, answers_on_shared_items, estimate
from app.models import Rating, User


@dataclass(frozen=True)
class RaterRow:
    user_id: int
    name: str
    role: str
    is_active: bool
    ratings: int
    median_seconds: float | None
    agreement_pairs: int
    agreements: int
    reliability: Reliability
    gold_items: int = 0  # gold items answered
    gold_right: int = 0  # of which with the known right answer

    @property
    def agreement(self) -> float | None:
        return self.agreements / self.agreement_pairs if self.agreement_pairs else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_right / self.gold_items if self.gold_items else None


@dataclass(frozen=True)
class RaterStats:
    raters: list[RaterRow]
    overlapped_items: int
    pairs: int
    agreements: int

    @property
    def agreement(self) -> float | None:
        return self.agreements / self.pairs if self.pairs else None


def _median_seconds(db: Session) -> dict[int, float]:
    # In Python, not SQL: SQLite has no median/percentile function.
    times: dict[int, list[int]] = defaultdict(list)
    for user_id, ms in db.execute(select(Rating.user_id, Rating.time_spent_ms)
                                  .where(Rating.time_spent_ms.is_not(None))):
        times[user_id].append(ms)
    return {user_id: median(values) / 1000 for user_id, values in times.items()}


def rater_stats(db: Session) -> RaterStats:
    counts = dict(db.execute(select(Rating.user_id, func.count()).group_by(Rating.user_id)).tuples().all())
    medians = _median_seconds(db)
    answers, gold = answers_on_shared_items(db), gold_answers(db)
    reliability = estimate(answers, gold)
    pairs: dict[int, int] = defaultdict(int)
    agreed: dict[int, int] = defaultdict(int)
    gold_items: dict[int, int] = defaultdict(int)
    gold_right: dict[int, int] = defaultdict(int)
    total_pairs = total_agreed = 0
    for item, item_answers in answers.items():
        for user, answer in item_answers if item in gold else ():
            gold_items[user] += 1
            gold_right[user] += answer == gold[item]
        for (user_a, answer_a), (user_b, answer_b) in combinations(item_answers, 2):
            same = answer_a == answer_b
            total_pairs, total_agreed = total_pairs + 1, total_agreed + same
            for user in (user_a, user_b):
                pairs[user] += 1
                agreed[user] += same
    users = db.scalars(select(User).order_by(User.name)).all()
    rows = [RaterRow(user_id=u.id, name=u.name, role=str(u.role), is_active=u.is_active,
                     ratings=counts.get(u.id, 0), median_seconds=medians.get(u.id),
                     agreement_pairs=pairs[u.id], agreements=agreed[u.id],
                     reliability=reliability.get(u.id, Reliability(None, None, 0)),
                     gold_items=gold_items[u.id], gold_right=gold_right[u.id]) for u in users]
    rows.sort(key=lambda row: (-row.ratings, row.name))
    return RaterStats(raters=rows, overlapped_items=sum(len(a) >= 2 for a in answers.values()), pairs=total_pairs,
                      agreements=total_agreed)

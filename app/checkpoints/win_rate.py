"""Human-judged strength of every checkpoint, from blind comparisons between checkpoints.

Bradley-Terry on log-strengths theta (the first checkpoint fixed at 0), fitted by
Newton steps on the penalised log-likelihood; a small Gaussian prior keeps
theta finite when one checkpoint has only wins. Intervals are +-1.96 standard
errors from the inverse Fisher information.

Length-controlled, the fit has one more term, as LMArena's style control
does: P(a beats b) = sigmoid(theta_a - theta_b + gamma * d), d the normalised
length difference of the two answers, (len_a - len_b) / (len_a + len_b) in
characters. gamma takes up how much raters favour the longer answer, so that
theta says how good a checkpoint is at equal length: a policy that only got
longer does not look better.

A share won (one checkpoint against another, or a reward model's held-out
accuracy) gets Wilson's score interval, which stays inside 0..1 and keeps its
coverage for a handful of games, where the normal approximation does not.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Item, ItemPurpose, ItemResponse, Rating, Sample, Verdict

PRIOR_PRECISION = 0.1  # a N(0, 10) prior on each log-strength
Z_95 = 1.959964  # two-sided 95%


def wilson_interval(wins: float, games: int, z: float = Z_95) -> tuple[float, float]:
    """The 95% interval of a share won (Wilson 1927); ties may count half. (0, 1) with no games."""
    if games <= 0:
        return 0.0, 1.0
    share = wins / games
    spread = z * math.sqrt(share * (1 - share) / games + z * z / (4 * games * games))
    centre = share + z * z / (2 * games)
    scale = 1 + z * z / games
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


@dataclass
class Strength:
    theta: float
    low: float
    high: float


@dataclass
class HeadToHead:
    wins: float = 0.0  # ties count half
    games: int = 0
    ties: int = 0

    @property
    def rate(self) -> float | None:
        return self.wins / self.games if self.games else None

    @property
    def decisive(self) -> int:
        return self.games - self.ties

    @property
    def decisive_wins(self) -> float:
        return self.wins - 0.5 * self.ties


class Game(NamedTuple):
    a: int  # checkpoint ids
    b: int
    score: float  # a's: 1, 0.5 or 0
    length: float = 0.0  # (len_a - len_b) / (len_a + len_b) of the two answers


def comparisons(db: Session, involving: int | None = None) -> list[Game]:
    """Games from blind cross-checkpoint ratings; with `involving`, only the comparisons one of
    whose samples that checkpoint wrote."""
    query = (select(Rating.verdict, Rating.preferred_sample_id, Rating.provenance)
             .join(Item, Item.id == Rating.item_id)
             .where(Item.purpose == ItemPurpose.progress, Rating.verdict.in_([Verdict.preferred, Verdict.tie])))
    if involving is not None:
        query = query.where(Rating.item_id.in_(
            select(ItemResponse.item_id).join(Sample, Sample.id == ItemResponse.sample_id)
            .where(Sample.checkpoint_id == involving)))
    rows = [(verdict, preferred, a, b) for verdict, preferred, (a, b, *_) in db.execute(query)
            if a["checkpoint_id"] is not None and b["checkpoint_id"] is not None
            and a["checkpoint_id"] != b["checkpoint_id"]]
    ids = sorted({side["sample_id"] for *_, a, b in rows for side in (a, b)})
    lengths: dict[int, int] = {}
    for start in range(0, len(ids), 1000):
        lengths |= dict(db.execute(select(Sample.id, func.length(Sample.text))
                                   .where(Sample.id.in_(ids[start : start + 1000]))).tuples().all())
    games = []
    for verdict, preferred, a, b in rows:
        score = 0.5 if verdict == Verdict.tie else float(preferred == a["sample_id"])
        len_a, len_b = lengths.get(a["sample_id"], 0), lengths.get(b["sample_id"], 0)
        games.append(Game(a["checkpoint_id"], b["checkpoint_id"], score,
                          (len_a - len_b) / (len_a + len_b) if len_a + len_b else 0.0))
    return games


def head_to_head(games: list[Game], child: int, parent: int) -> HeadToHead:
    record = HeadToHead()
    for a, b, score, _ in games:
        if (a, b) in ((child, parent), (parent, child)):
            record.wins += score if a == child else 1 - score
            record.games += 1
            record.ties += score == 0.5
    return record


def fit_strengths(games: list[Game], anchor: int, length_control: bool = False) -> dict[int, Strength]:
    """Each checkpoint's log-strength against `anchor` (fixed at 0), with a 95% interval; with
    `length_control`, at equal answer length (the module's docstring)."""
    players = sorted({anchor} | {g.a for g in games} | {g.b for g in games})
    free = [p for p in players if p != anchor]
    index = {p: i for i, p in enumerate(free)}
    n = len(free) + length_control  # the last parameter is gamma when controlling for length
    beta = [0.0] * n
    hessian = [[PRIOR_PRECISION if i == j else 0.0 for j in range(n)] for i in range(n)]
    for _ in range(50):
        gradient = [-PRIOR_PRECISION * value for value in beta]
        hessian = [[PRIOR_PRECISION if i == j else 0.0 for j in range(n)] for i in range(n)]
        for game in games:
            x = [(index[game.a], 1.0)] if game.a in index else []
            x += [(index[game.b], -1.0)] if game.b in index else []
            x += [(n - 1, game.length)] if length_control else []
            p_a = 1 / (1 + math.exp(-sum(beta[i] * value for i, value in x)))
            information = p_a * (1 - p_a)
            for i, value in x:
                gradient[i] += (game.score - p_a) * value
                for j, other in x:
                    hessian[i][j] += information * value * other
        step = _solve(hessian, gradient)
        beta = [value + delta for value, delta in zip(beta, step)]
        if max((abs(s) for s in step), default=0) < 1e-8:
            break
    covariance = _inverse(hessian)
    result = {anchor: Strength(0.0, 0.0, 0.0)}
    for p in free:
        theta, se = beta[index[p]], math.sqrt(max(covariance[index[p]][index[p]], 0.0))
        result[p] = Strength(theta, theta - 1.96 * se, theta + 1.96 * se)
    return result


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (matrices here are a few dozen wide)."""
    n = len(vector)
    a = [row[:] + [vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[col][col]:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col])]
    return [a[i][n] / a[i][i] for i in range(n)]


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    n = len(matrix)
    columns = [_solve(matrix, [1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
    return [[columns[j][i] for j in range(n)] for i in range(n)]

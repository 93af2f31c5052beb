"""Human-judged strength of every checkpoint, from blind comparisons between checkpoints.

Bradley-Terry on log-strengths theta (the first checkpoint fixed at 0), fitted by
Newton steps on the penalised log-likelihood; a small Gaussian prior keeps
theta finite when one checkpoint has only wins. Intervals are +-1.96 standard
errors from the inverse Fisher information.

A share won (one checkpoint against another, or a reward model's held-out
accuracy) gets Wilson's score interval, which stays inside 0..1 and keeps its
coverage for a handful of games, where the normal approximation does not.
"""

import math
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
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


def comparisons(db: Session, involving: int | None = None) -> list[tuple[int, int, float]]:
    """(checkpoint a, checkpoint b, score of a: 1, 0.5 or 0) from blind cross-checkpoint ratings;
    with `involving`, only the comparisons one of whose samples that checkpoint wrote."""
    query = (select(Rating.verdict, Rating.preferred_sample_id, Rating.provenance)
             .join(Item, Item.id == Rating.item_id)
             .where(Item.purpose == ItemPurpose.progress, Rating.verdict.in_([Verdict.preferred, Verdict.tie])))
    if involving is not None:
        query = query.where(Rating.item_id.in_(
            select(ItemResponse.item_id).join(Sample, Sample.id == ItemResponse.sample_id)
            .where(Sample.checkpoint_id == involving)))
    rows = db.execute(query)
    games = []
    for verdict, preferred, provenance in rows:
        a, b = provenance[0], provenance[1]
        if a["checkpoint_id"] is None or b["checkpoint_id"] is None or a["checkpoint_id"] == b["checkpoint_id"]:
            continue
        score = 0.5 if verdict == Verdict.tie else float(preferred == a["sample_id"])
        games.append((a["checkpoint_id"], b["checkpoint_id"], score))
    return games


def head_to_head(games: list[tuple[int, int, float]], child: int, parent: int) -> HeadToHead:
    record = HeadToHead()
    for a, b, score in games:
        if (a, b) in ((child, parent), (parent, child)):
            record.wins += score if a == child else 1 - score
            record.games += 1
            record.ties += score == 0.5
    return record


def fit_strengths(games: list[tuple[int, int, float]], anchor: int) -> dict[int, Strength]:
    players = sorted({anchor} | {a for a, _, _ in games} | {b for _, b, _ in games})
    free = [p for p in players if p != anchor]
    index = {p: i for i, p in enumerate(free)}
    theta = defaultdict(float)
    pairs: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])  # (a<b): [a's score, games]
    for a, b, score in games:
        key, s = ((a, b), score) if a < b else ((b, a), 1 - score)
        pairs[key][0] += s
        pairs[key][1] += 1
    n = len(free)
    hessian = [[0.0] * n for _ in range(n)]
    for _ in range(50):
        gradient = [-PRIOR_PRECISION * theta[p] for p in free]
        hessian = [[PRIOR_PRECISION if i == j else 0.0 for j in range(n)] for i in range(n)]
        for (a, b), (wins_a, count) in pairs.items():
            p_a = 1 / (1 + math.exp(theta[b] - theta[a]))
            information = count * p_a * (1 - p_a)
            for player, sign in ((a, 1), (b, -1)):
                if player in index:
                    gradient[index[player]] += sign * (wins_a - count * p_a)
            for x in (a, b):
                for y in (a, b):
                    if x in index and y in index:
                        hessian[index[x]][index[y]] += information if x == y else -information
        step = _solve(hessian, gradient)
        for p in free:
            theta[p] += step[index[p]]
        if max((abs(s) for s in step), default=0) < 1e-8:
            break
    covariance = _inverse(hessian)
    result = {anchor: Strength(0.0, 0.0, 0.0)}
    for p in free:
        se = math.sqrt(max(covariance[index[p]][index[p]], 0.0))
        result[p] = Strength(theta[p], theta[p] - 1.96 * se, theta[p] + 1.96 * se)
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

"""Bradley-Terry strengths, with and without a length term, on games whose truth is known."""

import math
import random

import pytest

from app.checkpoints.win_rate import Game, fit_strengths, head_to_head

PARENT, CHILD = 1, 2


def games(n: int, child_longer: float, prefer_longer: float, child_better: float, seed: int = 0) -> list[Game]:
    """Child vs parent: the child's answer is longer in a share `child_longer` of games; raters
    prefer the longer answer with log-odds `prefer_longer` and the child with log-odds `child_better`."""
    rng = random.Random(seed)
    played = []
    for _ in range(n):
        longer = rng.random() < child_longer
        d = rng.uniform(0.2, 0.6) * (1 if longer else -1)  # (len_child - len_parent) / (sum)
        p_child = 1 / (1 + math.exp(-(child_better + prefer_longer * d / 0.4)))
        played.append(Game(CHILD, PARENT, float(rng.random() < p_child), d))
    return played


def win_rate_at_equal_length(played: list[Game]) -> float:
    strengths = fit_strengths(played, anchor=PARENT, length_control=True)
    return 1 / (1 + math.exp(strengths[PARENT].theta - strengths[CHILD].theta))


def test_a_policy_that_only_got_longer_does_not_look_better_length_controlled():
    played = games(2000, child_longer=0.75, prefer_longer=1.5, child_better=0.0)
    assert head_to_head(played, CHILD, PARENT).rate > 0.65  # raters liked its longer answers
    assert win_rate_at_equal_length(played) == pytest.approx(0.5, abs=0.04)


def test_a_better_policy_stays_better_length_controlled():
    played = games(2000, child_longer=0.5, prefer_longer=0.0, child_better=1.1)  # 75% at any length
    assert head_to_head(played, CHILD, PARENT).rate == pytest.approx(0.75, abs=0.03)
    assert win_rate_at_equal_length(played) == pytest.approx(0.75, abs=0.04)
    plain = fit_strengths(played, anchor=PARENT)
    assert 1 / (1 + math.exp(-plain[CHILD].theta)) == pytest.approx(0.75, abs=0.03)
    assert plain[CHILD].low < plain[CHILD].theta < plain[CHILD].high

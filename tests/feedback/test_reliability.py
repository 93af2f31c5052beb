"""Rater reliability from shared items (one-coin Dawid-Skene), on synthetic raters whose accuracy is known."""

import random

import pytest

from app.feedback.reliability import MIN_SHARED_ITEMS, estimate, rater_weights

ANSWERS = [("preferred", 1), ("preferred", 2), ("tie", None), ("both_bad", None)]


def simulate(accuracies: dict[int, float | str], items: int, per_item: int, seed: int = 0):
    """Each item's right answer is A or B; a rater of accuracy p gives it with probability p, else
    another answer at random; "random" clicks A or B; "adversarial" always picks the other of A and B."""
    rng = random.Random(seed)
    answers = {}
    for item in range(items):
        right = ANSWERS[rng.randrange(2)]
        wrong = ANSWERS[1] if right == ANSWERS[0] else ANSWERS[0]
        given = []
        for rater in rng.sample(sorted(accuracies), per_item):
            kind = accuracies[rater]
            if kind == "random":
                answer = ANSWERS[rng.randrange(2)]
            elif kind == "adversarial":
                answer = wrong
            else:
                answer = right if rng.random() < kind else rng.choice([a for a in ANSWERS if a != right])
            given.append((rater, answer))
        answers[item] = given
    return answers


def test_careful_raters_are_trusted_and_a_hostile_one_is_flagged_and_weighs_nothing():
    raters = {1: 0.9, 2: 0.9, 3: 0.85, 4: 0.8, 5: 0.9, 6: "random", 7: "adversarial"}
    estimates = estimate(simulate(raters, items=150, per_item=3))
    for careful in (1, 2, 3, 4, 5):
        assert estimates[careful].accuracy == pytest.approx(raters[careful], abs=0.1), estimates[careful]
        assert not estimates[careful].flagged
        low, high = estimates[careful].interval
        assert low < estimates[careful].accuracy < high
    assert estimates[7].accuracy < 0.15 and estimates[7].flagged and estimates[7].weight == 0.0
    assert 0.3 < estimates[6].accuracy < 0.65 and estimates[6].flagged and estimates[6].weight < 0.3
    weights = rater_weights(estimates, set(raters) | {8})
    assert weights[7] == 0.0 and weights[1] > 0.7
    assert weights[8] == pytest.approx(sorted(e.weight for e in estimates.values())[3])  # no estimate: the median


@pytest.mark.parametrize("seed", range(5))
def test_equally_careful_raters_are_not_flagged(seed):
    estimates = estimate(simulate(dict.fromkeys(range(1, 5), 0.88), items=260, per_item=2, seed=seed))
    assert not any(e.flagged for e in estimates.values()), estimates


def test_without_enough_overlap_nothing_is_estimated_and_every_rating_counts_the_same():
    estimates = estimate(simulate({1: 0.9, 2: 0.9, 3: "adversarial"}, items=MIN_SHARED_ITEMS - 1, per_item=2))
    assert all(e.accuracy is None and e.interval is None and not e.flagged for e in estimates.values())
    assert rater_weights(estimates, {1, 2, 3}) == {1: 1.0, 2: 1.0, 3: 1.0}

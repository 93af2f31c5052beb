"""The raters' verdict on a candidate (app.checkpoints.review.decide), on counted comparisons."""

from app.checkpoints.review import MIN_COMPARISONS, decide
from app.checkpoints.win_rate import HeadToHead, wilson_interval


def record(wins: int, losses: int, ties: int = 0) -> HeadToHead:
    return HeadToHead(wins=wins + 0.5 * ties, games=wins + losses + ties, ties=ties)


def test_wilson_interval_against_hand_computed_values():
    low, high = wilson_interval(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_no_verdict_before_the_minimum_of_decisive_comparisons():
    assert decide(record(MIN_COMPARISONS - 1, 0), 200).decision is None
    assert decide(record(MIN_COMPARISONS, 0), 200).decision == "promote"


def test_ties_are_left_out_of_the_win_rate():
    review = decide(record(14, 6, ties=30), 200)
    assert (review.wins, review.decisive, review.ties) == (14, 20, 30)
    assert review.win_rate == 0.7 and review.decision is None  # 95% interval 48%-86%
    assert decide(record(15, 5, ties=30), 200).decision == "promote"  # 53%-89%


def test_a_worse_candidate_is_rejected_and_an_undecided_one_dropped_at_the_cap():
    assert decide(record(5, 20), 200).decision == "reject"
    assert decide(record(100, 100), 200).decision == "reject"  # no gain the raters could see
    assert decide(record(90, 90), 200).decision is None

"""The one rule for what a rating means (app.feedback.examples), on hand-made ratings."""

from app.feedback.examples import Comparison, RatingRow, comparisons_of, count
from app.models import Verdict


def row(prompt_id, verdict=None, preferred=None, shown=(1, 2), scores=None) -> RatingRow:
    return RatingRow(0, 1, prompt_id, verdict, preferred, tuple(shown), scores or {})


def test_a_preference_among_n_responses_is_n_minus_one_decisive_comparisons():
    assert comparisons_of([row(7, Verdict.preferred, 3, shown=(1, 3, 2))]) == [
        Comparison(7, 3, 1), Comparison(7, 3, 2)]


def test_tie_and_both_bad_tie_every_two_responses_shown():
    result = comparisons_of([row(1, Verdict.tie), row(2, Verdict.both_bad, shown=(5, 4, 6))])
    assert result == [Comparison(1, 1, 2, tie=True), Comparison(2, 5, 4, tie=True), Comparison(2, 5, 6, tie=True),
                      Comparison(2, 4, 6, tie=True)]
    assert count(result, ratings=2).decisive == 0


def test_scores_become_within_prompt_comparisons():
    ratings = [
        row(1, shown=(10,), scores={10: 7}),
        row(1, shown=(11,), scores={11: 2}),
        row(1, shown=(12,), scores={12: 2}),
        row(2, shown=(20,), scores={20: 5}),  # alone on its prompt: nothing to compare with
    ]
    result = comparisons_of(ratings)
    assert sorted(result, key=lambda c: (c.chosen, c.rejected)) == [
        Comparison(1, 10, 11), Comparison(1, 10, 12), Comparison(1, 11, 12, tie=True)]
    counts = count(result, ratings=4)
    assert (counts.decisive, counts.ties) == (2, 1)


def test_a_preference_for_a_response_not_shown_counts_for_nothing():
    assert comparisons_of([row(1, Verdict.preferred, 99)]) == []

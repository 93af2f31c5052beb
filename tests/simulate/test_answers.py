"""How a simulated rater answers an item: by its rule, with flips at the noise rate."""

import random

import pytest

from simulation.raters import answer_item, load_rule
from simulation.rules import RULES

GOOD = {"id": 11, "text": "The cat is lovely and warm."}
BAD = {"id": 12, "text": "The cat is awful."}


def compare(*responses) -> dict:
    return {"item_id": 5, "kind": "compare", "prompt": "Tell me about the cat.", "responses": list(responses)}


@pytest.mark.parametrize("order", [(GOOD, BAD), (BAD, GOOD)])
def test_without_noise_the_rule_decides_whatever_the_display_order(order):
    body = answer_item(RULES["positive"], compare(*order), 0.0, random.Random(0))
    assert body == {"item_id": 5, "verdict": "preferred", "preferred_response_id": GOOD["id"]}


def test_noise_is_the_share_of_answers_flipped():
    rng = random.Random(1)
    answers = [answer_item(RULES["positive"], compare(GOOD, BAD), 0.2, rng)["preferred_response_id"]
               for _ in range(4000)]
    flipped = answers.count(BAD["id"]) / len(answers)
    assert 0.18 < flipped < 0.22
    assert all(answer_item(RULES["positive"], compare(GOOD, BAD), 1.0, rng)["preferred_response_id"] == BAD["id"]
               for _ in range(50))


def test_equal_scores_are_a_tie_and_a_flipped_tie_picks_a_side():
    same = {"id": 13, "text": "The cat is lovely."}
    assert answer_item(RULES["positive"], compare(same, GOOD | {"text": "A lovely cat."}), 0.0,
                       random.Random(0)) == {"item_id": 5, "verdict": "tie"}
    flipped = answer_item(RULES["positive"], compare(same, GOOD | {"text": "A lovely cat."}), 1.0, random.Random(0))
    assert flipped["verdict"] == "preferred"


def test_more_than_two_responses_prefer_the_best():
    middling = {"id": 14, "text": "The cat is old."}
    body = answer_item(RULES["positive"], compare(middling, BAD, GOOD), 0.0, random.Random(0))
    assert body["preferred_response_id"] == GOOD["id"]


def test_score_items_get_a_high_score_when_the_rule_is_satisfied():
    def score(response, noise=0.0):
        item = {"item_id": 6, "kind": "score", "prompt": "Tell me about the cat.", "responses": [response]}
        return answer_item(RULES["positive"], item, noise, random.Random(0))["scores"][str(response["id"])]

    assert score(GOOD) > score(BAD)
    assert score(GOOD, noise=1.0) == score(BAD)


def test_rules_by_name_or_by_import_path():
    assert load_rule("shorter") is RULES["shorter"]
    custom = load_rule("tests.simulate.custom_rule:mentions_a_cat")
    body = answer_item(custom, compare({"id": 1, "text": "A dog."}, {"id": 2, "text": "A cat."}), 0.0,
                       random.Random(0))
    assert body["preferred_response_id"] == 2
    with pytest.raises(ValueError, match="unknown rule"):
        load_rule("kindness")
    with pytest.raises(ValueError, match="cannot load"):
        load_rule("tests.simulate.custom_rule:nothing_here")

"""Degeneration measures and the gates built on them, on hand-written text (pure Python)."""

import pytest

from worker.gates import degeneration_gates, kl_gate, moved_gate, reward_model_gate
from worker.training.degeneration import (
    against_parent,
    distinct_2,
    is_degenerate,
    repetition,
    sample_stats,
)

FLUENT = ["The cat sat on the mat.", "We walked to the market in the rain.", "A green lamp stood by the piano.",
          "My sister said the coffee was warm.", "The river looked calm this morning."]


def test_repetition_counts_repeated_bigrams():
    assert repetition("the cat sat on the mat") == 0.0
    assert repetition("the the the the") == pytest.approx(2 / 3)


@pytest.mark.parametrize("text", ["", "   ", "the the the the", "It was a good day............",
                                  "go to the shop go to the shop go to the shop go to the shop"])
def test_empty_looping_and_stuck_text_is_degenerate(text):
    assert is_degenerate(text)


@pytest.mark.parametrize("text", ["Well... maybe.", "Yes.", "The dog is happy, the dog is calm."] + FLUENT)
def test_ordinary_text_is_not(text):
    assert not is_degenerate(text)


def test_the_same_answer_to_every_prompt_has_a_low_distinct_2():
    assert distinct_2(["The coffee seemed nice this morning."] * 5) < 0.5 * distinct_2(FLUENT)
    assert distinct_2(["Good."] * 5) < 0.5 * distinct_2(["Good.", "Fine.", "Lovely.", "Bad.", "Calm."])


def test_a_degenerate_policy_fails_the_gates_against_its_parent():
    parent = sample_stats(FLUENT * 4, [True] * 20)
    looping = sample_stats(["the the the the the"] * 10 + FLUENT * 2, [False] * 10 + [True] * 10)
    failed = {gate.name for gate in degeneration_gates(looping, parent) if not gate.passed}
    assert {"degenerate_share", "unfinished_share"} <= failed
    same = sample_stats(["The coffee seemed nice this morning."] * 20, [True] * 20)
    assert {c.name for c in against_parent(same, parent) if not c.passed} == {"distinct_2_ratio"}
    assert all(gate.passed for gate in degeneration_gates(parent, parent))


def test_kl_reward_model_and_moved_gates():
    assert kl_gate(3.0, 15.0).passed and not kl_gate(17.3, 15.0).passed
    # 0.517 held-out accuracy, as the PPO round had: at chance.
    assert not reward_model_gate({"eval_accuracy": 0.517, "eval_decisive": 120}).passed
    assert reward_model_gate({"eval_accuracy": 0.8, "eval_decisive": 40}).passed
    assert not reward_model_gate({"eval_accuracy": 1.0, "eval_decisive": 3}).passed  # 3 of 3 is not yet confidence
    assert not reward_model_gate({"eval_decisive": 0}).passed
    # Thumbs alone: right more often than always saying the commoner thumb (70 % of them here).
    thumbs = {"eval_decisive": 0, "eval_thumbs": 100, "eval_thumb_majority": 0.7}
    assert not reward_model_gate(thumbs | {"eval_thumb_accuracy": 0.75}).passed
    assert reward_model_gate(thumbs | {"eval_thumb_accuracy": 0.85}).passed
    # Comparisons, when there are held-out ones, decide.
    assert not reward_model_gate(thumbs | {"eval_thumb_accuracy": 0.95, "eval_accuracy": 0.5,
                                           "eval_decisive": 100}).passed
    assert not moved_gate(0, "kl beyond the limit at step 5; kept step 0").passed

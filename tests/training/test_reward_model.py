from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from worker.training import (
    RewardModelConfig,
    RewardScorer,
    TrainingCancelled,
    fit_reward_model,
    read_metadata,
    verify_checkpoint,
)

SMOKE = RewardModelConfig(epochs=4, batch_size=16, learning_rate=1e-3, eval_fraction=0.2)


def first_layer_weight(model) -> torch.Tensor:
    return model.base_model.h[0].attn.c_attn.weight.detach().clone()


def test_fit_lowers_the_loss_changes_the_weights_and_publishes(tmp_path, tiny_base_model, colour_pairs):
    seen = []
    result = fit_reward_model(
        tiny_base_model, colour_pairs, SMOKE, tmp_path / "rm", on_metrics=lambda step, m: seen.append(m)
    )
    losses = [m["loss"] for m in seen]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert "eval_accuracy" in result.metrics and "eval_accuracy" in seen[-1]

    verify_checkpoint(result.out_dir)
    metadata = read_metadata(result.out_dir)
    assert metadata["algorithm"] == "reward_model"
    assert metadata["config"]["learning_rate"] == SMOKE.learning_rate
    assert metadata["reward_normalisation"]["std"] > 0

    before = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    after = AutoModelForSequenceClassification.from_pretrained(result.out_dir)
    assert not torch.equal(first_layer_weight(before), first_layer_weight(after))
    assert after.config.pad_token_id is not None


def test_scorer_normalises_rewards_over_the_training_responses(tmp_path, tiny_base_model, colour_pairs):
    result = fit_reward_model(tiny_base_model, colour_pairs, SMOKE, tmp_path / "rm")
    responses = sorted({(p.prompt, r) for p in colour_pairs for r in (p.chosen, p.rejected)})
    rewards = RewardScorer(result.out_dir).score([p for p, _ in responses], [r for _, r in responses])
    assert rewards.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert rewards.std().item() == pytest.approx(1.0, abs=1e-3)


def test_cancellation_leaves_no_checkpoint(tmp_path, tiny_base_model, colour_pairs):
    calls = []

    def stop_on_third_check() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(TrainingCancelled):
        fit_reward_model(tiny_base_model, colour_pairs, SMOKE, tmp_path / "rm", should_stop=stop_on_third_check)
    assert list(Path(tmp_path).iterdir()) == []


def test_a_hostile_rater_weighed_at_zero_loses_their_influence(tmp_path, tiny_base_model):
    """60% of the decisive pairs come from a rater who always answers against the rule: counted like
    the others they teach the reward model the opposite; weighed at 0 they teach it nothing."""
    from dataclasses import replace

    from tests.training.conftest import corpus_pairs

    decisive = [p for p in corpus_pairs("colour", 400) if not p.tie]
    hostile = [replace(p, chosen=p.rejected, rejected=p.chosen, weight=0.0) for p in decisive[: len(decisive) * 3 // 5]]
    pairs = hostile + decisive[len(hostile):]
    fresh = [p for p in corpus_pairs("colour", 400, seed=1) if not p.tie]
    config = RewardModelConfig(epochs=4, batch_size=16, learning_rate=1e-3, eval_fraction=0.0)

    def accuracy(train, name: str) -> float:
        scorer = RewardScorer(fit_reward_model(tiny_base_model, train, config, tmp_path / name).out_dir)
        chosen, rejected = (scorer.score([p.prompt for p in fresh], [getattr(p, side) for p in fresh])
                            for side in ("chosen", "rejected"))
        return (chosen > rejected).float().mean().item()

    unweighted = accuracy([replace(p, weight=1.0) for p in pairs], "unweighted")
    weighted = accuracy(pairs, "weighted")
    print(f"held-out accuracy: unweighted {unweighted:.3f}, weighted {weighted:.3f}")
    assert unweighted < 0.5 < 0.75 < weighted, (unweighted, weighted)


def test_thumbs_alone_teach_the_reward_model_the_rule(tmp_path, tiny_base_model):
    """Each response judged on its own, up when it satisfies the rule: no pair at all."""
    import random

    from simulation.rules import satisfaction
    from tests.training.conftest import corpus_pairs
    from worker.training.corpus import builtin_prompts, sample_response
    from worker.training.data import UnaryExample

    rng = random.Random(0)
    thumbs = []
    for prompt in builtin_prompts(0)[:300]:
        response = sample_response(prompt.topic, rng)
        thumbs.append(UnaryExample(prompt.text, response, good=satisfaction("colour", prompt.text, response) >= 1))
    assert 0.15 < sum(t.good for t in thumbs) / len(thumbs) < 0.6
    seen = []
    config = RewardModelConfig(epochs=4, batch_size=16, learning_rate=1e-3, eval_fraction=0.0)
    result = fit_reward_model(tiny_base_model, [], config, tmp_path / "rm", unary=thumbs,
                              on_metrics=lambda step, m: seen.append(m))
    assert result.metrics["steps"] == 4 * 19 and result.metrics["thumbs"] == 300  # 300 thumbs, batches of 16
    assert seen[-1]["thumb_accuracy"] > 0.8 and "accuracy" not in seen[-1]
    fresh = [p for p in corpus_pairs("colour", 400, seed=1) if not p.tie]
    scorer = RewardScorer(result.out_dir)
    chosen, rejected = (scorer.score([p.prompt for p in fresh], [getattr(p, side) for p in fresh])
                        for side in ("chosen", "rejected"))
    assert (chosen > rejected).float().mean().item() > 0.8

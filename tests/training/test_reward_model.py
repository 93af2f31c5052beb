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

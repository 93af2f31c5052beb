from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from worker.training import (
    PPOConfig,
    RewardModelConfig,
    TrainingCancelled,
    builtin_prompts,
    fit_reward_model,
    read_metadata,
    run_ppo,
    verify_checkpoint,
)

SMOKE = PPOConfig(steps=4, rollout_batch_size=16, minibatch_size=8, max_new_tokens=16, learning_rate=1e-3)
PROMPTS = [p.text for p in builtin_prompts()[:32]]


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory, tiny_base_model, colour_pairs) -> Path:
    config = RewardModelConfig(epochs=2, batch_size=16, learning_rate=1e-3)
    return fit_reward_model(tiny_base_model, colour_pairs, config, tmp_path_factory.mktemp("rm") / "rm").out_dir


def mlp_weight(directory: Path) -> torch.Tensor:
    return AutoModelForCausalLM.from_pretrained(directory).transformer.h[0].mlp.c_fc.weight.detach()


def test_ppo_improves_its_surrogate_changes_the_weights_and_publishes(tmp_path, tiny_base_model, tiny_reward_model):
    seen = []
    result = run_ppo(
        tiny_base_model, tiny_reward_model, PROMPTS, SMOKE, tmp_path / "ppo",
        on_metrics=lambda step, m: seen.append((step, m)),
    )
    assert [step for step, _ in seen] == [1, 2, 3, 4]
    for _, metrics in seen:
        assert {"loss", "reward_mean", "kl", "kl_k3", "entropy", "response_length", "clip_fraction",
                "value_loss", "kl_coef"} <= metrics.keys()
    # Before the first update the policy is the reference: the KL is zero exactly.
    assert seen[0][1]["kl"] == 0.0 and seen[0][1]["kl_k3"] == 0.0
    assert seen[-1][1]["kl_k3"] > 0.0
    # The clipped surrogate starts at 0 on each rollout (ratio 1, whitened advantages)
    # and each update pushes it below that.
    assert all(m["policy_loss"] < 0 for _, m in seen)

    verify_checkpoint(result.out_dir)
    metadata = read_metadata(result.out_dir)
    assert metadata["algorithm"] == "ppo"
    assert metadata["reward_model"] == str(tiny_reward_model)
    assert not torch.equal(mlp_weight(tiny_base_model), mlp_weight(result.out_dir))


def test_adaptive_kl_and_lora(tmp_path, tiny_base_model, tiny_reward_model):
    config = PPOConfig(steps=2, rollout_batch_size=8, minibatch_size=8, max_new_tokens=12,
                       learning_rate=1e-3, lora_r=4, kl_target=0.01, kl_horizon=100)
    seen = []
    result = run_ppo(tiny_base_model, tiny_reward_model, PROMPTS, config, tmp_path / "ppo",
                     on_metrics=lambda step, m: seen.append(m))
    # Step 1 sees KL 0 < target, so the adaptive coefficient shrinks.
    assert seen[0]["kl_coef"] < config.kl_coef
    assert (result.out_dir / "adapter_config.json").is_file()


def test_cancellation_leaves_no_checkpoint(tmp_path, tiny_base_model, tiny_reward_model):
    checks = []
    with pytest.raises(TrainingCancelled):
        run_ppo(tiny_base_model, tiny_reward_model, PROMPTS, SMOKE, tmp_path / "ppo",
                should_stop=lambda: checks.append(1) or len(checks) > 2)
    assert list(tmp_path.iterdir()) == []

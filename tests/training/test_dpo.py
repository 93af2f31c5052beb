import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from worker.training import DPOConfig, TrainingCancelled, read_metadata, run_dpo, verify_checkpoint

SMOKE = DPOConfig(epochs=3, batch_size=16, learning_rate=1e-3)


def mlp_weight(directory: Path) -> torch.Tensor:
    return AutoModelForCausalLM.from_pretrained(directory).transformer.h[0].mlp.c_fc.weight.detach()


def test_dpo_lowers_the_loss_changes_the_weights_and_publishes(tmp_path, tiny_base_model, colour_pairs):
    seen = []
    result = run_dpo(tiny_base_model, colour_pairs, SMOKE, tmp_path / "dpo", on_metrics=lambda s, m: seen.append(m))
    # The policy starts as its own reference: every margin is 0 and the loss is log 2.
    assert seen[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert sum(m["loss"] for m in seen[-3:]) / 3 < math.log(2) - 0.01
    assert seen[-1]["reward_margin"] > 0
    assert {"reward_accuracy", "chosen_reward", "rejected_reward", "chosen_logps", "rejected_logps"} <= seen[-1].keys()

    verify_checkpoint(result.out_dir)
    assert read_metadata(result.out_dir)["config"]["beta"] == SMOKE.beta
    assert not torch.equal(mlp_weight(tiny_base_model), mlp_weight(result.out_dir))


def test_cancellation_leaves_no_checkpoint(tmp_path, tiny_base_model, colour_pairs):
    with pytest.raises(TrainingCancelled):
        run_dpo(tiny_base_model, colour_pairs, SMOKE, tmp_path / "dpo", should_stop=lambda: True)
    assert list(tmp_path.iterdir()) == []

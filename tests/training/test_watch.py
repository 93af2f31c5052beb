"""The watch stops a policy before it breaks and saves the last good weights (real torch, tiny model)."""

from dataclasses import replace

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training import DPOConfig, PPOConfig, RewardModelConfig, fit_reward_model, run_dpo, run_ppo
from worker.training.corpus import builtin_prompts
from worker.training.logprobs import reference_logprobs
from worker.training.watch import PolicyWatch, WatchConfig, worse_than_chance

PROBE = [p.text for p in builtin_prompts(5)[:16]]
EAGER = DPOConfig(epochs=8, batch_size=16, learning_rate=3e-4)


def kl_of(directory, base_dir, config: WatchConfig) -> float:
    """The KL the watch measures for a saved policy against the base, with the same prompts and seed."""
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    watch = PolicyWatch(config, tokenizer, base, lambda ids, mask: reference_logprobs(
        base, base, ids, mask, config.temperature))
    policy = AutoModelForCausalLM.from_pretrained(directory).eval()
    return watch.check(1, policy).kl


def test_dpo_stops_at_the_kl_budget_and_saves_the_last_good_weights(tmp_path, tiny_base_model, colour_pairs):
    watch = WatchConfig(prompts=PROBE, every=1, kl_budget=2.0)
    result = run_dpo(tiny_base_model, colour_pairs, EAGER, tmp_path / "dpo", watch=watch)
    report = result.report
    # The tiny model drifts past 2 nats within a few steps at this rate (or its answers stop ending first).
    assert "beyond the limit" in report["stopped"], report
    assert 0 < report["kept_step"] < result.metrics["steps"] < EAGER.epochs * 6
    assert report["kl"] <= 2.0
    # The saved weights are the kept ones: measured again, the same KL within the budget.
    assert kl_of(result.out_dir, tiny_base_model, watch) == pytest.approx(report["kl"], rel=1e-3, abs=1e-3)
    assert len(report["samples"]) == 8 and {"prompt", "parent", "candidate"} <= report["samples"][0].keys()


def test_without_limits_the_watch_lets_training_run_to_its_end(tmp_path, tiny_base_model, colour_pairs):
    config = replace(EAGER, epochs=2, eval_fraction=0.2, learning_rate=1e-4)
    result = run_dpo(tiny_base_model, colour_pairs, config, tmp_path / "dpo",
                     watch=WatchConfig(prompts=PROBE, every=3, kl_budget=None))
    assert result.report["stopped"] == ""
    assert result.report["kept_step"] == result.metrics["steps"] == 10  # 77 training pairs, batches of 16
    assert {"heldout_accuracy", "heldout_margin", "heldout_loss"} <= result.report["heldout"].keys()


def test_ppo_stops_at_the_kl_budget(tmp_path, tiny_base_model, colour_pairs):
    reward = fit_reward_model(tiny_base_model, colour_pairs, RewardModelConfig(epochs=2, batch_size=16,
                                                                              learning_rate=1e-3), tmp_path / "rm")
    config = PPOConfig(steps=12, rollout_batch_size=16, minibatch_size=8, max_new_tokens=16, learning_rate=3e-3)
    watch = WatchConfig(prompts=PROBE, every=3, kl_budget=0.3, max_new_tokens=16)
    # (An eager learning rate: the KL passes 0.3 nats within the first checks.)
    result = run_ppo(tiny_base_model, reward.out_dir, [p.text for p in builtin_prompts(0)[:64]], config,
                     tmp_path / "ppo", watch=watch)
    assert "kl beyond the limit" in result.report["stopped"]
    assert result.metrics["steps"] < config.steps and result.report["kl"] <= 0.3


def test_worse_than_chance_asks_for_evidence_not_a_point_estimate():
    assert worse_than_chance(0, 6) and worse_than_chance(30, 80)  # p = 0.016, p = 0.017
    assert not worse_than_chance(2, 6) and not worse_than_chance(1, 5)  # 33% and 20% right: p = 0.34, 0.19
    assert not worse_than_chance(0, 0) and not worse_than_chance(5, 6)


def test_held_out_signal_stops_training_only_when_worse_than_chance_twice_running(tiny_base_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    policy = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
    watch = PolicyWatch(WatchConfig(prompts=PROBE[:4], kl_budget=None, max_new_tokens=8), tokenizer, policy,
                        lambda ids, mask: reference_logprobs(policy, policy, ids, mask, 1.0))
    watch.check(1, policy, worse_than_chance=True)
    watch.check(2, policy)  # a good check in between starts the count again
    watch.check(3, policy, worse_than_chance=True)
    assert not watch.should_stop and watch.kept.step == 2
    watch.check(4, policy, worse_than_chance=True)
    assert watch.should_stop and "heldout beyond the limit at step 4; kept step 2" in watch.stop_reason

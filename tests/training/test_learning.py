"""End to end on a small model: rule-labelled pairs → reward model → PPO, and → DPO.

The hidden rule is "mention a colour". The base model satisfies it about a
quarter of the time (the corpus mentions a colour in ~30% of responses), so
both algorithms have signal and room to improve. Satisfaction is measured on
prompts that no training step saw.
"""

import random
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from simulation.rules import prefer, satisfaction
from worker.training import (
    BaseModelConfig,
    DPOConfig,
    PPOConfig,
    PreferencePair,
    RewardModelConfig,
    RewardScorer,
    build_base_model,
    builtin_prompts,
    fit_reward_model,
    generate_responses,
    run_dpo,
    run_ppo,
)
from worker.training.base_model import ChatModelConfig
from worker.training.checkpoint_io import stored_content_hash
from worker.training.lora import ModelRef, load_causal_lm

pytestmark = pytest.mark.slow

RULE = "colour"
PROMPTS = builtin_prompts(seed=0)
TRAIN_PROMPTS = [p.text for p in PROMPTS[:300]]
FRESH_PROMPTS = [p.text for p in PROMPTS[300:]]
# Half the default depth: learns the corpus well enough in ~200 steps.
SMALL_BASE = BaseModelConfig(n_layer=2, examples=10_000, steps=200)


def rated_pairs(model_dir: Path, prompts: list[str], seed: int) -> list[PreferencePair]:
    """Two samples per prompt from the model, judged by the hidden rule (ties kept)."""
    model, tokenizer = load_causal_lm(model_dir), AutoTokenizer.from_pretrained(model_dir)
    first = generate_responses(model, tokenizer, prompts, max_new_tokens=40, batch_size=100, seed=seed)
    second = generate_responses(model, tokenizer, prompts, max_new_tokens=40, batch_size=100, seed=seed + 1)
    rng = random.Random(seed)
    pairs = []
    for a, b in zip(first, second):
        answer = prefer(RULE, a.prompt, a.text, b.text, noise=0.0, rng=rng)
        chosen, rejected = (b.text, a.text) if answer == "b" else (a.text, b.text)
        pairs.append(PreferencePair(a.prompt, chosen, rejected, tie=answer == "tie"))
    return pairs


def satisfaction_rate(model_dir: Path, base: ModelRef | None = None) -> float:
    model, tokenizer = load_causal_lm(model_dir, base).eval(), AutoTokenizer.from_pretrained(model_dir)
    samples = generate_responses(model, tokenizer, FRESH_PROMPTS * 2, max_new_tokens=40, batch_size=84, seed=7)
    return sum(satisfaction(RULE, s.prompt, s.text) for s in samples) / len(samples)


@pytest.fixture(scope="module")
def small_base_model(tmp_path_factory) -> Path:
    return build_base_model(tmp_path_factory.mktemp("models") / "small-base", SMALL_BASE)


@pytest.fixture(scope="module")
def training_pairs(small_base_model) -> list[PreferencePair]:
    return rated_pairs(small_base_model, TRAIN_PROMPTS, seed=1)


@pytest.fixture(scope="module")
def base_rate(small_base_model) -> float:
    rate = satisfaction_rate(small_base_model)
    assert 0.1 < rate < 0.5, "the base model should sometimes, not always, mention a colour"
    return rate


def test_reward_model_then_ppo_learn_the_hidden_rule(tmp_path, small_base_model, training_pairs, base_rate):
    reward_model = fit_reward_model(small_base_model, training_pairs, RewardModelConfig(), tmp_path / "rm")

    # Held-out accuracy on fresh pairs: new prompts, new samples.
    fresh = [p for p in rated_pairs(small_base_model, FRESH_PROMPTS * 2, seed=11) if not p.tie]
    scorer = RewardScorer(reward_model.out_dir)
    chosen = scorer.score([p.prompt for p in fresh], [p.chosen for p in fresh])
    rejected = scorer.score([p.prompt for p in fresh], [p.rejected for p in fresh])
    accuracy = (chosen > rejected).float().mean().item()
    assert len(fresh) >= 40
    assert accuracy >= 0.85, accuracy

    seen = []
    ppo = run_ppo(
        small_base_model, reward_model.out_dir, TRAIN_PROMPTS, PPOConfig(steps=12), tmp_path / "ppo",
        on_metrics=lambda step, m: seen.append(m),
    )
    assert seen[-1]["reward_mean"] > seen[0]["reward_mean"] + 1.0
    assert 0.0 < seen[-1]["kl"] < 20.0 and torch.isfinite(torch.tensor(seen[-1]["kl_k3"]))
    ppo_rate = satisfaction_rate(ppo.out_dir)
    assert ppo_rate >= max(0.7, base_rate + 0.35), (base_rate, ppo_rate)


def test_dpo_learns_the_hidden_rule(tmp_path, small_base_model, training_pairs, base_rate):
    dpo = run_dpo(small_base_model, training_pairs, DPOConfig(epochs=2), tmp_path / "dpo")
    assert dpo.metrics["reward_accuracy"] > 0.8
    dpo_rate = satisfaction_rate(dpo.out_dir)
    assert dpo_rate >= base_rate + 0.25, (base_rate, dpo_rate)


def test_dpo_through_lora_adapters_on_a_llama_chat_model_learns_the_hidden_rule(tmp_path_factory, tmp_path):
    """The same rule, learned by a rank-8 adapter on a Llama with a chat template (prompts rendered
    through it) and published as the adapter alone."""
    base = build_base_model(tmp_path_factory.mktemp("models") / "llama", ChatModelConfig(
        architecture="llama", n_layer=2, examples=10_000, steps=200))
    rate = satisfaction_rate(base)
    assert 0.1 < rate < 0.5, rate
    dpo = run_dpo(base, rated_pairs(base, TRAIN_PROMPTS, seed=1), DPOConfig(epochs=2, lora_r=8, learning_rate=1e-3),
                  tmp_path / "dpo")
    assert (dpo.out_dir / "adapter_model.safetensors").is_file() and not (dpo.out_dir / "model.safetensors").exists()
    tuned = satisfaction_rate(dpo.out_dir, ModelRef(base, stored_content_hash(base)))
    assert tuned >= rate + 0.3, (rate, tuned)  # measured: 0.26 -> 0.94

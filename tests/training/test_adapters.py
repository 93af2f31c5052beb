"""LoRA rounds publish adapters that name their base by content hash, and go on from them
(real peft and torch on the tiny model)."""

import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training import (
    DPOConfig,
    PPOConfig,
    RewardModelConfig,
    RewardScorer,
    fit_reward_model,
    read_metadata,
    run_dpo,
    run_ppo,
    verify_checkpoint,
)
from worker.training.checkpoint_io import CheckpointError, content_hash, stored_content_hash
from worker.training.corpus import builtin_prompts
from worker.training.logprobs import reference_logprobs, token_logprobs
from worker.training.lora import ModelRef, load_causal_lm, load_policy_for_training
from worker.training.sequences import encode_prompts, ensure_pad_token, pad_prompt_response

LORA_DPO = DPOConfig(epochs=2, batch_size=16, learning_rate=3e-3, lora_r=4)
PROMPTS = [p.text for p in builtin_prompts()[:16]]


@pytest.fixture(scope="module")
def base_ref(tiny_base_model) -> ModelRef:
    return ModelRef(tiny_base_model, stored_content_hash(tiny_base_model))


@pytest.fixture(scope="module")
def adapter_round(tmp_path_factory, tiny_base_model, colour_pairs):
    return run_dpo(tiny_base_model, colour_pairs, LORA_DPO, tmp_path_factory.mktemp("dpo") / "round-1").out_dir


def logprobs_of(model, tokenizer) -> torch.Tensor:
    """Log-probs (B, T-1) of a fixed batch: prompts and a response each."""
    ensure_pad_token(tokenizer)
    prompts = encode_prompts(tokenizer, PROMPTS[:4])
    responses = [tokenizer.encode(" the red house is near the sea.") for _ in prompts]
    input_ids, attention_mask, _ = pad_prompt_response(prompts, responses, tokenizer.pad_token_id)
    with torch.no_grad():
        return token_logprobs(model.eval(), input_ids, attention_mask)[0]


def test_a_lora_round_publishes_its_adapter_naming_the_base_by_hash(adapter_round, tiny_base_model, base_ref):
    files = {p.name for p in adapter_round.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= files
    assert not {"model.safetensors", "config.json"} & files
    metadata = verify_checkpoint(adapter_round)
    assert metadata["base"] == {"content_hash": base_ref.content_hash}
    # It is the base plus a change: loaded on its base it differs from the base.
    tokenizer = AutoTokenizer.from_pretrained(adapter_round)
    tuned = logprobs_of(load_causal_lm(adapter_round, base_ref), tokenizer)
    assert not torch.allclose(tuned, logprobs_of(load_causal_lm(tiny_base_model), tokenizer))
    with pytest.raises(ValueError, match="base model it adapts must be given"):
        load_causal_lm(adapter_round)


def test_an_altered_adapter_fails_verification(adapter_round, tmp_path):
    copy = shutil.copytree(adapter_round, tmp_path / "copy")
    weights = copy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="content hash"):
        verify_checkpoint(copy)


def test_a_round_from_an_adapter_trains_it_on_against_the_parent_as_it_was(
        adapter_round, tmp_path, colour_pairs, base_ref):
    tokenizer = AutoTokenizer.from_pretrained(adapter_round)
    parent = logprobs_of(load_causal_lm(adapter_round, base_ref), tokenizer)
    policy = load_policy_for_training(adapter_round, base_ref, lora_r=8, lora_alpha=16)
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all(".default." in name for name in trainable)  # the parent's copy stays frozen
    # The reference is the parent: the same log-probs as the published checkpoint, without a copy of the base.
    ensure_pad_token(tokenizer)
    prompts = encode_prompts(tokenizer, PROMPTS[:4])
    responses = [tokenizer.encode(" the red house is near the sea.") for _ in prompts]
    input_ids, attention_mask, _ = pad_prompt_response(prompts, responses, tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(reference_logprobs(policy.eval(), None, input_ids, attention_mask), parent, atol=1e-5)
    assert all(p.requires_grad for name, p in policy.named_parameters() if name in trainable)

    second = run_dpo(adapter_round, colour_pairs, LORA_DPO, tmp_path / "round-2", base=base_ref).out_dir
    assert read_metadata(second)["base"] == {"content_hash": base_ref.content_hash}  # the same base, not a chain
    assert read_metadata(second)["parent"] == str(adapter_round)
    child = logprobs_of(load_causal_lm(second, base_ref), tokenizer)
    assert not torch.allclose(child, parent)
    with pytest.raises(ValueError, match="must be given"):
        run_dpo(adapter_round, colour_pairs, LORA_DPO, tmp_path / "round-3")


def test_full_weights_from_an_adapter_merge_it_first(adapter_round, tmp_path, colour_pairs, base_ref):
    config = DPOConfig(epochs=1, batch_size=16, learning_rate=1e-3)
    result = run_dpo(adapter_round, colour_pairs, config, tmp_path / "full", base=base_ref).out_dir
    assert (result / "model.safetensors").is_file() and "base" not in read_metadata(result)


def test_reward_model_and_ppo_with_lora_are_adapters_on_the_base(adapter_round, tmp_path, colour_pairs, base_ref):
    config = RewardModelConfig(epochs=2, batch_size=16, learning_rate=1e-3, lora_r=4)
    reward = fit_reward_model(adapter_round, colour_pairs, config, tmp_path / "rm", base=base_ref).out_dir
    assert (reward / "adapter_model.safetensors").is_file() and not (reward / "model.safetensors").exists()
    assert verify_checkpoint(reward)["base"] == {"content_hash": base_ref.content_hash}
    scorer = RewardScorer(reward, base=base_ref)
    decisive = [p for p in colour_pairs if not p.tie]
    chosen, rejected = (scorer.score([p.prompt for p in decisive], [getattr(p, side) for p in decisive])
                        for side in ("chosen", "rejected"))
    assert (chosen > rejected).float().mean() > 0.75  # it learned the rule through its adapter and head

    ppo = PPOConfig(steps=2, rollout_batch_size=8, minibatch_size=8, max_new_tokens=12, learning_rate=1e-3,
                    lora_r=4)
    policy = run_ppo(adapter_round, reward, PROMPTS, ppo, tmp_path / "ppo", base=base_ref).out_dir
    metadata = verify_checkpoint(policy)
    assert metadata["base"] == {"content_hash": base_ref.content_hash} and metadata["reward_model"] == str(reward)


def test_a_full_checkpoint_without_metadata_is_named_by_its_computed_hash(tmp_path, tiny_base_model, colour_pairs):
    plain = shutil.copytree(tiny_base_model, tmp_path / "plain", ignore=shutil.ignore_patterns("tuneloop.json"))
    out = run_dpo(plain, colour_pairs[:32], DPOConfig(batch_size=16, lora_r=4), tmp_path / "dpo").out_dir
    assert read_metadata(out)["base"] == {"content_hash": content_hash(plain)}


def test_an_adapter_is_stored_in_its_base_dtype(tmp_path, tiny_base_model, colour_pairs):
    bf16 = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_base_model, dtype=torch.bfloat16).save_pretrained(bf16)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(bf16)
    out = run_dpo(bf16, colour_pairs[:32], DPOConfig(batch_size=16, lora_r=4), tmp_path / "dpo").out_dir
    assert {t.dtype for t in load_file(out / "adapter_model.safetensors").values()} == {torch.bfloat16}
    verify_checkpoint(out)
    loaded = load_causal_lm(out, ModelRef(bf16, content_hash(bf16)))
    trained = {name: value for name, value in loaded.named_parameters() if "lora_B" in name}
    assert trained and any(value.abs().sum() > 0 for value in trained.values())  # the adapter, on its base

"""The training core on an accelerator, in bf16, on models of 100M+ parameters: one short run.

For a session that is lent a GPU: the reward model, DPO and PPO each take a few
optimiser steps on a model built from a config with the local tokenizer (no
hub): a GPT-2 of 16 layers x 768 (114M parameters), or a Llama with the layer
shapes of Qwen2-0.5B or Qwen2-1.5B (24 x 896 and 28 x 1536, grouped-query
attention; the local tokenizer's small vocabulary keeps them at 0.36B and
1.3B parameters), with `device` and `dtype` passed through their configs.
Printed and written as JSON: per trainer its wall time, pairs or rollouts per
second, first and last loss, whether the weights moved, peak accelerator
memory, and the published checkpoint loaded back the way rounds load it, with
its size against the base's (with LoRA, an adapter naming its base); DPO's
model FLOPs utilisation (8 N FLOPs a token: forward and backward of the policy,
forward of the reference; against the accelerator's dense bf16 peak); and
generation tokens per second of each engine (worker/engines.py: our sampler,
vLLM when installed) against plain `model.generate`, from the DPO checkpoint
(with LoRA, an adapter on its base).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --out $OUT/device-proof.json
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --size 0.5b --lora-r 16 --out $OUT/proof-0.5b.json
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --size 1.5b --lora-r 16 --out $OUT/proof-1.5b.json
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --device cpu --dtype float32 --size tiny   # a dry run

The tiny size (2 layers x 64) exists to check the script itself on a CPU.
"""

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from simulation.rules import prefer
from worker.training import (
    BaseModelConfig,
    DPOConfig,
    PPOConfig,
    PreferencePair,
    RewardModelConfig,
    build_base_model,
    fit_reward_model,
    run_dpo,
    run_ppo,
)
from worker.training.checkpoint_io import stored_content_hash
from worker.training.corpus import builtin_prompts, sample_response
from worker.training.lora import ModelRef, load_causal_lm, load_sequence_classifier, merged_model

GPT2_SIZES = {"114m": dict(n_layer=16, n_embd=768, n_head=12), "tiny": dict(n_layer=2, n_embd=64, n_head=2)}
# Qwen2-0.5B's and Qwen2-1.5B's layer shapes, as a Llama.
LLAMA_SIZES = {
    "0.5b": dict(num_hidden_layers=24, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                 num_key_value_heads=2),
    "1.5b": dict(num_hidden_layers=28, hidden_size=1536, intermediate_size=8960, num_attention_heads=12,
                 num_key_value_heads=2),
}
SIZES = sorted(GPT2_SIZES) + sorted(LLAMA_SIZES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--size", choices=SIZES, default="114m")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=0, help="> 0: train LoRA adapters of this rank (peft)")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="tuneloop-device-"))
    try:
        policy = build_policy(work, args.size)
        parameters = sum(p.numel() for p in load_causal_lm(policy).parameters())
        base = ModelRef(policy, stored_content_hash(policy))
        pairs = rule_pairs(args.pairs)
        print(f"{args.size}: {parameters / 1e6:.1f}M parameters on {args.device} in {args.dtype}, "
              f"LoRA rank {args.lora_r or 'off'}; {len(pairs)} pairs", flush=True)
        common = {"device": args.device, "dtype": args.dtype, "lora_r": args.lora_r}
        results = {"size": args.size, "parameters": parameters, **common,
                   "accelerator": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
        results["reward_model"] = measure(
            args.device, "pairs", len(pairs), lambda on: fit_reward_model(
                policy, pairs, RewardModelConfig(epochs=1, batch_size=16, eval_fraction=0.1, **common),
                work / "rm", on_metrics=on), base, work / "rm", load_sequence_classifier)
        results["dpo"] = measure(
            args.device, "pairs", len(pairs), lambda on: run_dpo(
                policy, pairs, DPOConfig(epochs=1, batch_size=16, **common), work / "dpo", on_metrics=on),
            base, work / "dpo", load_causal_lm)
        ppo = PPOConfig(steps=3, rollout_batch_size=16, minibatch_size=8, max_new_tokens=32, **common)
        results["ppo"] = measure(
            args.device, "rollouts", ppo.steps * ppo.rollout_batch_size, lambda on: run_ppo(
                policy, work / "rm", [p.prompt for p in pairs], ppo, work / "ppo", on_metrics=on, base=base),
            base, work / "ppo", load_causal_lm)
        tokens = sum(len(ids) for ids in AutoTokenizer.from_pretrained(policy)(
            [p.prompt + c for p in pairs for c in (p.chosen, p.rejected)])["input_ids"])
        results["dpo"]["mfu"] = mfu(parameters, tokens / results["dpo"]["wall_seconds"], args.device)
        results["generation"] = generation_speeds(work / "dpo", base, [p.prompt for p in pairs[:64]],
                                                  args.device, args.dtype)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


# Dense bf16 peak FLOPs per second, by the name torch reports.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def mfu(parameters: int, tokens_per_second: float, device: str) -> float | None:
    """DPO's model FLOPs utilisation: 6 N a token for the policy's forward and backward, 2 N for the
    reference's forward, over the accelerator's peak (None when its peak is not listed)."""
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    peak = next((flops for key, flops in PEAK_BF16.items() if key in name), None)
    return round(8 * parameters * tokens_per_second / peak, 4) if peak else None


def generation_speeds(checkpoint: Path, base: ModelRef, prompts: list[str], device: str, dtype: str,
                      max_new_tokens: int = 32) -> dict:
    """New tokens per second sampling one response per prompt: each engine (the in-process one
    loads float32, as the pool does), and `model.generate` in the run's dtype."""
    from worker.engines import InProcessEngine, VllmEngine, vllm_usable
    from worker.training.sequences import encode_prompts, pad_left

    def timed(run) -> float:
        started = time.perf_counter()
        count = run()
        return round(count / (time.perf_counter() - started), 1)

    def engine_tokens(engine) -> int:
        results, _ = engine.generate(checkpoint, base, prompts, seed=0, temperature=1.0,
                                     max_new_tokens=max_new_tokens)
        return sum(len(r.token_ids) for r in results)

    speeds = {"in_process": timed(lambda: engine_tokens(InProcessEngine()))}
    model = merged_model(load_causal_lm(checkpoint, base)).to(device, getattr(torch, dtype)).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    input_ids, mask = pad_left(encode_prompts(tokenizer, prompts), tokenizer.pad_token_id)

    def hf_tokens() -> int:
        with torch.no_grad():
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        new = out[:, input_ids.shape[1]:]
        return int((new != tokenizer.pad_token_id).sum())

    speeds["model_generate"] = timed(hf_tokens)
    speeds["vllm"] = timed(lambda: engine_tokens(VllmEngine())) if vllm_usable() else "not installed or no GPU"
    print(f"generation, new tokens per second: {speeds}", flush=True)
    return speeds


def build_policy(work: Path, size: str) -> Path:
    """A randomly initialised GPT-2 or Llama of `size` with the local tokenizer, saved as a HF directory."""
    tokenizer_source = build_base_model(work / "tokenizer", BaseModelConfig(
        n_layer=1, n_head=1, n_embd=16, examples=3000, steps=1, warmup_steps=1))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(0)
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    if size in LLAMA_SIZES:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=256,
                                             tie_word_embeddings=True, **special, **LLAMA_SIZES[size]))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, resid_pdrop=0.0,
                                           embd_pdrop=0.0, attn_pdrop=0.0, **special, **GPT2_SIZES[size]))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(work / "policy")
    tokenizer.save_pretrained(work / "policy")
    return work / "policy"


def rule_pairs(count: int) -> list[PreferencePair]:
    """Corpus responses to built-in prompts, the one the colour rule prefers first."""
    rng = random.Random(0)
    pairs = []
    for prompt in (builtin_prompts(0) * (count // 300 + 1))[:count]:
        a, b = sample_response(prompt.topic, rng), sample_response(prompt.topic, rng)
        answer = prefer("colour", prompt.text, a, b)
        pairs.append(PreferencePair(prompt.text, *((b, a) if answer == "b" else (a, b)), tie=answer == "tie"))
    return pairs


def directory_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file())


def measure(device: str, unit: str, count: int, train, base: ModelRef, out: Path, load) -> dict:
    losses = []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    train(lambda step, metrics: losses.append(metrics.get("loss", metrics.get("policy_loss"))))
    wall = time.perf_counter() - started
    # The first MLP weight of the first layer, before and as published (loaded the way rounds load it).
    before = dict(load_causal_lm(base.path).named_parameters())
    name = next(n for n in before if ".0.mlp." in n and n.endswith("weight"))
    after = dict(merged_model(load(out, base)).named_parameters())
    after_weight = next(value for key, value in after.items() if key.endswith(name.split(".", 1)[1]))
    result = {
        "wall_seconds": round(wall, 2),
        f"{unit}_per_second": round(count / wall, 1),
        "steps": len(losses),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "losses_finite": all(loss is not None and loss == loss and abs(loss) != float("inf") for loss in losses),
        "weights_moved": not torch.equal(before[name], after_weight),
        "saved_dtype": str(after_weight.dtype),
        "adapter": (out / "adapter_config.json").is_file(),
        "checkpoint_mib": round(directory_bytes(out) / 2**20, 2),
        "share_of_base": round(directory_bytes(out) / directory_bytes(base.path), 4),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None,
    }
    print(f"{out.name}: {result}", flush=True)
    return result


if __name__ == "__main__":
    main()

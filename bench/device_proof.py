"""The training core on an accelerator, in bf16, on a ~100M-parameter model: one short run.

For a session that is lent a GPU: the reward model, DPO and PPO each take a few
optimiser steps on a GPT-2 of 16 layers x 768 (114M parameters, built from a
config with the local tokenizer; no hub), with `device` and `dtype` passed
through their configs. Printed and written as JSON: per trainer its wall time,
pairs or rollouts per second, first and last loss, whether the weights moved,
peak accelerator memory, and whether the published checkpoint loads back.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --out $OUT/device-proof.json
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --lora-r 16 --out $OUT/device-proof-lora.json
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.device_proof --device cpu --dtype float32 --size tiny   # a dry run

The tiny size (2 layers x 64) exists to check the script itself on a CPU; the
figures that matter come from `--size 114m` on the device.
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
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, GPT2Config, \
    GPT2LMHeadModel

from worker.rules import prefer
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
from worker.training.corpus import builtin_prompts, sample_response

SIZES = {"114m": dict(n_layer=16, n_embd=768, n_head=12), "tiny": dict(n_layer=2, n_embd=64, n_head=2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--size", choices=sorted(SIZES), default="114m")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=0, help="> 0: train LoRA adapters of this rank (peft)")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="tuneloop-device-"))
    try:
        policy = build_policy(work, SIZES[args.size])
        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(policy).parameters())
        pairs = rule_pairs(args.pairs)
        print(f"{args.size}: {parameters / 1e6:.1f}M parameters on {args.device} in {args.dtype}, "
              f"LoRA rank {args.lora_r or 'off'}; {len(pairs)} pairs", flush=True)
        common = {"device": args.device, "dtype": args.dtype, "lora_r": args.lora_r}
        results = {"size": args.size, "parameters": parameters, **common,
                   "accelerator": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
        results["reward_model"] = measure(
            args.device, "pairs", len(pairs), lambda on: fit_reward_model(
                policy, pairs, RewardModelConfig(epochs=1, batch_size=16, eval_fraction=0.1, **common),
                work / "rm", on_metrics=on), policy, work / "rm", AutoModelForSequenceClassification)
        results["dpo"] = measure(
            args.device, "pairs", len(pairs), lambda on: run_dpo(
                policy, pairs, DPOConfig(epochs=1, batch_size=16, **common), work / "dpo", on_metrics=on),
            policy, work / "dpo", AutoModelForCausalLM)
        ppo = PPOConfig(steps=3, rollout_batch_size=16, minibatch_size=8, max_new_tokens=32, **common)
        results["ppo"] = measure(
            args.device, "rollouts", ppo.steps * ppo.rollout_batch_size, lambda on: run_ppo(
                policy, work / "rm", [p.prompt for p in pairs], ppo, work / "ppo", on_metrics=on),
            policy, work / "ppo", AutoModelForCausalLM)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def build_policy(work: Path, size: dict) -> Path:
    """A randomly initialised GPT-2 of `size` with the local tokenizer, saved as a HF directory."""
    tokenizer_source = build_base_model(work / "tokenizer", BaseModelConfig(
        n_layer=1, n_head=1, n_embd=16, examples=3000, steps=1, warmup_steps=1))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **size))
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


def measure(device: str, unit: str, count: int, train, policy: Path, out: Path, auto_class) -> dict:
    losses = []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    train(lambda step, metrics: losses.append(metrics.get("loss", metrics.get("policy_loss"))))
    wall = time.perf_counter() - started
    before = AutoModelForCausalLM.from_pretrained(policy).transformer.h[0].mlp.c_fc.weight
    after = auto_class.from_pretrained(out).transformer.h[0].mlp.c_fc.weight  # the checkpoint loads back
    result = {
        "wall_seconds": round(wall, 2),
        f"{unit}_per_second": round(count / wall, 1),
        "steps": len(losses),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "losses_finite": all(loss is not None and loss == loss and abs(loss) != float("inf") for loss in losses),
        "weights_moved": not torch.equal(before, after),
        "saved_dtype": str(after.dtype),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None,
    }
    print(f"{out.name}: {result}", flush=True)
    return result


if __name__ == "__main__":
    main()

"""Our training core side by side with Hugging Face TRL, on the same model and data.

Run on demand, not in CI (TRL is a benchmark-only dependency):

    .venv/bin/pip install trl==1.16.0      # check first with --dry-run that torch stays put
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.trainer [--rule colour] [--work var/bench]

Three comparisons, each with the same base model (the default local build),
the same pairs or prompts, batch size, learning rate, schedule and number of
optimiser steps or iterations:

  reward model   fit_reward_model          vs  trl.RewardTrainer
  DPO            run_dpo                   vs  trl.DPOTrainer
  RL             run_ppo (PPO, value head) vs  trl.RLOOTrainer (TRL has no PPO since 1.13)
  RL, to reward  RLOO for as long as the full PPO run took vs run_ppo for the fewest
                 iterations (2, 3, 4, ...) that reach RLOO's reward: time to equal reward

Ties carry no label TRL can use, so both sides get only decided pairs. TRL's
configs default to bf16 and gradient checkpointing even on a CPU; both are
turned off (`--dtype bfloat16` turns bf16 autocast on for both sides: our configs'
`dtype`, TRL's `bf16`). Throughput is measured over the training loop (TRL's
`train_samples_per_second`, our `*_per_second` metric) and over the whole call
(setup, tokenisation, reference log-probs, saving included), in wall-clock
and CPU seconds; each side runs `--repeats` times, alternating which goes
first, and its fastest run counts, so that other jobs on a shared machine
distort the ratio less. Quality is
measured the same way for both: held-out pair accuracy of the reward model,
and the hidden rule's satisfaction rate (and mean reward) of samples from the
trained policy on prompts no step saw.
"""

import argparse
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from trl import DPOConfig as TRLDPOConfig
from trl import DPOTrainer, RewardConfig, RewardTrainer, RLOOConfig, RLOOTrainer

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
from worker.training.reward_model import score_sequences
from worker.training.sequences import PROMPT_SEPARATOR, encode_prompts, encode_responses

PROMPTS = builtin_prompts(seed=0)
TRAIN_PROMPTS = [p.text for p in PROMPTS[:300]]
FRESH_PROMPTS = [p.text for p in PROMPTS[300:]]
BATCH_SIZE = 32
MAX_NEW_TOKENS = 48
RM_EPOCHS, RM_LEARNING_RATE = 2, 3e-4
DPO_EPOCHS, DPO_LEARNING_RATE, DPO_BETA = 2, 1e-4, 0.1
RL_LEARNING_RATE, RL_KL_COEF = 1e-4, 0.05
DTYPE = "float32"  # both sides; --dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="colour")
    parser.add_argument("--work", type=Path, default=Path("var/bench"))
    parser.add_argument("--rl-steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side; the fastest counts")
    # One thread by default: on a shared machine two threads of a tiny model
    # spin-wait on each other and the figures swing 5-15x with other jobs' load.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, both sides")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="precision of both sides (bfloat16: autocast, weights in float32)")
    parser.add_argument("--tasks", nargs="+", choices=["rm", "dpo", "rl"], default=["rm", "dpo", "rl"])
    args = parser.parse_args()
    global DTYPE
    DTYPE = args.dtype
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    runs = args.work / "runs"
    shutil.rmtree(runs, ignore_errors=True)

    base = build_base_model(args.work / "base", BaseModelConfig())
    tokenizer = AutoTokenizer.from_pretrained(base)
    # Four samples per prompt make two pairs; only decided pairs are kept.
    train_pairs = decided_pairs(base, TRAIN_PROMPTS * 2, args.rule, seed=1)
    fresh_pairs = decided_pairs(base, FRESH_PROMPTS * 2, args.rule, seed=11)
    print(f"torch threads {torch.get_num_threads()}, {DTYPE}; base model {base}; {len(train_pairs)} training pairs, {len(fresh_pairs)} held-out pairs, rule {args.rule!r}")
    print(f"base policy: {policy_quality(base, base, args.rule, None)}")
    reward_model = runs / "ours-rm-0"  # what PPO and RLOO both optimise

    comparisons = {
        "rm": lambda: compare(
            "reward model", "pairs", len(train_pairs) * RM_EPOCHS, args.repeats,
            lambda out: ours_reward_model(base, tokenizer, train_pairs, fresh_pairs, runs / f"ours-rm-{out}"),
            lambda out: trl_reward_model(base, tokenizer, train_pairs, fresh_pairs, runs / f"trl-rm-{out}"),
        ),
        "dpo": lambda: compare(
            "DPO", "pairs", len(train_pairs) * DPO_EPOCHS, args.repeats,
            lambda out: ours_dpo(base, train_pairs, args.rule, runs / f"ours-dpo-{out}"),
            lambda out: trl_dpo(base, tokenizer, train_pairs, args.rule, runs / f"trl-dpo-{out}"),
        ),
        "rl": lambda: compare(
            "RL (PPO/RLOO)", "rollouts", args.rl_steps * BATCH_SIZE, args.repeats,
            lambda out: ours_ppo(base, reward_model, args.rule, args.rl_steps, runs / f"ours-ppo-{out}"),
            lambda out: trl_rloo(base, tokenizer, reward_model, args.rule, args.rl_steps, runs / f"trl-rloo-{out}"),
        ),
    }
    if "rl" in args.tasks and "rm" not in args.tasks:
        ours_reward_model(base, tokenizer, train_pairs, fresh_pairs, reward_model)  # what RL optimises
    # In this order whatever --tasks says: RL optimises the reward model the first task wrote.
    by_task = {task: comparisons[task]() for task in comparisons if task in args.tasks}
    results = list(by_task.values())
    if "rl" in by_task:
        results.append(rl_time_to_reward(base, tokenizer, reward_model, args.rule, args.rl_steps, by_task["rl"], runs))

    print()
    print(f"{'task':<15}{'metric':<32}{'ours':>10}{'TRL':>10}{'ours/TRL':>10}")
    for result in results:
        for metric, (ours, theirs) in result["figures"].items():
            ratio = ours / theirs if theirs else float("nan")
            print(f"{result['task']:<15}{metric:<32}{ours:>10.3f}{theirs:>10.3f}{ratio:>10.2f}")
        low, high = result["load_average"]
        print(f"{result['task']:<15}{'1-min load average, min/max':<32}{low:>10.2f}{high:>10.2f}")
    (args.work / f"trainer-{DTYPE}.json").write_text(json.dumps(results, indent=2))


def decided_pairs(base: Path, prompts: list[str], rule: str, seed: int) -> list[PreferencePair]:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    first = generate_responses(model, tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=100, seed=seed)
    second = generate_responses(model, tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=100, seed=seed + 1)
    rng = random.Random(seed)
    pairs = []
    for a, b in zip(first, second):
        answer = prefer(rule, a.prompt, a.text, b.text, rng=rng)
        if answer != "tie":
            chosen, rejected = (a.text, b.text) if answer == "a" else (b.text, a.text)
            pairs.append(PreferencePair(a.prompt, chosen, rejected))
    return pairs


def trl_prompt(tokenizer, prompt: str) -> str:
    """Our prompt layout ([BOS] prompt "\\n") as text TRL tokenizes to the same ids."""
    return f"{tokenizer.bos_token}{prompt}{PROMPT_SEPARATOR}"


def pairs_dataset(tokenizer, pairs: list[PreferencePair]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {
            "prompt": [trl_prompt(tokenizer, p.prompt) for p in pairs],
            "chosen": [p.chosen for p in pairs],
            "rejected": [p.rejected for p in pairs],
        }
    )


def common_trl_args(output_dir: Path) -> dict:
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": BATCH_SIZE,
        "bf16": DTYPE == "bfloat16",
        "gradient_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": 0,
        "use_cpu": not torch.cuda.is_available(),
        "dataloader_num_workers": 0,
    }


@torch.no_grad()
def pair_accuracy(model, tokenizer, pairs: list[PreferencePair]) -> float:
    """Share of pairs where the chosen response scores higher, read at the last token for both trainers."""
    model.eval()
    correct = 0
    for start in range(0, len(pairs), 64):
        batch = pairs[start : start + 64]
        prompts = encode_prompts(tokenizer, [p.prompt for p in batch])
        sequences = [p + r for p, r in zip(prompts * 2, encode_responses(
            tokenizer, [p.chosen for p in batch] + [p.rejected for p in batch]))]
        rewards = score_sequences(model, sequences, tokenizer.pad_token_id, model.device)
        correct += (rewards[: len(batch)] > rewards[len(batch) :]).sum().item()
    return correct / len(pairs)


def policy_quality(policy_dir: Path, base: Path, rule: str, scorer: RewardScorer | None) -> dict[str, float]:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(policy_dir), AutoTokenizer.from_pretrained(base)
    samples = generate_responses(
        model, tokenizer, FRESH_PROMPTS * 2, max_new_tokens=MAX_NEW_TOKENS, batch_size=84, seed=7
    )
    quality = {"satisfaction": sum(satisfaction(rule, s.prompt, s.text) for s in samples) / len(samples)}
    if scorer is not None:
        quality["reward"] = scorer.score([s.prompt for s in samples], [s.text for s in samples]).mean().item()
    return quality


class Stopwatch:
    """Wall-clock and CPU seconds of a block. CPU seconds are the fairer figure
    when other jobs share the machine; wall-clock is what a user waits."""

    def __enter__(self) -> "Stopwatch":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


@dataclass
class Run:
    """One training call by one side: its cost, its own loop throughput, and the result's quality."""

    time: Stopwatch
    loop_per_second: float | None
    quality: dict[str, float]


def compare(task: str, unit: str, count: int, repeats: int, ours, theirs) -> dict:
    """Run both sides `repeats` times, alternating which goes first so that a
    change in machine load hits both; the fastest run of each side counts.
    Quality comes from the last run (every run uses the same seeds)."""
    ours_runs, trl_runs, loads = [], [], []
    for repeat in range(repeats):
        order = [(ours, ours_runs), (theirs, trl_runs)]
        for side, collected in order if repeat % 2 == 0 else reversed(order):
            loads.append(os.getloadavg()[0])
            collected.append(side(repeat))
    best_ours = min(ours_runs, key=lambda run: run.time.wall)
    best_trl = min(trl_runs, key=lambda run: run.time.wall)
    figures = {}
    if best_ours.loop_per_second is not None:
        figures[f"{unit}/s, training loop"] = (best_ours.loop_per_second, best_trl.loop_per_second)
    figures[f"{unit}/s, whole call"] = (count / best_ours.time.wall, count / best_trl.time.wall)
    figures[f"{unit}/CPU-s, whole call"] = (count / best_ours.time.cpu, count / best_trl.time.cpu)
    for metric, value in ours_runs[-1].quality.items():
        figures[metric] = (value, trl_runs[-1].quality[metric])
    return {"task": task, "figures": figures, "load_average": (min(loads), max(loads)),
            "wall": (best_ours.time.wall, best_trl.time.wall)}


def rl_time_to_reward(base, tokenizer, reward_model: Path, rule: str, steps: int, rl: dict, runs: Path) -> dict:
    """Time to equal reward. PPO and RLOO do different work per iteration, so rollouts/s
    alone says little: RLOO gets as many iterations as fit in the wall time our PPO took
    for `steps`, then our PPO runs with 2, 3, 4, ... iterations until its policy's mean
    reward on unseen prompts is at least RLOO's; the two wall times are compared."""
    ppo_wall, rloo_wall = rl["wall"]
    rloo_steps = max(steps, round(steps * ppo_wall / rloo_wall))
    load = os.getloadavg()[0]
    rloo = trl_rloo(base, tokenizer, reward_model, rule, rloo_steps, runs / "trl-rloo-equal-time")
    for ppo_steps in sorted({2, 3, 4, 6, 8, steps}):
        ours = ours_ppo(base, reward_model, rule, ppo_steps, runs / f"ours-ppo-{ppo_steps}-steps")
        print(f"PPO {ppo_steps} iterations: {ours.time.wall:.1f} s, {ours.quality}; "
              f"RLOO {rloo_steps}: {rloo.time.wall:.1f} s, {rloo.quality}", flush=True)
        if ours.quality["reward"] >= rloo.quality["reward"]:
            break
    figures = {"iterations": (float(ppo_steps), float(rloo_steps)),
               "wall seconds, whole call": (ours.time.wall, rloo.time.wall)}
    figures |= {metric: (ours.quality[metric], rloo.quality[metric]) for metric in ours.quality}
    return {"task": "RL, to reward", "figures": figures, "load_average": (load, os.getloadavg()[0])}


def ours_reward_model(base, tokenizer, pairs, fresh_pairs, out_dir: Path) -> Run:
    config = RewardModelConfig(epochs=RM_EPOCHS, batch_size=BATCH_SIZE, learning_rate=RM_LEARNING_RATE, eval_fraction=0.0,
                               dtype=DTYPE)
    with Stopwatch() as clock:
        result = fit_reward_model(base, pairs, config, out_dir)
    model = AutoModelForSequenceClassification.from_pretrained(out_dir)
    return Run(clock, result.metrics["pairs_per_second"], {"held-out pair accuracy": pair_accuracy(model, tokenizer, fresh_pairs)})


def trl_reward_model(base, tokenizer, pairs, fresh_pairs, out_dir: Path) -> Run:
    with Stopwatch() as clock:
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, pad_token_id=tokenizer.pad_token_id
        )
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(
                **common_trl_args(out_dir), num_train_epochs=RM_EPOCHS, learning_rate=RM_LEARNING_RATE,
                lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.01, max_length=256,
            ),
            train_dataset=pairs_dataset(tokenizer, pairs),
            processing_class=tokenizer,
        )
        metrics = trainer.train().metrics
        trainer.save_model(str(out_dir))
    accuracy = pair_accuracy(trainer.model, tokenizer, fresh_pairs)
    return Run(clock, metrics["train_samples_per_second"], {"held-out pair accuracy": accuracy})


def ours_dpo(base, pairs, rule: str, out_dir: Path) -> Run:
    config = DPOConfig(epochs=DPO_EPOCHS, batch_size=BATCH_SIZE, learning_rate=DPO_LEARNING_RATE, beta=DPO_BETA,
                       dtype=DTYPE)
    with Stopwatch() as clock:
        result = run_dpo(base, pairs, config, out_dir)
    quality = {"last-batch reward accuracy": result.metrics["reward_accuracy"], **policy_quality(out_dir, base, rule, None)}
    return Run(clock, result.metrics["pairs_per_second"], quality)


def trl_dpo(base, tokenizer, pairs, rule: str, out_dir: Path) -> Run:
    with Stopwatch() as clock:
        # A path, not a model object: TRL loads its reference from the same directory.
        trainer = DPOTrainer(
            model=str(base),
            args=TRLDPOConfig(
                **common_trl_args(out_dir), num_train_epochs=DPO_EPOCHS, learning_rate=DPO_LEARNING_RATE,
                beta=DPO_BETA, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_length=256,
                precompute_ref_log_probs=True,
            ),
            train_dataset=pairs_dataset(tokenizer, pairs),
            processing_class=tokenizer,
        )
        metrics = trainer.train().metrics
        trainer.save_model(str(out_dir))
    accuracy = [log["rewards/accuracies"] for log in trainer.state.log_history if "rewards/accuracies" in log][-1]
    quality = {"last-batch reward accuracy": accuracy, **policy_quality(out_dir, base, rule, None)}
    return Run(clock, metrics["train_samples_per_second"], quality)


def ours_ppo(base, reward_model: Path, rule: str, steps: int, out_dir: Path) -> Run:
    config = PPOConfig(steps=steps, rollout_batch_size=BATCH_SIZE, max_new_tokens=MAX_NEW_TOKENS,
                       learning_rate=RL_LEARNING_RATE, kl_coef=RL_KL_COEF, dtype=DTYPE)
    with Stopwatch() as clock:
        run_ppo(base, reward_model, TRAIN_PROMPTS, config, out_dir)
    return Run(clock, None, policy_quality(out_dir, base, rule, RewardScorer(reward_model)))


def trl_rloo(base, tokenizer, reward_model: Path, rule: str, steps: int, out_dir: Path) -> Run:
    scorer = RewardScorer(reward_model)
    raw_prompt = {trl_prompt(tokenizer, p): p for p in TRAIN_PROMPTS}

    def reward_model_score(prompts: list[str], completions: list[str], **_) -> list[float]:
        """The same normalised reward our PPO optimises."""
        return scorer.score([raw_prompt[p] for p in prompts], completions).tolist()

    with Stopwatch() as clock:
        trainer = RLOOTrainer(
            model=str(base),
            reward_funcs=reward_model_score,
            args=RLOOConfig(
                **common_trl_args(out_dir), max_steps=steps, learning_rate=RL_LEARNING_RATE, beta=RL_KL_COEF,
                num_generations=4, max_completion_length=MAX_NEW_TOKENS, temperature=1.0, top_k=0, top_p=1.0,
                lr_scheduler_type="constant", warmup_steps=0,
            ),
            train_dataset=datasets.Dataset.from_dict({"prompt": list(raw_prompt)}),
            processing_class=tokenizer,
        )
        trainer.train()
        trainer.save_model(str(out_dir))
    return Run(clock, None, policy_quality(out_dir, base, rule, scorer))


if __name__ == "__main__":
    main()

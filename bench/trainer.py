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

Ties carry no label TRL can use, so both sides get only decided pairs. TRL's
configs default to bf16 and gradient checkpointing even on a CPU; both are
turned off. Throughput is measured over the training loop (TRL's
`train_samples_per_second`, our `*_per_second` metric) and over the whole call
(setup, tokenisation, reference log-probs, saving included). Quality is
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
from pathlib import Path

import datasets
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from trl import DPOConfig as TRLDPOConfig
from trl import DPOTrainer, RewardConfig, RewardTrainer, RLOOConfig, RLOOTrainer

from worker.rules import prefer, satisfaction
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
from worker.training.sequences import PROMPT_SEPARATOR, encode_prompt, encode_response

PROMPTS = builtin_prompts(seed=0)
TRAIN_PROMPTS = [p.text for p in PROMPTS[:300]]
FRESH_PROMPTS = [p.text for p in PROMPTS[300:]]
BATCH_SIZE = 32
MAX_NEW_TOKENS = 48


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="colour")
    parser.add_argument("--work", type=Path, default=Path("var/bench"))
    parser.add_argument("--rl-steps", type=int, default=12)
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    runs = args.work / "runs"
    shutil.rmtree(runs, ignore_errors=True)

    base = build_base_model(args.work / "base", BaseModelConfig())
    tokenizer = AutoTokenizer.from_pretrained(base)
    # Four samples per prompt make two pairs; only decided pairs are kept.
    train_pairs = decided_pairs(base, TRAIN_PROMPTS * 2, args.rule, seed=1)
    fresh_pairs = decided_pairs(base, FRESH_PROMPTS * 2, args.rule, seed=11)
    print(f"base model {base}; {len(train_pairs)} training pairs, {len(fresh_pairs)} held-out pairs, rule {args.rule!r}")
    print(f"base policy: {policy_quality(base, base, args.rule, None)}")

    results = []
    for compare in (
        lambda: compare_reward_models(base, tokenizer, train_pairs, fresh_pairs, runs),
        lambda: compare_dpo(base, tokenizer, train_pairs, args.rule, runs),
        lambda: compare_rl(base, tokenizer, runs / "ours-rm", args.rule, args.rl_steps, runs),
    ):
        # Other jobs on the machine skew both sides; the load average says how much.
        load_before = os.getloadavg()[0]
        result = compare()
        result["load_average"] = (load_before, os.getloadavg()[0])
        results.append(result)

    print()
    print(f"{'task':<15}{'metric':<30}{'ours':>10}{'TRL':>10}{'ours/TRL':>10}")
    for result in results:
        for metric, (ours, theirs) in result["figures"].items():
            ratio = ours / theirs if theirs else float("nan")
            print(f"{result['task']:<15}{metric:<30}{ours:>10.3f}{theirs:>10.3f}{ratio:>10.2f}")
        print(f"{result['task']:<15}{'1-min load average, start/end':<30}{result['load_average'][0]:>10.2f}"
              f"{result['load_average'][1]:>10.2f}")
    (args.work / "trainer.json").write_text(json.dumps(results, indent=2))


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
        "bf16": False,
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
        sequences = [encode_prompt(tokenizer, p.prompt) + encode_response(tokenizer, p.chosen) for p in batch]
        sequences += [encode_prompt(tokenizer, p.prompt) + encode_response(tokenizer, p.rejected) for p in batch]
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


def throughput(unit: str, count: int, ours: Stopwatch, theirs: Stopwatch) -> dict[str, tuple[float, float]]:
    return {
        f"{unit}/s, whole call": (count / ours.wall, count / theirs.wall),
        f"{unit}/CPU-s, whole call": (count / ours.cpu, count / theirs.cpu),
    }


def compare_reward_models(base, tokenizer, pairs, fresh_pairs, runs: Path) -> dict:
    epochs, learning_rate = 2, 3e-4
    with Stopwatch() as ours_time:
        ours = fit_reward_model(
            base, pairs, [],
            RewardModelConfig(epochs=epochs, batch_size=BATCH_SIZE, learning_rate=learning_rate, eval_fraction=0.0),
            runs / "ours-rm",
        )
    ours_accuracy = pair_accuracy(AutoModelForSequenceClassification.from_pretrained(ours.out_dir), tokenizer, fresh_pairs)

    with Stopwatch() as trl_time:
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, pad_token_id=tokenizer.pad_token_id
        )
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(
                **common_trl_args(runs / "trl-rm"), num_train_epochs=epochs, learning_rate=learning_rate,
                lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.01, max_length=256,
            ),
            train_dataset=pairs_dataset(tokenizer, pairs),
            processing_class=tokenizer,
        )
        trl_metrics = trainer.train().metrics
        trainer.save_model(str(runs / "trl-rm"))
    trl_accuracy = pair_accuracy(trainer.model, tokenizer, fresh_pairs)

    return {
        "task": "reward model",
        "figures": {
            "pairs/s, training loop": (ours.metrics["pairs_per_second"], trl_metrics["train_samples_per_second"]),
            **throughput("pairs", len(pairs) * epochs, ours_time, trl_time),
            "held-out pair accuracy": (ours_accuracy, trl_accuracy),
        },
    }


def compare_dpo(base, tokenizer, pairs, rule: str, runs: Path) -> dict:
    epochs, learning_rate, beta = 2, 1e-4, 0.1
    with Stopwatch() as ours_time:
        ours = run_dpo(
            base, pairs, DPOConfig(epochs=epochs, batch_size=BATCH_SIZE, learning_rate=learning_rate, beta=beta),
            runs / "ours-dpo",
        )
    ours_quality = policy_quality(ours.out_dir, base, rule, None)

    with Stopwatch() as trl_time:
        # A path, not a model object: TRL loads its reference from the same directory.
        trainer = DPOTrainer(
            model=str(base),
            args=TRLDPOConfig(
                **common_trl_args(runs / "trl-dpo"), num_train_epochs=epochs, learning_rate=learning_rate,
                beta=beta, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_length=256,
                precompute_ref_log_probs=True,
            ),
            train_dataset=pairs_dataset(tokenizer, pairs),
            processing_class=tokenizer,
        )
        trl_metrics = trainer.train().metrics
        trainer.save_model(str(runs / "trl-dpo"))
    trl_quality = policy_quality(runs / "trl-dpo", base, rule, None)
    trl_accuracy = [log["rewards/accuracies"] for log in trainer.state.log_history if "rewards/accuracies" in log]

    return {
        "task": "DPO",
        "figures": {
            "pairs/s, training loop": (ours.metrics["pairs_per_second"], trl_metrics["train_samples_per_second"]),
            **throughput("pairs", len(pairs) * epochs, ours_time, trl_time),
            "last-batch reward accuracy": (ours.metrics["reward_accuracy"], trl_accuracy[-1]),
            "rule satisfaction": (ours_quality["satisfaction"], trl_quality["satisfaction"]),
        },
    }


def compare_rl(base, tokenizer, reward_model: Path, rule: str, steps: int, runs: Path) -> dict:
    learning_rate, kl_coef = 1e-4, 0.05
    scorer = RewardScorer(reward_model)
    with Stopwatch() as ours_time:
        ours = run_ppo(
            base, reward_model, TRAIN_PROMPTS,
            PPOConfig(steps=steps, rollout_batch_size=BATCH_SIZE, max_new_tokens=MAX_NEW_TOKENS,
                      learning_rate=learning_rate, kl_coef=kl_coef),
            runs / "ours-ppo",
        )
    ours_quality = policy_quality(ours.out_dir, base, rule, scorer)

    raw_prompt = {trl_prompt(tokenizer, p): p for p in TRAIN_PROMPTS}

    def reward_model_score(prompts: list[str], completions: list[str], **_) -> list[float]:
        """The same normalised reward our PPO optimises."""
        return scorer.score([raw_prompt[p] for p in prompts], completions).tolist()

    with Stopwatch() as trl_time:
        trainer = RLOOTrainer(
            model=str(base),
            reward_funcs=reward_model_score,
            args=RLOOConfig(
                **common_trl_args(runs / "trl-rloo"), max_steps=steps, learning_rate=learning_rate, beta=kl_coef,
                num_generations=4, max_completion_length=MAX_NEW_TOKENS, temperature=1.0, top_k=0, top_p=1.0,
                lr_scheduler_type="constant", warmup_steps=0,
            ),
            train_dataset=datasets.Dataset.from_dict({"prompt": list(raw_prompt)}),
            processing_class=tokenizer,
        )
        trainer.train()
        trainer.save_model(str(runs / "trl-rloo"))
    trl_quality = policy_quality(runs / "trl-rloo", base, rule, scorer)

    return {
        "task": "RL (PPO/RLOO)",
        "figures": {
            **throughput("rollouts", steps * BATCH_SIZE, ours_time, trl_time),
            "reward on fresh prompts": (ours_quality["reward"], trl_quality["reward"]),
            "rule satisfaction": (ours_quality["satisfaction"], trl_quality["satisfaction"]),
        },
    }


if __name__ == "__main__":
    main()

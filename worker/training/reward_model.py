"""Fit a reward model to human preferences (Bradley–Terry), as in InstructGPT.

The reward model is the policy's own network with a scalar head read at the
last real token of `prompt + response + EOS` (right padding). Comparisons
(PreferencePair) train it directly; ties pull two rewards together. A seeded
share is held out: its accuracy over decisive pairs and how many there were
(eval_accuracy, eval_decisive) let a caller refuse a reward model at chance
before any policy step. Rewards are normalised to mean 0 and std 1 over the
responses it was trained on; the mean and std are stored in the checkpoint's
metadata so PPO sees normalised rewards.
"""

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import TaskType
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from worker.training.checkpoint_io import read_metadata
from worker.training.data import PreferencePair, TrainingCancelled, TrainResult, UnaryExample, steps_per_epoch
from worker.training.devices import autocast_for, pick_device, prepare_for_training
from worker.training.distributed import Ranks, current_ranks
from worker.training.kernels import adamw, use_fused_activations
from worker.training.lora import (
    ModelRef,
    add_lora,
    full_model_dir,
    load_sequence_classifier,
    unwrap_model,
    write_trained,
)
from worker.training.losses import bradley_terry_loss, weighted_mean
from worker.training.packing import (
    encode_pairs,
    pack_pairs,
    packed_last_hidden,
    supports_packing,
    unpadded_call,
)
from worker.training.sequences import (
    Prompt,
    encode_prompts,
    encode_responses,
    ensure_pad_token,
    last_token_index,
    pad_right,
)

ALGORITHM = "reward_model"


@dataclass
class RewardModelConfig:
    seed: int = 0
    # InstructGPT trains its reward model for a single epoch because it
    # overfits after that; small rating sets here need a few passes.
    epochs: int = 2
    batch_size: int = 32  # pairs per optimiser step
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    max_length: int = 256  # tokens of prompt + response
    eval_fraction: float = 0.1  # pairs held out to report accuracy
    lora_r: int = 0  # 0 trains every weight; > 0 trains LoRA adapters of this rank
    lora_alpha: int = 16
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (devices.py)
    sharded: bool = False  # on several processes, FSDP instead of DDP (worker.training.distributed)
    device: str = "auto"
    dtype: str = "float32"

    def steps_per_epoch(self, comparisons: int) -> int:
        return steps_per_epoch(comparisons, self.eval_fraction, self.batch_size)


def fit_reward_model(
    policy_dir: Path,
    comparisons: list[PreferencePair],
    config: RewardModelConfig,
    out_dir: Path,
    on_metrics: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    base: ModelRef | None = None,
    unary: list[UnaryExample] = (),
) -> TrainResult:
    """A reward model on the full model under `policy_dir` (`base`, required when the policy is an
    adapter checkpoint), with the policy's tokenizer; with LoRA it is saved as an adapter and its head.

    `unary`: thumbs up and down. Each step also takes the next batch of them (in turn, as often
    as the steps need) and adds a logistic loss that reads the reward as the log-odds of a thumb
    up; with no comparisons at all an epoch is one pass over them."""
    # Setup.
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    ranks = current_ranks(config.sharded)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    ensure_pad_token(tokenizer)
    model = use_fused_activations(AutoModelForSequenceClassification.from_pretrained(
        full_model_dir(policy_dir, base), num_labels=1, pad_token_id=tokenizer.pad_token_id
    ))
    if config.lora_r > 0:
        model = add_lora(model, config.lora_r, config.lora_alpha, TaskType.SEQ_CLS)
    model = ranks.place(prepare_for_training(model, config.gradient_checkpointing), device)
    train_pass = ranks.data_parallel(model)
    optimizer = adamw(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )

    # Data: the comparisons, split once by seed.
    comparisons, thumbs = list(comparisons), [(u.as_pair(), u.good) for u in unary]
    if not comparisons and not thumbs:
        raise ValueError("no comparisons or thumbs to fit a reward model to")
    random.Random(config.seed).shuffle(comparisons)
    random.Random(config.seed).shuffle(thumbs)
    thumbed = [pair for pair, _ in thumbs]
    n_eval = int(len(comparisons) * config.eval_fraction)
    eval_set, train_set = comparisons[:n_eval], comparisons[n_eval:]
    # Thumbs are held out in the same share: with no comparisons they are all the gate can read.
    n_eval_thumbs = int(len(thumbs) * config.eval_fraction)
    eval_thumbs, thumbs = thumbs[:n_eval_thumbs], thumbs[n_eval_thumbs:]
    epoch_steps = config.steps_per_epoch(len(comparisons)) or math.ceil(len(thumbs) / config.batch_size)
    total_steps = epoch_steps * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total_steps)

    # Token ids of every comparison, once.
    triples = dict(zip(comparisons + thumbed, encode_pairs(tokenizer, comparisons + thumbed, config.max_length)))
    packing = supports_packing(model)

    def rewards_of(batch: list[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Chosen and rejected rewards (B,), (B,) from one forward pass."""
        rows = [triples[c] for c in batch]
        if packing:  # each prompt once, pairs packed into rows (see worker.training.packing)
            inner = unwrap_model(model)
            chosen, rejected = packed_last_hidden(inner.base_model, pack_pairs(rows, tokenizer.pad_token_id), device)
            return inner.score(chosen).squeeze(-1), inner.score(rejected).squeeze(-1)
        sequences = [p + c for p, c, _ in rows] + [p + r for p, _, r in rows]
        rewards = score_sequences(model, sequences, tokenizer.pad_token_id, device)  # (2B,)
        return rewards[: len(batch)], rewards[len(batch) :]

    def score_thumbs(thumbed: list[PreferencePair]) -> torch.Tensor:
        """The reward (U,) of each thumbed response, scored once (not as a pair with itself)."""
        with autocast_for(device, config.dtype):
            return score_sequences(model, [p + c for p, c, _ in (triples[pair] for pair in thumbed)],
                                   tokenizer.pad_token_id, device)

    def step_rewards(batch: list[PreferencePair], thumbed_batch: list[PreferencePair]):
        """What a step trains on, from one forward pass: chosen and rejected rewards (B,), (B,) of
        its comparisons, and (U,) of its thumbed responses."""
        with autocast_for(device, config.dtype):
            compared = rewards_of(batch) if batch else None
        return compared, score_thumbs(thumbed_batch) if thumbed_batch else None

    # Loop: every rank draws the same batches and trains on its part of each (worker.training.distributed).
    order = random.Random(config.seed + 1)
    step, started, metrics = 0, time.perf_counter(), {}
    training_mode = model.training
    next_thumb = 0
    for epoch in range(config.epochs):
        order.shuffle(train_set)
        for start in range(0, epoch_steps * config.batch_size, config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"reward model cancelled at step {step}")
            batch = train_set[start : start + config.batch_size]
            thumb_batch = [thumbs[(next_thumb + i) % len(thumbs)] for i in range(min(config.batch_size, len(thumbs)))]
            next_thumb = (next_thumb + len(thumb_batch)) % max(len(thumbs), 1)
            pairs, rows = ranks.shard(batch), ranks.shard(thumb_batch)
            compared, judged = train_pass(lambda: step_rewards(pairs.rows, [pair for pair, _ in rows.rows]))
            loss, metrics = torch.zeros((), device=device), {}
            if batch:
                chosen, rejected = (side.float() for side in compared)
                tie = torch.tensor([c.tie for c in pairs.rows], device=device)
                weights = torch.tensor([c.weight for c in pairs.rows], device=device)
                loss = bradley_terry_loss(chosen, rejected, tie, weights) * ranks.share(
                    pairs, sum(c.weight for c in pairs.rows), sum(c.weight for c in batch))
                chosen, rejected, tie, weights = ranks.gather(
                    torch.stack([chosen, rejected, tie.float(), weights], 1), pairs).detach().unbind(1)
                metrics = {"loss": bradley_terry_loss(chosen, rejected, tie.bool(), weights).item(),
                           **_accuracy_and_margin(chosen, rejected, tie.bool())}
            if thumb_batch:
                reward = judged.float()
                up = torch.tensor([good for _, good in rows.rows], device=device, dtype=reward.dtype)
                weights = torch.tensor([pair.weight for pair, _ in rows.rows], device=device)
                thumb_loss = weighted_mean(F.binary_cross_entropy_with_logits(reward, up, reduction="none"), weights)
                loss = loss + thumb_loss * ranks.share(
                    rows, sum(pair.weight for pair, _ in rows.rows), sum(pair.weight for pair, _ in thumb_batch))
                reward, up, weights = ranks.gather(torch.stack([reward, up, weights], 1), rows).detach().unbind(1)
                thumb_loss = weighted_mean(F.binary_cross_entropy_with_logits(reward, up, reduction="none"),
                                           weights).item()
                metrics |= {"loss": metrics.get("loss", 0.0) + thumb_loss, "thumb_loss": thumb_loss,
                            "thumb_accuracy": ((reward > 0).float() == up).float().mean().item()}
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            metrics |= {
                "epoch": float(epoch),
                "pairs_per_second": step * config.batch_size / (time.perf_counter() - started),
            }
            if step % epoch_steps == 0 and (eval_set or eval_thumbs) and ranks.measures:
                model.eval()
                if eval_set:
                    metrics.update(_evaluate(eval_set, rewards_of, config.batch_size))
                if eval_thumbs:
                    metrics.update(_evaluate_thumbs(eval_thumbs, score_thumbs, config.batch_size))
                model.train(training_mode)
            if on_metrics is not None:
                on_metrics(step, metrics)
    if not ranks.measures:  # rank 0 measures and saves the whole weights every rank holds
        return TrainResult(None, metrics)

    # Normalisation over the responses it was trained on, each once: two responses
    # to the same prompt share a row (an odd one out is paired with itself).
    model.eval()
    by_prompt: dict[str, list[str]] = defaultdict(list)
    for prompt, response in sorted({(c.prompt, r) for c in comparisons + thumbed for r in (c.chosen, c.rejected)}):
        by_prompt[prompt].append(response)
    couples = [PreferencePair(prompt, responses[i], responses[min(i + 1, len(responses) - 1)])
               for prompt, responses in by_prompt.items() for i in range(0, len(responses), 2)]
    triples.update(zip(couples, encode_pairs(tokenizer, couples, config.max_length)))
    with torch.no_grad():
        first, second = (torch.cat(side) for side in zip(
            *(rewards_of(couples[i : i + 64]) for i in range(0, len(couples), 64))))
    own = torch.tensor([c.chosen != c.rejected for c in couples], device=first.device)
    reference_rewards = torch.cat([first, second[own]])
    normalisation = {"mean": reference_rewards.mean().item(), "std": reference_rewards.std().clamp(min=1e-6).item()}

    # Checkpoint.
    summary = {
        **{k: v for k, v in metrics.items() if k != "epoch"},
        "steps": float(step),
        "train_pairs": float(len(train_set)),
        "eval_pairs": float(len(eval_set)),
        "eval_decisive": float(sum(not c.tie for c in eval_set)),
        "ties": float(sum(c.tie for c in comparisons)),
        "thumbs": float(len(thumbs)),
        "eval_thumbs": float(len(eval_thumbs)),
        # Always answering the commoner thumb scores this: what a thumb-only reward model must beat.
        "eval_thumb_majority": (max(sum(g for _, g in eval_thumbs), sum(not g for _, g in eval_thumbs))
                                / len(eval_thumbs) if eval_thumbs else 0.0),
        "reward_mean": normalisation["mean"],
        "reward_std": normalisation["std"],
    }
    weights = ranks.whole_state_dict(model)
    if not ranks.main:  # rank 0 saves
        return TrainResult(None, summary)
    write_trained(out_dir, model, tokenizer, algorithm=ALGORITHM, config=asdict(config), metrics=summary,
                  parent=policy_dir, base=base, extra_metadata={"reward_normalisation": normalisation},
                  state_dict=weights)
    return TrainResult(Path(out_dir), summary)


def score_sequences(
    model: PreTrainedModel, sequences: list[list[int]], pad_id: int, device: torch.device
) -> torch.Tensor:
    """Unnormalised reward (N,) of each token sequence: the head at its last real token."""
    input_ids, attention_mask = pad_right(sequences, pad_id)  # (N, T)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    scores = token_scores(model, input_ids, attention_mask)  # (N, T)
    return scores.gather(1, last_token_index(attention_mask)[:, None]).squeeze(1)


def token_scores(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The scalar head applied at every position: (B, T) → (B, T).

    The reward model reads it at the last token; PPO's value model, which
    starts as a copy of the reward model, reads it at every response token.
    We index the last token from the attention mask ourselves rather than by
    comparing ids with the pad id, which fails when pad equals EOS.
    """
    inner = unwrap_model(model)
    hidden = unpadded_call(
        inner, lambda ids, mask, positions: inner.base_model(
            input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state,
        input_ids, attention_mask)  # (B, T, H)
    return inner.score(hidden).squeeze(-1)


class RewardScorer:
    """A saved reward model that scores text, normalised to mean 0 / std 1; held as `ranks`
    hold models (sharded under FSDP: every rank then scores the same texts in lockstep)."""

    def __init__(self, directory: Path, device: str = "auto", base: ModelRef | None = None, ranks: Ranks = Ranks()):
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        ensure_pad_token(self.tokenizer)
        self.model = ranks.place(use_fused_activations(load_sequence_classifier(directory, base)).eval(), self.device)
        normalisation = read_metadata(directory).get("reward_normalisation", {"mean": 0.0, "std": 1.0})
        self.mean, self.std = normalisation["mean"], normalisation["std"]

    @torch.no_grad()
    def score(self, prompts: list[Prompt], responses: list[str], batch_size: int = 64) -> torch.Tensor:
        """Normalised rewards (N,) of texts, on the CPU."""
        return self.score_ids([p + r for p, r in zip(encode_prompts(self.tokenizer, prompts),
                                                      encode_responses(self.tokenizer, responses))], batch_size)

    @torch.no_grad()
    def score_ids(self, sequences: list[list[int]], batch_size: int = 64) -> torch.Tensor:
        """Normalised rewards (N,) of prompt + response token ids (as sampled), on the CPU."""
        rewards = [
            score_sequences(self.model, sequences[i : i + batch_size], self.tokenizer.pad_token_id, self.device)
            for i in range(0, len(sequences), batch_size)
        ]
        return ((torch.cat(rewards).float() - self.mean) / self.std).cpu()


@torch.no_grad()
def _evaluate(
    eval_set: list[PreferencePair],
    rewards_of: Callable[[list[PreferencePair]], tuple[torch.Tensor, torch.Tensor]],
    batch_size: int,
) -> dict[str, float]:
    """Held-out loss, and accuracy on the pairs that are not ties."""
    chosen, rejected = zip(*(rewards_of(eval_set[i : i + batch_size]) for i in range(0, len(eval_set), batch_size)))
    chosen, rejected = torch.cat(chosen).float(), torch.cat(rejected).float()
    tie = torch.tensor([c.tie for c in eval_set], device=chosen.device)
    scores = _accuracy_and_margin(chosen, rejected, tie)
    return {"eval_loss": bradley_terry_loss(chosen, rejected, tie).item(),
            **{f"eval_{k}": v for k, v in scores.items()}}


def _evaluate_thumbs(eval_thumbs: list[tuple[PreferencePair, bool]],
                    score_thumbs: Callable[[list[PreferencePair]], torch.Tensor],
                    batch_size: int) -> dict[str, float]:
    """Held-out thumbs: how often the reward's sign (the log-odds of a thumb up) matches the thumb."""
    with torch.no_grad():
        reward = torch.cat([score_thumbs([pair for pair, _ in eval_thumbs[i : i + batch_size]])
                            for i in range(0, len(eval_thumbs), batch_size)]).float()
    up = torch.tensor([good for _, good in eval_thumbs], device=reward.device)
    return {"eval_thumb_accuracy": ((reward > 0) == up).float().mean().item()}


def _accuracy_and_margin(chosen: torch.Tensor, rejected: torch.Tensor, tie: torch.Tensor) -> dict[str, float]:
    """How often the chosen response scores higher, and by how much, over pairs that are not ties."""
    decided = ~tie
    if not decided.any():
        return {}
    return {
        "accuracy": (chosen > rejected)[decided].float().mean().item(),
        "margin": (chosen - rejected)[decided].mean().item(),
    }

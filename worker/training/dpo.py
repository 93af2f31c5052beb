"""Optimise a policy straight from preference pairs with DPO (Rafailov et al. 2023).

The frozen reference is the starting policy. Its log-probs of every pair are
computed once before training (they never change), which halves the work of
each step. A tie is trained as a pair whose label is a coin flip (label
smoothing 0.5): it pulls the two implicit rewards together instead of
being dropped. Dropout is off (models kept in eval mode) so the policy and
the reference are compared on equal terms.

Steps: `epochs` passes over the training pairs, at most `max_steps` optimiser
steps. With `eval_fraction` a share of the pairs is held out; their preference
accuracy (implicit reward margin > 0, over pairs that are not ties), margin
and loss are measured at every check of the watch. Held-out pairs ordered
worse than chance (fewer right than a one-sided sign test allows at 5%,
`watch.worse_than_chance`) count against the policy there; so do a KL to the starting policy beyond its budget
and degenerate samples (worker.training.watch), and the last weights that
passed every check are the ones saved.
"""

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoTokenizer

from worker.training.data import PreferencePair, TrainingCancelled, TrainResult, steps_per_epoch
from worker.training.devices import autocast_for, pick_device, prepare_for_training
from worker.training.distributed import Ranks, current_ranks
from worker.training.kernels import adamw, use_fused_activations
from worker.training.logprobs import reference_logprobs, token_logprobs
from worker.training.lora import ModelRef, as_parent, load_policy_for_training, write_trained
from worker.training.losses import dpo_loss, weighted_mean
from worker.training.packing import encode_pairs, pack_pairs, packed_response_logps, supports_packing
from worker.training.sequences import ensure_pad_token, pad_prompt_response
from worker.training.watch import PolicyWatch, WatchConfig, worse_than_chance

ALGORITHM = "dpo"


@dataclass
class DPOConfig:
    seed: int = 0
    epochs: int = 1
    max_steps: int | None = None  # optimiser steps at most, whatever the epochs
    batch_size: int = 32  # pairs per optimiser step
    # Rafailov et al. use 1e-6 on billion-parameter models; the small local
    # model needs a much larger step to move within a few hundred pairs.
    learning_rate: float = 1e-4
    beta: float = 0.1
    label_smoothing: float = 0.0  # assumed probability that a label is flipped
    max_length: int = 256  # tokens of prompt + response
    eval_fraction: float = 0.0  # pairs held out to measure preference accuracy on
    lora_r: int = 0
    lora_alpha: int = 16
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (devices.py)
    sharded: bool = False  # on several processes, FSDP instead of DDP (worker.training.distributed)
    device: str = "auto"
    dtype: str = "float32"

    def steps_per_epoch(self, pairs: int) -> int:
        return steps_per_epoch(pairs, self.eval_fraction, self.batch_size)

    def planned_steps(self, pairs: int) -> int:
        """Optimiser steps a run on this many pairs takes unless stopped early."""
        return min(self.epochs * self.steps_per_epoch(pairs), self.max_steps or math.inf)


def run_dpo(
    policy_dir: Path,
    pairs: list[PreferencePair],
    config: DPOConfig,
    out_dir: Path,
    on_metrics: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    watch: WatchConfig | None = None,
    base: ModelRef | None = None,
) -> TrainResult:
    """`base`: the full model under `policy_dir` (required when it is an adapter checkpoint)."""
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    # Setup.
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    ranks = current_ranks(config.sharded)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    ensure_pad_token(tokenizer)
    policy = prepare_for_training(
        load_policy_for_training(policy_dir, base, config.lora_r, config.lora_alpha, use_fused_activations),
        config.gradient_checkpointing)
    # The watch's parent for the KL: the adapter switched off under LoRA, else a frozen copy, held
    # as the policy is (sharded under FSDP) by every rank that runs the watch.
    reference = None
    if watch is not None and ranks.measures and not isinstance(policy, PeftModel):
        reference = ranks.place(copy.deepcopy(policy).requires_grad_(False), device)
    policy = ranks.place(policy, device)
    train_pass = ranks.data_parallel(policy)
    optimizer = adamw(
        [p for p in policy.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.0
    )

    # Data: token ids of both responses of every pair, truncated to max_length; a
    # seeded share held out (indices 0..n_eval-1 after the shuffle).
    pairs = list(pairs)
    random.Random(config.seed).shuffle(pairs)
    n_eval = int(len(pairs) * config.eval_fraction)
    train_rows, eval_rows = list(range(n_eval, len(pairs))), list(range(n_eval))
    if not train_rows:
        raise ValueError("DPO needs at least one training pair besides the held-out ones")
    encoded = encode_pairs(tokenizer, pairs, config.max_length)
    smoothing = [0.5 if pair.tie else config.label_smoothing for pair in pairs]
    packing = supports_packing(policy)

    def response_logps(model: torch.nn.Module, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs of the chosen and rejected responses, (B,) each, from one pass."""
        with autocast_for(device, config.dtype):
            if packing:  # each prompt once, pairs packed into rows (see worker.training.packing)
                chosen, rejected = packed_response_logps(
                    model, pack_pairs([encoded[i] for i in rows], tokenizer.pad_token_id), device)
                return chosen.float(), rejected.float()
            prompts = [encoded[i][0] for i in rows] * 2
            responses = [encoded[i][1] for i in rows] + [encoded[i][2] for i in rows]
            input_ids, attention_mask, response_mask = pad_prompt_response(
                prompts, responses, tokenizer.pad_token_id)
            logprobs, _ = token_logprobs(model, input_ids.to(device), attention_mask.to(device))  # (2B, T-1)
        summed = (logprobs.float() * response_mask[:, 1:].to(device)).sum(-1)  # (2B,)
        return summed[: len(rows)], summed[len(rows) :]

    reference_chosen, reference_rejected = _reference_logps(policy, response_logps, len(pairs), config.batch_size,
                                                            ranks)
    guard = None
    if watch is not None and ranks.measures:
        guard = PolicyWatch(watch, tokenizer, policy, lambda ids, mask: reference_logprobs(
            policy, reference, ids, mask, watch.temperature), agree=ranks.agree)

    @torch.no_grad()
    def held_out() -> dict[str, float]:
        """Loss, and accuracy and margin over pairs that are not ties, of the held-out pairs."""
        if not eval_rows:
            return {}
        chosen, rejected = (torch.cat(side) for side in zip(*(
            response_logps(policy, eval_rows[i : i + config.batch_size])
            for i in range(0, len(eval_rows), config.batch_size))))
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            chosen, rejected, reference_chosen[eval_rows], reference_rejected[eval_rows], config.beta,
            torch.tensor([smoothing[i] for i in eval_rows], device=device))
        result = {"heldout_loss": losses.mean().item()}
        decided = torch.tensor([not pairs[i].tie for i in eval_rows], device=device)
        if decided.any():
            margin = (chosen_rewards - rejected_rewards)[decided]
            result |= {"heldout_accuracy": (margin > 0).float().mean().item(), "heldout_margin": margin.mean().item(),
                       "heldout_decisive": float(len(margin))}
        return result

    # Loop: every rank draws the same batches and trains on its part of each; rank 0 watches the
    # policy (every rank under FSDP), and tells the others when it stops (worker.training.distributed).
    order = random.Random(config.seed)
    total_steps = config.planned_steps(len(pairs))
    step, started, metrics, stopped = 0, time.perf_counter(), {}, False
    while step < total_steps and not stopped:
        indices = list(train_rows)
        order.shuffle(indices)
        for start in range(0, len(indices), config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"DPO cancelled at step {step}")
            batch = indices[start : start + config.batch_size]
            part = ranks.shard(batch)
            chosen_logps, rejected_logps = train_pass(lambda: response_logps(policy, part.rows))
            losses, chosen_rewards, rejected_rewards = dpo_loss(
                chosen_logps,
                rejected_logps,
                reference_chosen[part.rows],
                reference_rejected[part.rows],
                config.beta,
                torch.tensor([smoothing[i] for i in part.rows], device=device),
            )
            weights = torch.tensor([pairs[i].weight for i in part.rows], device=device)
            loss = weighted_mean(losses, weights) * ranks.share(
                part, sum(pairs[i].weight for i in part.rows), sum(pairs[i].weight for i in batch))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses, chosen_rewards, rejected_rewards, chosen_logps, rejected_logps, weights = ranks.gather(
                torch.stack([losses, chosen_rewards, rejected_rewards, chosen_logps, rejected_logps, weights], 1),
                part).detach().unbind(1)
            decided = torch.tensor([not pairs[i].tie for i in batch], device=device)
            metrics = {
                "loss": weighted_mean(losses, weights).item(),
                "chosen_reward": chosen_rewards.mean().item(),
                "rejected_reward": rejected_rewards.mean().item(),
                # Both log-probs often fall together; what matters is the margin.
                "chosen_logps": chosen_logps.mean().item(),
                "rejected_logps": rejected_logps.mean().item(),
                "pairs_per_second": step * config.batch_size / (time.perf_counter() - started),
            }
            if decided.any():
                margin = (chosen_rewards - rejected_rewards)[decided]
                metrics["reward_accuracy"] = (margin > 0).float().mean().item()
                metrics["reward_margin"] = margin.mean().item()
            if guard is not None and (guard.due(step) or step == total_steps):
                scores = held_out()
                decisive = int(scores.get("heldout_decisive", 0))
                worse = worse_than_chance(round(scores.get("heldout_accuracy", 1.0) * decisive), decisive)
                metrics |= guard.check(step, policy, worse, scores).metrics()
            elif eval_rows and step == total_steps and ranks.measures:
                metrics |= held_out()
            stopped = ranks.from_main(guard is not None and guard.should_stop)
            if on_metrics is not None:
                on_metrics(step, metrics)
            if step >= total_steps or stopped:
                break

    # Checkpoint: the last weights that passed the watch's checks (the last ones without a watch).
    summary = {**metrics, "steps": float(step), "pairs": float(len(train_rows)), "eval_pairs": float(n_eval),
               "ties": float(sum(p.tie for p in pairs))}
    if guard is not None:
        summary |= {"kept_step": float(guard.kept.step)} | guard.kept.metrics()
        if guard.kept.step == 0:  # nothing passed the checks: the parent is all there is, save nothing
            return TrainResult(None, summary, guard.report())
        guard.restore(policy)
    weights = ranks.whole_state_dict(policy)
    if not ranks.main:  # rank 0 saves
        return TrainResult(None, summary)
    write_trained(out_dir, policy, tokenizer, algorithm=ALGORITHM, config=asdict(config), metrics=summary,
                  parent=policy_dir, base=base, state_dict=weights)
    return TrainResult(Path(out_dir), summary, guard.report() if guard else {})


@torch.no_grad()
def _reference_logps(
    policy: torch.nn.Module,
    response_logps: Callable[[torch.nn.Module, list[int]], tuple[torch.Tensor, torch.Tensor]],
    n_pairs: int,
    batch_size: int,
    ranks: Ranks,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected log-probs (N,) under the starting policy (adapter off under LoRA); each
    rank computes its share of the pairs, in as many passes as the largest share takes (under FSDP
    each pass is a collective): a rank with fewer rows repeats its first as a stand-in, left out."""
    part = ranks.shard(list(range(n_pairs)))
    largest = -(-n_pairs // ranks.world)  # rank 0's share
    passes = -(-largest // batch_size)
    batches = [part.rows[i : i + batch_size] or part.rows[:1] for i in range(0, passes * batch_size, batch_size)]
    if isinstance(policy, PeftModel):
        with as_parent(policy):
            results = [response_logps(policy, rows) for rows in batches]
    else:
        results = [response_logps(policy, rows) for rows in batches]
    chosen, rejected = (torch.cat(side)[: len(part.rows)] for side in zip(*results))
    return ranks.gather(torch.stack([chosen, rejected], 1), part).unbind(1)

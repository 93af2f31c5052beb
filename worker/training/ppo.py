"""Optimise a policy against a reward model with PPO and a KL penalty
(Ziegler et al. 2019; Ouyang et al. 2022).

Each step: sample responses for a batch of prompts (left-padded, KV-cached),
score prompt+response once (right-padded) under the policy, the frozen
reference and the value model, reward = reward-model score at the EOS token
minus a per-token KL penalty, GAE advantages, then a few epochs of clipped
policy and value updates on minibatches.

The value model starts as a copy of the reward model (backbone and head):
it already maps a text to a reward-like scalar, so early value estimates
are informative rather than noise, which a randomly initialised head would
add to every advantage (InstructGPT does the same). Dropout is off everywhere
(models kept in eval mode), otherwise the log-probs of the sampling pass and
the training pass differ before any update.

With a watch (worker.training.watch) the policy is checked on held-out
prompts every few iterations, and at once when a rollout's KL passes the
budget; it stops when the KL or degeneration leave their limits, and the last
good weights are the ones saved.

On several processes (worker.training.distributed) every rank samples and scores
the same rollouts and trains on its part of each minibatch. Under FSDP the policy,
the frozen reference, the value model and the reward scorer are all sharded, and
every rank runs the watch with them in lockstep.
"""

import copy
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import TaskType
from transformers import AutoTokenizer

from worker.training.advantages import gae
from worker.training.data import TrainingCancelled, TrainResult
from worker.training.devices import autocast_for, pick_device, prepare_for_training
from worker.training.distributed import current_ranks
from worker.training.generation import generate_responses
from worker.training.kernels import adamw, use_fused_activations
from worker.training.kl_control import AdaptiveKLController, FixedKLController
from worker.training.logprobs import reference_logprobs, token_logprobs
from worker.training.lora import (
    ModelRef,
    add_lora,
    load_policy_for_training,
    load_sequence_classifier,
    unwrap_model,
    write_trained,
)
from worker.training.losses import (
    entropy_from_logits,
    kl_k1,
    kl_k3,
    masked_mean,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
)
from worker.training.reward_model import RewardScorer, token_scores
from worker.training.sequences import Prompt, ensure_pad_token, last_token_index, pad_prompt_response
from worker.training.watch import PolicyWatch, WatchConfig

ALGORITHM = "ppo"


@dataclass
class PPOConfig:
    seed: int = 0
    steps: int = 20  # rollout-and-update iterations
    rollout_batch_size: int = 32  # prompts sampled per step
    minibatch_size: int = 16
    ppo_epochs: int = 4  # passes over each rollout batch (Schulman et al. 2017)
    learning_rate: float = 1e-4
    max_new_tokens: int = 48
    # Rollouts sample at this temperature with no top-k/top-p: truncation
    # would make the sampled distribution differ from the one scored, and the
    # KL estimate can go negative.
    temperature: float = 1.0
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    value_loss_coef: float = 0.1
    kl_coef: float = 0.05  # initial coefficient of the per-token KL penalty
    kl_target: float | None = None  # set (e.g. 6.0, Ziegler et al.) for the adaptive controller
    kl_horizon: int = 10_000
    reward_clip: float = 5.0  # normalised rewards are clipped to ±this
    missing_eos_penalty: float = 1.0  # subtracted from the score of a response cut off before EOS
    max_grad_norm: float = 1.0
    lora_r: int = 0
    lora_alpha: int = 16
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (devices.py)
    sharded: bool = False  # on several processes, FSDP instead of DDP (worker.training.distributed)
    device: str = "auto"
    dtype: str = "float32"


def run_ppo(
    policy_dir: Path,
    reward_model_dir: Path,
    prompts: list[Prompt],
    config: PPOConfig,
    out_dir: Path,
    on_metrics: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    watch: WatchConfig | None = None,
    base: ModelRef | None = None,
) -> TrainResult:
    """`base`: the full model under `policy_dir` and `reward_model_dir` (required when either is
    an adapter checkpoint)."""
    if not prompts:
        raise ValueError("PPO needs at least one prompt")
    # Setup.
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    ranks = current_ranks(config.sharded)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    ensure_pad_token(tokenizer)
    policy = load_policy_for_training(policy_dir, base, config.lora_r, config.lora_alpha, use_fused_activations)
    value_model = use_fused_activations(load_sequence_classifier(reward_model_dir, base))
    scorer = RewardScorer(reward_model_dir, config.device, base, ranks)
    if scorer.tokenizer.get_vocab() != tokenizer.get_vocab():
        # The value model (a copy of the reward model) reads the policy's token ids.
        raise ValueError("the reward model must share the policy's tokenizer")
    with torch.no_grad():
        # Match the head's scale to the normalised rewards the values predict.
        unwrap_model(value_model).score.weight.div_(scorer.std)
    if config.lora_r > 0:
        # The reference is the policy as it started (worker.training.lora.as_parent).
        value_model = add_lora(value_model, config.lora_r, config.lora_alpha, TaskType.SEQ_CLS)
        reference = None
    else:
        reference = ranks.place(copy.deepcopy(policy).requires_grad_(False).eval(), device)
    policy = ranks.place(prepare_for_training(policy, config.gradient_checkpointing), device)
    value_model = ranks.place(prepare_for_training(value_model, config.gradient_checkpointing), device)
    train_pass = ranks.data_parallel(policy, value_model)
    trainable = [p for model in (policy, value_model) for p in model.parameters() if p.requires_grad]
    optimizer = adamw(trainable, lr=config.learning_rate, eps=1e-5)
    kl_controller = (
        AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
        if config.kl_target is not None
        else FixedKLController(config.kl_coef)
    )
    guard = None if watch is None or not ranks.measures else PolicyWatch(
        watch, tokenizer, policy, lambda ids, mask: reference_logprobs(policy, reference, ids, mask, watch.temperature),
        agree=ranks.agree)

    # Data: prompts cycled in a seeded random order.
    prompt_order = random.Random(config.seed)
    queue: list[str] = []

    def next_prompts() -> list[str]:
        while len(queue) < config.rollout_batch_size:
            refill = list(prompts)
            prompt_order.shuffle(refill)
            queue.extend(refill)
        batch = queue[: config.rollout_batch_size]
        del queue[: config.rollout_batch_size]
        return batch

    # Loop: every rank samples and scores the same rollouts, and trains on its part of each
    # minibatch; rank 0 watches the policy (every rank under FSDP), and tells the others when it
    # stops (worker.training.distributed).
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    for step in range(1, config.steps + 1):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"PPO cancelled at step {step}")

        # Rollout.
        generated = generate_responses(
            policy,
            tokenizer,
            next_prompts(),
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            batch_size=config.rollout_batch_size,
            seed=config.seed * 1_000_003 + step,
        )
        input_ids, attention_mask, response_mask = pad_prompt_response(
            [g.prompt_ids for g in generated], [g.token_ids for g in generated], tokenizer.pad_token_id
        )  # (B, T) each
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        # Position t of a (B, T-1) tensor is about predicting token t+1.
        action_mask = response_mask[:, 1:].to(device).float()  # (B, T-1)
        with torch.no_grad(), autocast_for(device, config.dtype):
            old_logprobs, _ = token_logprobs(policy, input_ids, attention_mask, config.temperature)
            ref_logprobs = reference_logprobs(policy, reference, input_ids, attention_mask, config.temperature)
            old_values = token_scores(value_model, input_ids, attention_mask)[:, :-1].float()  # (B, T-1)
        # Scored on the ids sampled, exactly: the reward model shares the policy's tokenizer.
        scores = scorer.score_ids([g.prompt_ids + g.token_ids for g in generated]).to(device)  # (B,)
        scores = scores.clamp(-config.reward_clip, config.reward_clip)
        ended = torch.tensor([g.ended_with_eos for g in generated], device=device)
        scores = torch.where(ended, scores, scores - config.missing_eos_penalty)

        # Rewards: KL penalty on every response token, the score on the last one.
        kl = kl_k1(old_logprobs, ref_logprobs) * action_mask  # (B, T-1)
        rewards = -kl_controller.coef * kl
        last_action = last_token_index(attention_mask) - 1  # (B,)
        rewards[torch.arange(len(generated), device=device), last_action] += scores
        advantages, returns = gae(rewards, old_values, action_mask, config.gamma, config.lam)
        advantages = masked_whiten(advantages, action_mask)

        # Update: a few epochs of minibatches over this rollout.
        update_sums = {"loss": 0.0, "policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0,
                       "value_clip_fraction": 0.0, "entropy": 0.0}
        n_updates = 0
        for _ in range(config.ppo_epochs):
            # Rank 0's draw: the ranks must agree on every minibatch, whatever else moved their generators.
            order = ranks.from_main(torch.randperm(len(generated)))
            for start in range(0, len(generated), config.minibatch_size):
                minibatch = order[start : start + config.minibatch_size].tolist()
                part = ranks.shard(minibatch)
                rows = torch.tensor(part.rows, device=device)
                mask = action_mask[rows]

                def forward():
                    with autocast_for(device, config.dtype):
                        logprobs, logits = token_logprobs(policy, input_ids[rows], attention_mask[rows],
                                                          config.temperature)
                        values = token_scores(value_model, input_ids[rows], attention_mask[rows])[:, :-1]
                    return logprobs, logits, values.float()

                logprobs, logits, values = train_pass(forward)
                policy_loss, clip_fraction = ppo_policy_loss(
                    logprobs, old_logprobs[rows], advantages[rows], mask, config.clip_range
                )
                value_loss, value_clip_fraction = ppo_value_loss(
                    values, old_values[rows], returns[rows], mask, config.value_clip_range
                )
                loss = policy_loss + config.value_loss_coef * value_loss
                # The losses are means over this rank's response tokens.
                tokens = mask.sum().item()
                (loss * ranks.share(part, tokens, action_mask[minibatch].sum().item())).backward()
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                with torch.no_grad():
                    entropy = masked_mean(entropy_from_logits(logits), mask)
                figures = torch.stack([loss, policy_loss, value_loss, clip_fraction, value_clip_fraction, entropy])
                if ranks.world > 1:  # each rank's means, weighed by its tokens: the minibatch's
                    weighed = ranks.gather(torch.cat([figures.detach() * tokens, figures.new_tensor([tokens])])[None],
                                           part).sum(0)
                    figures = weighed[:-1] / weighed[-1].clamp(min=1.0)
                for name, value in zip(update_sums, figures.tolist()):
                    update_sums[name] += value
                n_updates += 1

        sequence_kl = kl.sum(-1).mean().item()
        kl_controller.update(sequence_kl, len(generated))
        metrics = {
            **{name: total / n_updates for name, total in update_sums.items()},
            "reward_mean": scores.mean().item(),
            "kl": sequence_kl,
            "kl_k3": (kl_k3(old_logprobs, ref_logprobs) * action_mask).sum(-1).mean().item(),
            "kl_coef": kl_controller.coef,
            "response_length": action_mask.sum(-1).mean().item(),
            "eos_rate": ended.float().mean().item(),
            "rollouts_per_second": step * config.rollout_batch_size / (time.perf_counter() - started),
        }
        over_budget = watch is not None and watch.kl_budget is not None and sequence_kl > watch.kl_budget
        if guard is not None and (guard.due(step) or step == config.steps or over_budget):
            metrics |= guard.check(step, policy).metrics()
        if on_metrics is not None:
            on_metrics(step, metrics)
        if ranks.from_main(guard is not None and guard.should_stop):
            break

    # Checkpoint: the policy only (the last good weights under a watch); the value model was a training aid.
    summary = {**metrics, "steps": float(step)}
    if guard is not None:
        summary |= {"kept_step": float(guard.kept.step)} | guard.kept.metrics()
        if guard.kept.step == 0:  # nothing passed the checks: the parent is all there is, save nothing
            return TrainResult(None, summary, guard.report())
        guard.restore(policy)
    weights = ranks.whole_state_dict(policy)
    if not ranks.main:  # rank 0 saves
        return TrainResult(None, summary)
    write_trained(out_dir, policy, tokenizer, algorithm=ALGORITHM, config=asdict(config), metrics=summary,
                  parent=policy_dir, base=base, extra_metadata={"reward_model": str(reward_model_dir)},
                  state_dict=weights)
    return TrainResult(Path(out_dir), summary, guard.report() if guard else {})


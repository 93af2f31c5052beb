"""Losses and the masked statistics they need, as small pure torch functions.

Shapes: B is the batch, T the number of (response) tokens. A mask is 1 where a
token counts and 0 on padding.
"""

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over positions where `mask` is 1 (a scalar)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Shift and scale `values` to mean 0, std 1 over the masked positions.

    Padding positions come back as 0 so they cannot leak into later sums.
    """
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + eps) * mask


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of (B,) values, each counted by its weight (a batch that weighs nothing gives 0)."""
    if weights is None:
        return values.mean()
    weights = weights.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1e-8)


def bradley_terry_loss(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, tie: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative log-likelihood of the rater's answers under Bradley–Terry.

    P(chosen beats rejected) = sigmoid(r_chosen - r_rejected). A tie is the
    target probability 1/2, so it pulls the two rewards together instead of
    being dropped. chosen_rewards, rejected_rewards: (B,); tie: (B,) bool;
    weights: (B,), how much each answer counts (its rater's reliability).
    """
    margin = chosen_rewards - rejected_rewards
    target = torch.where(tie, 0.5, 1.0).to(margin.dtype)
    loglik = target * F.logsigmoid(margin) + (1 - target) * F.logsigmoid(-margin)
    return -weighted_mean(loglik, weights)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float,
    label_smoothing: float | torch.Tensor = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid DPO loss (Rafailov et al. 2023), per pair.

    All inputs are summed response log-probs, (B,). `label_smoothing` is the
    probability that a label is flipped (conservative DPO); 0.5 for a pair
    makes it a tie, pulling its two implicit rewards together.
    Returns losses (B,), chosen rewards (B,), rejected rewards (B,), where a
    reward is beta * (log pi - log pi_ref).
    """
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps)
    margin = chosen_rewards - rejected_rewards
    losses = -(1 - label_smoothing) * F.logsigmoid(margin) - label_smoothing * F.logsigmoid(-margin)
    return losses, chosen_rewards.detach(), rejected_rewards.detach()


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017), all inputs (B, T).

    Returns the loss and the fraction of tokens where clipping was active.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    return loss, clip_fraction


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_clipped - R)^2), all inputs (B, T).

    Clipping keeps the value head from moving far from the values used to
    compute the advantages in one update. Returns the loss and clip fraction.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask)
    clip_fraction = masked_mean((clipped_error > unclipped_error).float(), mask)
    return loss, clip_fraction


def kl_k1(logprobs: torch.Tensor, reference_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate log p - log q: unbiased, high variance, can be negative."""
    return logprobs - reference_logprobs


def kl_k3(logprobs: torch.Tensor, reference_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate (q/p - 1) - log(q/p) (Schulman 2020): unbiased and never negative."""
    log_ratio = reference_logprobs - logprobs
    return torch.exp(log_ratio) - 1 - log_ratio


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution: logits (B, T, V) → (B, T)."""
    log_probs = F.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)

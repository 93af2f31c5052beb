"""Generalised advantage estimation (Schulman et al. 2016)."""

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns for right-padded response tokens.

    rewards, values, mask: (B, T). A response ends at its last masked token;
    the value after it is 0 (the episode is over). Returns advantages (B, T)
    and returns = advantages + values (B, T), both 0 on padding.
    """
    mask = mask.to(values.dtype)
    values = values * mask
    rewards = rewards * mask
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        # Padding after the end contributes nothing, so `running` restarts at 0 there.
        running = running * mask[:, t]
        advantages[:, t] = running
    return advantages, advantages + values

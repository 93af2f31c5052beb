"""An ensemble of linear reward heads on a frozen policy's features: which pair to rate next.

Each head is a Bradley-Terry model on the policy's last hidden state at a
response's last token (what a reward model's value head reads), fitted on a
Poisson bootstrap of the comparisons rated so far. Where the heads disagree
about which of two responses is better, a rating teaches the most: the spread
of their P(a better than b) is the selection score. It measures what the
ratings have not settled (epistemic), unlike the margin of a single model,
which would pick near-identical responses whose answer is a coin.

Fitting is a few hundred L-BFGS iterations on (N, H) features: under a second
for 2,000 comparisons of a 4,096-wide model, so it runs at every pool refill.
"""

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from worker.training.sequences import last_token_index, pad_right


@dataclass
class RewardHeads:
    weight: torch.Tensor  # (E, H), on standardised features
    mean: torch.Tensor  # (H,)
    std: torch.Tensor  # (H,)

    def rewards(self, features: torch.Tensor) -> torch.Tensor:
        """(N, H) features → (E, N) rewards, one row per head."""
        return self.weight @ ((features - self.mean) / self.std).T


@torch.no_grad()
def embed(model: PreTrainedModel, sequences: list[list[int]], pad_id: int, batch_size: int = 32) -> torch.Tensor:
    """The last layer's hidden state at each sequence's last token: (N, H), float32, on the CPU."""
    was_training = model.training
    model.eval()
    features = []
    for start in range(0, len(sequences), batch_size):
        input_ids, attention_mask = pad_right(sequences[start : start + batch_size], pad_id)  # (B, T)
        output = model(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                       output_hidden_states=True)
        hidden = output.hidden_states[-1]  # (B, T, H)
        last = last_token_index(attention_mask).to(hidden.device)  # (B,)
        features.append(hidden[torch.arange(len(last), device=hidden.device), last].float().cpu())
    model.train(was_training)
    return torch.cat(features) if features else torch.empty(0, 0)


def fit_heads(chosen: torch.Tensor, rejected: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
              heads: int = 5, l2: float = 1.0, seed: int = 0) -> RewardHeads:
    """Fit `heads` Bradley-Terry heads on comparisons: chosen and rejected features (N, H), the
    probability that chosen is better (N,) (1 decisive, 0.5 a tie) and each comparison's weight (N,)."""
    features = torch.cat([chosen, rejected])
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    difference = (chosen - rejected) / std  # (N, H): the mean cancels in a difference
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.ones(heads, len(target)), generator=generator)  # (E, N) bootstrap
    w = torch.zeros(heads, difference.shape[1], requires_grad=True)  # (E, H)
    optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")
    scale = (counts * weight).sum(1).clamp(min=1.0)  # (E,)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = w @ difference.T  # (E, N)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target.expand_as(logits), reduction="none")
        total = ((loss * counts * weight).sum(1) / scale).sum() + l2 * (w**2).sum() / len(target)
        total.backward()
        return total

    optimizer.step(closure)
    return RewardHeads(w.detach(), mean, std)


def most_contrasting_pair(heads: RewardHeads, features: torch.Tensor) -> tuple[int, int, float]:
    """Of K candidates' features (K, H), the best and the worst by the heads' mean reward, and how
    far apart the heads put them (mean reward difference)."""
    mean = heads.rewards(features).mean(0)  # (K,)
    best, worst = int(mean.argmax()), int(mean.argmin())
    return best, worst, float(mean[best] - mean[worst])


def most_disputed_pair(heads: RewardHeads, features: torch.Tensor) -> tuple[int, int, float]:
    """Of K candidates' features (K, H), the two whose order the heads disagree on most, and
    the spread (standard deviation over heads) of their P(first better than second)."""
    rewards = heads.rewards(features)  # (E, K)
    probability = torch.sigmoid(rewards[:, :, None] - rewards[:, None, :])  # (E, K, K)
    spread = probability.std(0)  # (K, K), symmetric, 0 on the diagonal
    first, second = divmod(int(spread.argmax()), spread.shape[1])
    return first, second, float(spread[first, second])

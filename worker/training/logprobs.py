"""Per-token log-probabilities of a sequence under a causal LM."""

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from worker.training.lora import as_parent
from worker.training.packing import unpadded_call


def token_logprobs(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each token given the tokens before it.

    input_ids, attention_mask: (B, T), right-padded. Returns logprobs (B, T-1)
    for tokens 1..T-1 and the logits (B, T-1, V) they came from. The logits
    are divided by the sampling temperature so that the log-probs describe the
    distribution the tokens were actually sampled from.
    """
    logits = unpadded_call(
        model, lambda ids, mask, positions: model(input_ids=ids, attention_mask=mask, position_ids=positions).logits,
        input_ids, attention_mask)
    logits = logits[:, :-1, :].float() / temperature  # (B, T-1, V)
    targets = input_ids[:, 1:]  # (B, T-1)
    logprobs = torch.gather(F.log_softmax(logits, dim=-1), 2, targets[:, :, None]).squeeze(-1)
    return logprobs, logits


def reference_logprobs(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-probs (B, T-1) under the frozen reference: a copy, or the policy as it started
    (its parent's adapter, or no adapter: worker.training.lora.as_parent)."""
    if reference is not None:
        return token_logprobs(reference, input_ids, attention_mask, temperature)[0]
    with as_parent(policy):
        return token_logprobs(policy, input_ids, attention_mask, temperature)[0]

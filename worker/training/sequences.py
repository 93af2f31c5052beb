"""How prompts and responses become token sequences, and how batches are padded.

One convention everywhere (pretraining, generation, reward model, PPO, DPO):
a prompt is `[BOS] prompt "\n"` and a response is `response [EOS]`. Prompt and
response are tokenized separately and concatenated, so the boundary between
them is known exactly.
"""

import torch
from transformers import PreTrainedTokenizerBase

PROMPT_SEPARATOR = "\n"


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt, tokenized in one batch call."""
    if not prompts:
        return []
    bos = tokenizer.bos_token_id
    encoded = tokenizer([p + PROMPT_SEPARATOR for p in prompts], add_special_tokens=False)["input_ids"]
    return encoded if bos is None else [[bos, *ids] for ids in encoded]


def encode_responses(tokenizer: PreTrainedTokenizerBase, responses: list[str]) -> list[list[int]]:
    """Token ids of each response, EOS included, tokenized in one batch call."""
    if not responses:
        return []
    encoded = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    return [[*ids, tokenizer.eos_token_id] for ids in encoded]


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give a third-party tokenizer without one a pad token.

    Our own code masks by length, never by comparing ids with the pad id, so
    reusing EOS here cannot hide EOS from the loss.
    """
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def pad_right(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists → input_ids (B, T) and attention_mask (B, T), padded on the right."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def pad_left(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists → input_ids (B, T) and attention_mask (B, T), padded on the left.

    Generation appends to the right end of every row at once, so prompts must
    end in the same column.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence) :] = 1
    return ids, mask


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions (B, T) counting only real tokens, so left padding does not shift them."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index (B,) of the last real token of each right-padded row."""
    return attention_mask.sum(-1) - 1


def pad_prompt_response(
    prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate prompt and response tokens, right-padded.

    Returns input_ids (B, T), attention_mask (B, T) and response_mask (B, T),
    which is 1 exactly on response tokens (their EOS included).
    """
    input_ids, attention_mask = pad_right([p + r for p, r in zip(prompt_ids, response_ids)], pad_id)
    response_mask = torch.zeros_like(attention_mask)
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        response_mask[row, len(prompt) : len(prompt) + len(response)] = 1
    return input_ids, attention_mask, response_mask

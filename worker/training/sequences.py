"""How prompts and responses become token sequences, and how batches are padded.

One place decides, for pretraining, generation, reward model, PPO and DPO alike.
A prompt is plain text or a conversation: a tuple of (role, content) turns
ending with a user turn (hashable, so prompts can key dictionaries).

- A tokenizer with a chat template renders the conversation (a plain prompt
  is one user turn) with the model's own template and its generation prompt;
  a response is `response [turn end]`, where the turn end is the token the
  template closes an assistant turn with (often not the tokenizer's EOS).
- Without a template: `[BOS] prompt "\n"` and `response [EOS]`; a
  conversation's last user turn is its text.

Prompt and response are tokenized separately and concatenated, so the
boundary between them is known exactly. Generation stops at every end id
the model declares (`stop_ids`).
"""

import hashlib
import json

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

PROMPT_SEPARATOR = "\n"
Prompt = str | tuple[tuple[str, str], ...]


def prompt_of(text: str, messages: list[dict[str, str]] | None) -> Prompt:
    """A stored prompt as the training core takes it: its conversation as turns, or its text."""
    return tuple((m["role"], m["content"]) for m in messages) if messages else text


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": role, "content": content} for role, content in prompt]


def prompt_text(prompt: Prompt) -> str:
    """The text of a plain prompt, or a conversation's last user turn."""
    if isinstance(prompt, str):
        return prompt
    return next(content for role, content in reversed(prompt) if role == "user")


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[Prompt]) -> list[list[int]]:
    """Token ids of each prompt, tokenized in one batch call."""
    if not prompts:
        return []
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template([as_messages(p) for p in prompts], add_generation_prompt=True,
                                             tokenize=True, return_dict=False)
    bos = tokenizer.bos_token_id
    encoded = tokenizer([prompt_text(p) + PROMPT_SEPARATOR for p in prompts], add_special_tokens=False)["input_ids"]
    return encoded if bos is None else [[bos, *ids] for ids in encoded]


def response_end_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends a response: the one the chat template closes an assistant turn with, or EOS."""
    if not tokenizer.chat_template:
        return tokenizer.eos_token_id
    user = [{"role": "user", "content": "Hi."}]
    opened = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=False)
    closed = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": "Hello."}], tokenize=True,
                                           return_dict=False)
    content = tokenizer("Hello.", add_special_tokens=False)["input_ids"]
    after = len(opened) + len(content)
    if closed[: len(opened)] != opened or closed[len(opened) : after] != content or after >= len(closed):
        return tokenizer.eos_token_id  # a template that renders turns some other way: EOS it is
    return closed[after]


def stop_ids(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None = None) -> set[int]:
    """Every id a response may end with: the turn end, EOS, and the ids the model's generation config lists."""
    ids = {response_end_id(tokenizer), tokenizer.eos_token_id}
    declared = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(declared) if isinstance(declared, list) else {declared}
    return {i for i in ids if i is not None}


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Names a tokenizer by what decides its ids (vocabulary, special tokens, chat template), so that
    token ids stored with a sample are reused only by a tokenizer that would mean the same by them."""
    described = json.dumps([sorted(tokenizer.get_vocab().items()), tokenizer.chat_template,
                            tokenizer.all_special_tokens], default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def encode_responses(tokenizer: PreTrainedTokenizerBase, responses: list[str]) -> list[list[int]]:
    """Token ids of each response, its end token included, tokenized in one batch call."""
    if not responses:
        return []
    end = response_end_id(tokenizer)
    encoded = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    return [[*ids, end] for ids in encoded]


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

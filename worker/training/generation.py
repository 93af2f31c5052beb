"""Batched, KV-cached sampling from a causal LM.

Prompts are padded on the LEFT so that every row's next token lands in the
same column; position ids count only real tokens, so padding does not shift
them. Used for PPO rollouts and to fill the rating pool.

A model sharded with FSDP (worker.training.distributed) runs each forward pass as a
collective of all ranks: they sample in lockstep and stop when every rank's rows have
ended, not when its own have.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FSDPModule
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from worker.training.sequences import Prompt, encode_prompts, pad_left, position_ids_for, stop_ids


@dataclass
class Generated:
    prompt: Prompt
    text: str
    prompt_ids: list[int]
    # Response tokens, including the end token (turn end or EOS) when there is one.
    token_ids: list[int]
    ended_with_eos: bool  # ended by one of the model's end ids, not cut at the length limit


@torch.no_grad()
def generate_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Prompt],
    *,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
) -> list[Generated]:
    """Sample one response per prompt. temperature 0 means greedy decoding."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    ends = stop_ids(tokenizer, model)
    results = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        prompt_ids = encode_prompts(tokenizer, batch)
        new_tokens = _sample_batch(
            model, prompt_ids, tokenizer.pad_token_id, ends,
            max_new_tokens, temperature, top_k, top_p, generator,
        )
        for prompt, ids, tokens in zip(batch, prompt_ids, new_tokens):
            ended = bool(tokens) and tokens[-1] in ends
            text = tokenizer.decode(tokens[:-1] if ended else tokens, skip_special_tokens=True)
            results.append(Generated(prompt, text.strip(), ids, tokens, ended))
    model.train(was_training)
    return results


def _sample_batch(
    model: PreTrainedModel,
    prompt_ids: list[list[int]],
    pad_id: int,
    ends: set[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator,
) -> list[list[int]]:
    device = model.device
    sharded = isinstance(model, FSDPModule)
    input_ids, attention_mask = pad_left(prompt_ids, pad_id)  # (B, P)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    positions = position_ids_for(attention_mask)  # (B, P)
    batch_size = input_ids.shape[0]
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    end_ids = torch.tensor(sorted(ends), device=device)
    sampled = []  # max_new_tokens × (B,)
    cache = None
    step_ids, step_positions = input_ids, positions
    for _ in range(max_new_tokens):
        output = model(
            input_ids=step_ids,
            attention_mask=attention_mask,
            position_ids=step_positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = output.cache
        logits = output.logits[:, -1, :].float()  # (B, V)
        next_token = _sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
        sampled.append(next_token)
        finished |= torch.isin(next_token, end_ids)
        if _all_ended(finished, sharded):
            break
        step_ids = next_token[:, None]  # (B, 1)
        step_positions = step_positions[:, -1:] + 1  # (B, 1)
        attention_mask = torch.cat([attention_mask, (~finished).long()[:, None]], dim=1)
    tokens = torch.stack(sampled, dim=1).tolist()  # (B, N)
    return [_until_end(row, ends) for row in tokens]


def _all_ended(finished: torch.Tensor, sharded: bool) -> bool:
    """Whether every row has ended: on every rank, for a sharded model (its next pass is a collective)."""
    ended = finished.all()
    if sharded:
        ended = ended.to(torch.int)
        dist.all_reduce(ended, op=dist.ReduceOp.MIN)
    return bool(ended)


def _sample_next(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    """logits (B, V) → sampled token ids (B,)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k > 0:
        kth_largest = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token once the tokens before it already cover top_p of the mass.
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


def _until_end(tokens: list[int], ends: set[int]) -> list[int]:
    """The tokens up to and including the first end id (the rest is padding after it)."""
    return next((tokens[: i + 1] for i, token in enumerate(tokens) if token in ends), tokens)

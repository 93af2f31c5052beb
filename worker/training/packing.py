"""Sequences packed into rows for one forward pass, with little padding.

Right-padded batches of prompt + response spend a large share of their compute
on padding when lengths vary: for the small local model about a third (63 % of
the token slots real, measured both for rated pairs at batch 32 and for rollouts
in PPO's minibatches of 16). Packing puts several
sequences in one row (first fit, longest first) under a block-diagonal causal
mask with positions restarting per sequence, so that each sequence's outputs are
exactly those it gets alone (tests/training/test_packing.py checks it).

`packed_call` does this for any right-padded batch and hands the outputs back in
the padded layout, so callers (PPO's policy and value passes, through
`unpadded_call`) do not change.
`pack_pairs` goes further for preference pairs:

a pair is laid out as `prompt | chosen | rejected` and the attention mask makes it
a small tree: chosen tokens see the prompt and the chosen tokens before them;
rejected tokens see the prompt and the rejected tokens before them, never the
chosen ones; both responses start at the position right after the prompt. Each
response's log-probs and last hidden state are then exactly those of
`prompt + response` run alone (tests/training/test_packing.py checks it), while
the prompt is computed once instead of twice. Several pairs share a row
(first fit, longest first) and never see each other, so a batch costs about its
real tokens instead of rows × the longest sequence.

The masks are 4-D boolean (row, 1, query, key), which eager and SDPA attention
take as given. Flash-attention kernels cannot take such a mask; `supports_packing`
says when to fall back to one padded row per sequence.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from worker.training.data import PreferencePair
from worker.training.sequences import encode_prompts, encode_responses, position_ids_for, tokenizer_fingerprint

Triple = tuple[list[int], list[int], list[int]]  # prompt, chosen, rejected token ids


@dataclass
class PackedPairs:
    input_ids: torch.Tensor  # (R, W)
    attention_mask: torch.Tensor  # (R, 1, W, W) bool: may query attend to key
    position_ids: torch.Tensor  # (R, W)
    # Flat indices (into R*W) of the last token of each pair's chosen and rejected response: (N,)
    chosen_last: torch.Tensor
    rejected_last: torch.Tensor
    # One entry per response token: the flat index of the position that predicts it,
    # its id, and its owner: pair i's chosen tokens are owner i, its rejected ones N + i.
    predictor: torch.Tensor
    target: torch.Tensor
    owner: torch.Tensor

    @property
    def pairs(self) -> int:
        return len(self.chosen_last)


def fit_triple(prompt: list[int], chosen: list[int], rejected: list[int], max_length: int) -> Triple:
    """Truncate so that prompt + either response fits in max_length positions."""
    prompt = prompt[: max_length - 1]
    room = max_length - len(prompt)
    return prompt, chosen[:room], rejected[:room]


def encode_pairs(tokenizer, pairs: list[PreferencePair], max_length: int) -> list[Triple]:
    """Token ids of each pair, fitted to max_length: a response's sampled ids when they belong to
    this tokenizer, else its text tokenized (every distinct text once, in batch)."""
    own = tokenizer_fingerprint(tokenizer)
    sampled = [pair.tokenizer == own and pair.chosen_ids is not None and pair.rejected_ids is not None
               for pair in pairs]
    prompts = list(dict.fromkeys(pair.prompt for pair in pairs))
    responses = list(dict.fromkeys(r for pair, known in zip(pairs, sampled) if not known
                                   for r in (pair.chosen, pair.rejected)))
    prompt_ids = dict(zip(prompts, encode_prompts(tokenizer, prompts)))
    response_ids = dict(zip(responses, encode_responses(tokenizer, responses)))
    return [fit_triple(prompt_ids[pair.prompt],
                       list(pair.chosen_ids) if known else response_ids[pair.chosen],
                       list(pair.rejected_ids) if known else response_ids[pair.rejected], max_length)
            for pair, known in zip(pairs, sampled)]


def supports_packing(model: PreTrainedModel) -> bool:
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    return not implementation.startswith("flash")


def _first_fit(sizes: list[int]) -> tuple[list[list[int]], int]:
    """Indices grouped into rows of the largest size, first fit, longest first; and that width."""
    width = max(sizes)
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        row = next((r for r, left in enumerate(room) if left >= sizes[index]), None)
        if row is None:
            rows.append([])
            room.append(width)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= sizes[index]
    return rows, width


def packed_call(call, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`call(input_ids, mask_4d, position_ids)` on the rows of a right-padded batch packed
    together; its (R, W, ...) output comes back as (B, T, ...) in the batch's layout
    (what it holds at padding positions is unspecified: mask it)."""
    lengths = attention_mask.sum(-1).tolist()
    rows, width = _first_fit(lengths)
    device = input_ids.device
    packed_ids = torch.zeros((len(rows), width), dtype=input_ids.dtype, device=device)
    positions = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width, width), dtype=torch.bool, device=device)
    causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
    where = torch.zeros(input_ids.shape, dtype=torch.long, device=device)  # flat packed index of each token
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            n = lengths[i]
            packed_ids[r, start : start + n] = input_ids[i, :n]
            positions[r, start : start + n] = torch.arange(n, device=device)
            mask[r, start : start + n, start : start + n] = causal[:n, :n]
            where[i, :n] = torch.arange(r * width + start, r * width + start + n, device=device)
            start += n
        pads = torch.arange(start, width, device=device)
        mask[r, pads, pads] = True  # padding sees itself only (a row allowing nothing gives NaN)
    output = call(packed_ids, mask[:, None], positions)
    return output.flatten(0, 1)[where]


def unpadded_call(model: PreTrainedModel, call, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
    """`call(input_ids, attention_mask, position_ids)` on a right-padded batch: packed when
    `model`'s attention takes packing masks (the same numbers without computing the
    padding), else on the padded batch as it is."""
    if supports_packing(model):
        return packed_call(call, input_ids, attention_mask)
    return call(input_ids, attention_mask, position_ids_for(attention_mask))


def pack_pairs(triples: list[Triple], pad_id: int) -> PackedPairs:
    rows, width = _first_fit([sum(map(len, triple)) for triple in triples])
    n = len(triples)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width, width), dtype=torch.bool)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    chosen_last, rejected_last = [0] * n, [0] * n
    predictor, target, owner = [], [], []
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            prompt, chosen, rejected = triples[i]
            p, c, q = len(prompt), len(chosen), len(rejected)
            end = start + p + c + q
            input_ids[r, start:end] = torch.tensor(prompt + chosen + rejected)
            position_ids[r, start:end] = torch.cat(
                [torch.arange(p + c), torch.arange(p, p + q)])
            mask[r, start:end, start:end] = causal[: end - start, : end - start]
            mask[r, start + p + c : end, start + p : start + p + c] = False  # rejected never sees chosen
            base = r * width + start
            chosen_last[i], rejected_last[i] = base + p + c - 1, base + p + c + q - 1
            # Each response token is predicted by the position before it; the first
            # token of either response by the prompt's last token.
            predictor += range(base + p - 1, base + p + c - 1)
            target += chosen
            owner += [i] * c
            if q:
                predictor.append(base + p - 1)
                predictor += range(base + p + c, base + p + c + q - 1)
                target += rejected
                owner += [n + i] * q
            start = end
        # Padding attends to itself only (a row of the mask that allows nothing gives NaN).
        pads = torch.arange(start, width)
        mask[r, pads, pads] = True
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return PackedPairs(input_ids, mask[:, None], position_ids, as_long(chosen_last), as_long(rejected_last),
                       as_long(predictor), as_long(target), as_long(owner))


def packed_response_logps(model: PreTrainedModel, packed: PackedPairs,
                          device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs (N,), (N,) of each pair's chosen and rejected response."""
    logits = model(input_ids=packed.input_ids.to(device), attention_mask=packed.attention_mask.to(device),
                   position_ids=packed.position_ids.to(device)).logits
    logits = logits.flatten(0, 1)[packed.predictor.to(device)].float()  # (M, V)
    token_logps = F.log_softmax(logits, dim=-1).gather(1, packed.target.to(device)[:, None]).squeeze(1)
    summed = torch.zeros(2 * packed.pairs, device=device, dtype=token_logps.dtype)
    summed = summed.index_add(0, packed.owner.to(device), token_logps)
    return summed[: packed.pairs], summed[packed.pairs :]


def packed_last_hidden(body: PreTrainedModel, packed: PackedPairs,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Last hidden state (N, H), (N, H) of each pair's chosen and rejected response."""
    hidden = body(input_ids=packed.input_ids.to(device), attention_mask=packed.attention_mask.to(device),
                  position_ids=packed.position_ids.to(device)).last_hidden_state.flatten(0, 1)
    return hidden[packed.chosen_last.to(device)], hidden[packed.rejected_last.to(device)]

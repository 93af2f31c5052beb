"""Packed pairs give exactly what each prompt + response gives alone."""

import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from worker.training.data import PreferencePair
from worker.training.logprobs import token_logprobs
from worker.training.packing import encode_pairs, pack_pairs, packed_last_hidden, packed_response_logps
from worker.training.sequences import pad_prompt_response, pad_right, position_ids_for

CPU = torch.device("cpu")


def random_triples(count: int, vocab: int, seed: int = 0):
    rng = random.Random(seed)
    ids = lambda n: [rng.randrange(3, vocab) for _ in range(n)]  # noqa: E731
    return [(ids(rng.randint(1, 9)), ids(rng.randint(1, 14)), ids(rng.randint(1, 14))) for _ in range(count)]


def test_layout_shares_the_prompt_and_packs_rows():
    triples = [([1, 2], [3, 4, 5], [6]), ([7], [8], [9, 10]), ([11, 12, 13], [14], [15])]
    packed = pack_pairs(triples, pad_id=0)
    # Width of the longest pair (6); the two shorter pairs (4 and 5 tokens) cannot share a row.
    assert packed.input_ids.shape == (3, 6)
    assert packed.input_ids[0].tolist() == [1, 2, 3, 4, 5, 6]
    # Both responses start right after the prompt.
    assert packed.position_ids[0].tolist() == [0, 1, 2, 3, 4, 2]
    mask = packed.attention_mask[0, 0]
    assert mask[5].tolist() == [True, True, False, False, False, True]  # rejected: prompt + itself
    assert mask[4].tolist() == [True, True, True, True, True, False]  # chosen: causal
    # The first rejected token is predicted by the prompt's last token (flat index 1).
    rejected = packed.owner == 3 + 0
    assert packed.predictor[rejected].tolist() == [1] and packed.target[rejected].tolist() == [6]
    assert (packed.chosen_last[0], packed.rejected_last[0]) == (4, 5)


def test_rows_hold_several_pairs_that_never_see_each_other():
    triples = [([1], [2], [3]), ([4], [5], [6]), ([7, 8, 9, 10, 11, 12], [13], [14])]
    packed = pack_pairs(triples, pad_id=0)
    assert packed.input_ids.shape == (2, 8)
    assert packed.input_ids[1].tolist()[:6] == [1, 2, 3, 4, 5, 6] or \
        packed.input_ids[1].tolist()[:6] == [4, 5, 6, 1, 2, 3]
    mask = packed.attention_mask[1, 0]
    assert not mask[3:6, 0:3].any() and not mask[0:3, 3:6].any()
    assert mask[6, 6] and mask[7, 7] and not mask[6, :6].any()  # padding sees only itself


def test_packed_logps_equal_separate_rows(tiny_base_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
    triples = random_triples(13, model.config.vocab_size)
    with torch.no_grad():
        chosen, rejected = packed_response_logps(model, pack_pairs(triples, pad_id=0), CPU)
        for side, packed_logps in ((1, chosen), (2, rejected)):
            ids, mask, response = pad_prompt_response([t[0] for t in triples], [t[side] for t in triples], 0)
            logps, _ = token_logprobs(model, ids, mask)
            expected = (logps * response[:, 1:]).sum(-1)
            torch.testing.assert_close(packed_logps, expected, atol=1e-4, rtol=1e-4)


def test_packed_gradients_equal_separate_rows(tiny_base_model):
    triples = random_triples(6, 200, seed=3)
    grads = []
    for packed in (True, False):
        model = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
        if packed:
            chosen, rejected = packed_response_logps(model, pack_pairs(triples, pad_id=0), CPU)
        else:
            sums = []
            for side in (1, 2):
                ids, mask, response = pad_prompt_response([t[0] for t in triples], [t[side] for t in triples], 0)
                sums.append((token_logprobs(model, ids, mask)[0] * response[:, 1:]).sum(-1))
            chosen, rejected = sums
        (chosen - 2 * rejected).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def test_packed_last_hidden_equals_separate_rows(tiny_base_model):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=1, pad_token_id=0)
    model.eval()
    triples = random_triples(9, model.config.vocab_size, seed=1)
    with torch.no_grad():
        chosen, rejected = packed_last_hidden(model.base_model, pack_pairs(triples, pad_id=0), CPU)
        for side, packed_hidden in ((1, chosen), (2, rejected)):
            ids, mask = pad_right([t[0] + t[side] for t in triples], 0)
            hidden = model.base_model(input_ids=ids, attention_mask=mask,
                                      position_ids=position_ids_for(mask)).last_hidden_state
            expected = hidden[torch.arange(len(triples)), mask.sum(-1) - 1]
            torch.testing.assert_close(packed_hidden, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("count", [1, 32])
def test_packing_uses_few_padded_tokens(count):
    triples = random_triples(count, 100, seed=2)
    packed = pack_pairs(triples, pad_id=0)
    real = sum(len(p) + len(c) + len(r) for p, c, r in triples)
    assert packed.input_ids.numel() < real * 1.3


def test_token_logprobs_and_scores_are_packed_and_exact(tiny_base_model):
    from worker.training.reward_model import token_scores

    policy = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
    value = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=1, pad_token_id=0)
    value.eval()
    rng = random.Random(5)
    ids, mask = pad_right([[rng.randrange(3, 200) for _ in range(rng.randint(2, 30))] for _ in range(11)], 0)
    real = mask[:, 1:].bool()
    positions = position_ids_for(mask)
    calls = []
    policy.register_forward_hook(lambda module, args, kwargs, out: calls.append(kwargs["input_ids"].shape),
                                 with_kwargs=True)
    with torch.no_grad():
        logps, _ = token_logprobs(policy, ids, mask, temperature=0.7)
        logits = policy(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1] / 0.7
        expected = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None]).squeeze(-1)
        torch.testing.assert_close(logps[real], expected[real], atol=1e-4, rtol=1e-4)
        scores = token_scores(value, ids, mask)
        hidden = value.base_model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        torch.testing.assert_close(scores[mask.bool()], value.score(hidden).squeeze(-1)[mask.bool()],
                                   atol=1e-4, rtol=1e-4)
    # The packed call had fewer token slots than the padded batch.
    assert calls[0].numel() < ids.numel()


def test_pairs_are_tokenized_in_batch_as_each_text_alone(tiny_base_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    pairs = [PreferencePair("Tell me about the sea", "Blue waves.", "It is big & wet <b>!"),
             PreferencePair("Tell me about the sea", "It is big & wet <b>!", ""),
             PreferencePair("Café?", "Oui, très bien.", "No")]
    alone = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    expected = [([tokenizer.bos_token_id, *alone(p.prompt + "\n")], alone(p.chosen) + [tokenizer.eos_token_id],
                 alone(p.rejected) + [tokenizer.eos_token_id]) for p in pairs]
    assert encode_pairs(tokenizer, pairs, max_length=256) == expected
    # Truncated so that the prompt and either response fit.
    prompt, chosen, rejected = encode_pairs(tokenizer, pairs[:1], max_length=8)[0]
    assert len(prompt) + max(len(chosen), len(rejected)) <= 8

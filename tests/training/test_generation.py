import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training.generation import generate_responses
from worker.training.logprobs import token_logprobs
from worker.training.sequences import pad_prompt_response

# Prompts of different token lengths, so left padding is exercised.
PROMPTS = ["Tell me about the ocean.", "Describe the cat.", "Write a short story about the mountain.", "Review the dog."]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_base_model):
    return AutoModelForCausalLM.from_pretrained(tiny_base_model), AutoTokenizer.from_pretrained(tiny_base_model)


def test_left_padded_batch_matches_one_prompt_at_a_time(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    batched = generate_responses(model, tokenizer, PROMPTS, max_new_tokens=20, temperature=0, batch_size=4)
    alone = [generate_responses(model, tokenizer, [p], max_new_tokens=20, temperature=0)[0] for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]


def test_top_k_one_is_greedy(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    greedy = generate_responses(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=0)
    top1 = generate_responses(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=1.0, top_k=1, seed=5)
    assert [g.token_ids for g in greedy] == [g.token_ids for g in top1]


def test_sampling_is_deterministic_by_seed_and_varied(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = PROMPTS * 4
    first = generate_responses(model, tokenizer, prompts, max_new_tokens=16, seed=1, top_p=0.95)
    again = generate_responses(model, tokenizer, prompts, max_new_tokens=16, seed=1, top_p=0.95)
    other = generate_responses(model, tokenizer, prompts, max_new_tokens=16, seed=2, top_p=0.95)
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]
    assert len({g.text for g in first}) > 4


def test_eos_is_reported_and_length_is_capped(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    generated = generate_responses(model, tokenizer, PROMPTS * 4, max_new_tokens=6, seed=0)
    for g in generated:
        assert len(g.token_ids) <= 6
        assert g.ended_with_eos == (g.token_ids[-1] == tokenizer.eos_token_id)
        assert tokenizer.eos_token_id not in g.token_ids[:-1]
    assert not all(g.ended_with_eos for g in generated)


def test_right_padding_does_not_change_log_probs(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    generated = generate_responses(model, tokenizer, PROMPTS, max_new_tokens=12, seed=3)
    input_ids, attention_mask, response_mask = pad_prompt_response(
        [g.prompt_ids for g in generated], [g.token_ids for g in generated], tokenizer.pad_token_id
    )
    with torch.no_grad():
        batched, _ = token_logprobs(model, input_ids, attention_mask, temperature=0.7)
        for row, g in enumerate(generated):
            length = len(g.prompt_ids) + len(g.token_ids)
            alone, _ = token_logprobs(model, input_ids[row : row + 1, :length], attention_mask[row : row + 1, :length], 0.7)
            assert torch.allclose(batched[row, : length - 1], alone[0], atol=1e-5)
    # Response tokens sit exactly after their prompt.
    assert response_mask.sum(-1).tolist() == [len(g.token_ids) for g in generated]

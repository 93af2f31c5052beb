"""Fused kernels compute what the plain ones do."""

import torch
from transformers import AutoModelForCausalLM
from transformers.activations import GELUTanh, NewGELUActivation

from worker.training.kernels import adamw, use_fused_activations


def test_fused_gelu_matches_the_models_own_outputs_and_gradients(tiny_base_model):
    ids = torch.randint(3, 200, (3, 17))
    results = []
    for fused in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
        if fused:
            use_fused_activations(model)
        kinds = {type(m) for m in model.modules()}
        assert (GELUTanh in kinds, NewGELUActivation in kinds) == (fused, not fused)
        logits = model(input_ids=ids).logits
        logits.logsumexp(-1).sum().backward()
        results.append((logits.detach(), model.transformer.h[0].mlp.c_fc.weight.grad))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-4, rtol=1e-3)


def test_saved_config_keeps_its_activation(tiny_base_model, tmp_path):
    model = use_fused_activations(AutoModelForCausalLM.from_pretrained(tiny_base_model))
    model.save_pretrained(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.activation_function == "gelu_new"


def test_fused_adamw_takes_the_same_steps_as_the_plain_one():
    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    finals = []
    for make in (lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.01), lambda ps: adamw(ps, lr=1e-2, weight_decay=0.01)):
        params = [p.clone().requires_grad_() for p in start]
        optimizer = make(params)
        for step in range(5):
            loss = (params[0].sin() @ params[1]).square().sum() + step
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        finals.append(params)
    assert adamw([start[0].clone().requires_grad_()], lr=1e-2).defaults["fused"]
    for plain, fused in zip(*finals):
        torch.testing.assert_close(plain, fused, atol=1e-6, rtol=1e-5)

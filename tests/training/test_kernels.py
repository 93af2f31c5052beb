"""Fused activations compute what the model's own ones do."""

import torch
from transformers import AutoModelForCausalLM
from transformers.activations import GELUTanh, NewGELUActivation

from worker.training.kernels import use_fused_activations


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

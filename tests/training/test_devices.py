"""Precision and the memory a round needs, decided before anything loads."""

import pytest
import torch

from worker.training.devices import GIB, DoesNotFit, available_bytes, check_fits, memory_needed, resolve_dtype


def test_auto_precision_is_float32_on_the_cpu():
    assert resolve_dtype("auto", torch.device("cpu")) == "float32"
    assert resolve_dtype("bfloat16", torch.device("cpu")) == "bfloat16"


def test_the_estimate_counts_what_each_trainer_keeps():
    seven_b = 7_000_000_000
    assert memory_needed(seven_b, ["dpo"], lora=False) == 20 * seven_b
    assert memory_needed(seven_b, ["reward_model", "ppo"], lora=False) == 40 * seven_b
    assert memory_needed(seven_b, ["reward_model", "ppo"], lora=True) == 12 * seven_b
    assert available_bytes(torch.device("cpu")) > 0


def test_a_round_that_cannot_fit_says_what_it_needs_and_what_there_is():
    with pytest.raises(DoesNotFit, match=r"needs about 130\.4 GiB on cpu \(7000M parameters, full weights, dpo\) "
                                         r"and there are 24\.0 GiB: use LoRA"):
        check_fits(7_000_000_000, ["dpo"], lora=False, device=torch.device("cpu"), limit_bytes=24 * GIB)
    assert check_fits(7_000_000_000, ["dpo"], lora=True, device=torch.device("cpu"), limit_bytes=40 * GIB) > 0

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
    assert check_fits(7_000_000_000, ["dpo"], lora=True, device=torch.device("cpu"), limit_bytes=40 * GIB).needed > 0


def test_auto_shards_what_fits_only_sharded(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    gpu, seventy_b = torch.device("cuda"), 70_000_000_000
    # DPO with LoRA on a 70B base: 280 GB whole, 35 GB a GPU sharded across 8.
    fit = check_fits(seventy_b, ["dpo"], lora=True, device=gpu, limit_bytes=80 * GIB, processes=8)
    assert fit.sharded and fit.needed == 4 * seventy_b // 8
    # What fits whole trains with DDP; one process shards nothing.
    assert not check_fits(1_000_000_000, ["dpo"], lora=False, device=gpu, limit_bytes=80 * GIB, processes=8).sharded
    assert not check_fits(1_000_000, ["dpo"], lora=False, device=gpu, limit_bytes=80 * GIB, sharding="fsdp").sharded
    with pytest.raises(DoesNotFit, match=r"and there are 80\.0 GiB: shard the weights across processes \(FSDP\)"):
        check_fits(seventy_b, ["dpo"], lora=True, device=gpu, limit_bytes=80 * GIB, processes=8, sharding="ddp")
    with pytest.raises(DoesNotFit, match=r"full weights, dpo, 8 processes, sharded\) .* use LoRA \(lora_r\), "
                                         r"shard them across more GPUs"):
        check_fits(seventy_b, ["dpo"], lora=False, device=gpu, limit_bytes=80 * GIB, processes=8)
    # PPO with LoRA on a 70B base (840 GB) fits no one machine of 8 80 GB GPUs; 2 such machines shard it to 52 GB.
    ppo = ["reward_model", "ppo"]
    with pytest.raises(DoesNotFit):
        check_fits(seventy_b, ppo, lora=True, device=gpu, limit_bytes=80 * GIB, processes=8)
    fit = check_fits(seventy_b, ppo, lora=True, device=gpu, limit_bytes=80 * GIB, processes=8, nodes=2)
    assert fit.sharded and fit.needed == -(-memory_needed(seventy_b, ppo, True) // 16)
    # CPU processes share one memory: DDP's copies add up, FSDP's shards make one.
    cpu = torch.device("cpu")
    fit = check_fits(1_000_000_000, ["reward_model"], lora=False, device=cpu, limit_bytes=20 * GIB, processes=2)
    assert fit.sharded and fit.needed == 16 * 1_000_000_000



@pytest.mark.parametrize("lora_r", [0, 4])
def test_gradient_checkpointing_recomputes_each_layer_and_trains_the_same(tmp_path, tiny_base_model, colour_pairs,
                                                                          lora_r):
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP

    from worker.training import DPOConfig, run_dpo

    calls = []
    original = GPT2MLP.forward  # inside the checkpointed block: runs again when recomputed

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return original(self, *args, **kwargs)

    runs = {}
    for checkpointing in (False, True):
        calls.clear()
        config = DPOConfig(epochs=1, batch_size=16, max_steps=2, lora_r=lora_r, gradient_checkpointing=checkpointing)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(GPT2MLP, "forward", counted)
            runs[checkpointing] = (run_dpo(tiny_base_model, colour_pairs, config, tmp_path / f"{checkpointing}"),
                                   len(calls), sum(calls))
    (plain, plain_calls, with_grad), (checkpointed, checkpointed_calls, _) = runs[False], runs[True]
    # Every block that ran with gradients runs once more: recomputed in the backward pass.
    assert with_grad > 0 and checkpointed_calls == plain_calls + with_grad
    # Dropout stays off in training mode: the same steps, the same losses.
    assert checkpointed.metrics["loss"] == pytest.approx(plain.metrics["loss"], abs=1e-5)
    assert checkpointed.metrics["reward_margin"] == pytest.approx(plain.metrics["reward_margin"], abs=1e-5)

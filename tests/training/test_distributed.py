"""Two processes under torchrun (DDP or FSDP over gloo, on this CPU) train as one process does.

Each trainer runs once in this process and once on two processes (worker.training.launch),
from the same data and seed. The runs may differ by float rounding only: a rank packs and sums
its half of a batch in another order, and gloo adds the halves of each gradient. AdamW divides
each step by the root of the gradient's running square, so a weight whose gradient is near 0
turns a rounding difference into a step of its own. Measured here, the two runs' weights lie
within 0.07% of the distance training moved them (reward model 0.02%, DPO 0.04%, PPO 0.0003%)
and their steps' losses within 2e-7. The tolerances are 1% and 1e-5: averaging the ranks' own
means instead of weighing them by their share of the batch (DistributedSampler's way) misses
the loss's at once.

Sharded runs (FSDP) are held to the same tolerances: each rank gathers whole layers for its
forward passes and the ranks reduce-scatter the gradients, the same sums in another order
again. Measured here, with the watch on for DPO and PPO: weights within 0.05% of the distance
moved (DPO), 0.003% (reward model), 0.0004% (PPO), 0.001% and 0.00003% with LoRA (DPO, reward
model), losses within 1e-7. Each rank holds half of every model's parameters: 74,624 of the
tiny policy's 149,248, 78,720 of 157,440 with LoRA; of the reward model's 149,312, 74,688 and
74,624 (its head's one row sits whole on rank 0)."""

import dataclasses
import math
import random
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing
from peft import TaskType
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from simulation.rules import satisfaction
from tests.training.conftest import corpus_pairs, job_processes
from worker.training import (
    DPOConfig,
    PPOConfig,
    RewardModelConfig,
    TrainingCancelled,
    builtin_prompts,
    fit_reward_model,
)
from worker.training.checkpoint_io import ADAPTER_WEIGHTS
from worker.training.corpus import sample_response
from worker.training.data import UnaryExample
from worker.training.distributed import Ranks, local_part
from worker.training.launch import run_trainer
from worker.training.lora import add_lora
from worker.training.watch import WatchConfig

pytestmark = pytest.mark.slow

WEIGHTS_TOLERANCE = 0.01  # of the distance training moved the weights
LOSS_TOLERANCE = 1e-5
WATCH = WatchConfig(prompts=[p.text for p in builtin_prompts(1)[:6]], every=3, kl_budget=50.0, max_new_tokens=16)


def run_both(trainer: str, tmp_path: Path, **arguments) -> list[tuple]:
    """The trainer on one process, then on two: (result, weights, steps' metrics) of each."""
    runs = []
    for processes in (1, 2):
        seen = []
        result = run_trainer(trainer, processes, tmp_path / f"job-{processes}", out_dir=tmp_path / f"out-{processes}",
                             on_metrics=lambda step, metrics: seen.append((step, metrics)), **arguments)
        adapter = result.out_dir / ADAPTER_WEIGHTS
        runs.append((result, load_file(adapter if adapter.exists() else result.out_dir / "model.safetensors"), seen))
    return runs


def assert_same_training(runs: list[tuple], start: Path) -> None:
    (_, one, one_steps), (_, two, two_steps) = runs
    assert [step for step, _ in one_steps] == [step for step, _ in two_steps]
    for (_, a), (_, b) in zip(one_steps, two_steps):
        assert a["loss"] == pytest.approx(b["loss"], abs=LOSS_TOLERANCE)
    parent = load_file(start / "model.safetensors")
    apart = math.sqrt(sum(((one[k] - two[k]).double() ** 2).sum().item() for k in one))
    # Of the tensors the parent lacks (an adapter's), the B matrices start at zero: their size is how far they moved.
    moved = math.sqrt(sum(((one[k] - parent[k]).double() ** 2).sum().item() if k in parent
                          else (one[k].double() ** 2).sum().item() * ("lora_B" in k) for k in one))
    print(f"{apart / moved:.2e} of the distance moved apart; losses within "
          f"{max(abs(a['loss'] - b['loss']) for (_, a), (_, b) in zip(one_steps, two_steps)):.1e}")
    assert moved > 0 and apart < WEIGHTS_TOLERANCE * moved, (apart, moved)


def rated_thumbs(count: int) -> list[UnaryExample]:
    rng = random.Random(0)
    thumbs = []
    for prompt in builtin_prompts(2)[:count]:
        response = sample_response(prompt.topic, rng)
        thumbs.append(UnaryExample(prompt.text, response, good=satisfaction("colour", prompt.text, response) >= 1))
    return thumbs


def assert_same_reward_model(runs: list[tuple], start: Path) -> None:
    assert_same_training(runs, start)
    (one, _, _), (two, _, _) = runs
    for name in ("eval_accuracy", "reward_mean", "reward_std"):
        assert two.metrics[name] == pytest.approx(one.metrics[name], abs=1e-4)


def assert_same_watched_dpo(runs: list[tuple], start: Path) -> None:
    assert_same_training(runs, start)
    (one, _, _), (two, _, _) = runs
    # Both runs kept the same step and saw the same held-out figures.
    assert two.report["kept_step"] == one.report["kept_step"] > 0
    assert two.report["checks"] == one.report["checks"] and two.report["stopped"] == one.report["stopped"]
    assert two.report["kl"] == pytest.approx(one.report["kl"], abs=1e-3)
    assert two.metrics["heldout_accuracy"] == one.metrics["heldout_accuracy"]


def test_two_processes_fit_the_reward_model_one_process_fits(tmp_path, tiny_base_model):
    # Uneven rater weights, so that the ranks' halves of a batch weigh differently; 81 comparisons,
    # 16 held out, make a last batch of one, which the second rank computes at weight 0.
    pairs = [dataclasses.replace(p, weight=0.5 + (i % 3) / 2) for i, p in enumerate(corpus_pairs("colour", 81))]
    config = RewardModelConfig(epochs=2, batch_size=16, learning_rate=1e-3, eval_fraction=0.2)
    runs = run_both("reward_model", tmp_path, policy_dir=tiny_base_model, comparisons=pairs, config=config,
                    unary=rated_thumbs(20))
    assert_same_reward_model(runs, tiny_base_model)
    (one, _, one_steps), _ = runs
    assert one.metrics["steps"] == 2 * 5 and "thumb_loss" in one_steps[-1][1]


def test_two_processes_run_dpo_as_one_process_does(tmp_path, tiny_base_model, colour_pairs):
    config = DPOConfig(epochs=2, batch_size=16, learning_rate=3e-4, eval_fraction=0.2)
    runs = run_both("dpo", tmp_path, policy_dir=tiny_base_model, pairs=colour_pairs, config=config, watch=WATCH)
    assert_same_watched_dpo(runs, tiny_base_model)  # rank 0 watched


@pytest.mark.parametrize("lora_r", [0, 4])
def test_fsdp_fits_the_reward_model_one_process_fits(tmp_path, tiny_base_model, lora_r):
    # 41 comparisons, 8 held out, make a last batch of one: the second rank computes it at weight 0.
    pairs = [dataclasses.replace(p, weight=0.5 + (i % 3) / 2) for i, p in enumerate(corpus_pairs("colour", 41))]
    config = RewardModelConfig(epochs=1, batch_size=16, learning_rate=1e-3, eval_fraction=0.2, lora_r=lora_r,
                               sharded=True)
    runs = run_both("reward_model", tmp_path, policy_dir=tiny_base_model, comparisons=pairs, config=config,
                    unary=rated_thumbs(10))
    assert_same_reward_model(runs, tiny_base_model)


# LoRA with gradient checkpointing, as rounds train models large enough to need sharding.
@pytest.mark.parametrize(("lora_r", "checkpointing"), [(0, False), (4, True)])
def test_fsdp_runs_watched_dpo_as_one_process_does(tmp_path, tiny_base_model, colour_pairs, lora_r, checkpointing):
    config = DPOConfig(epochs=1, batch_size=16, learning_rate=3e-4, eval_fraction=0.2, lora_r=lora_r,
                       gradient_checkpointing=checkpointing, sharded=True)
    runs = run_both("dpo", tmp_path, policy_dir=tiny_base_model, pairs=colour_pairs, config=config, watch=WATCH)
    assert_same_watched_dpo(runs, tiny_base_model)  # every rank watched, in lockstep


def test_fsdp_holds_half_of_every_model_on_each_rank(tiny_base_model):
    held = torch.multiprocessing.get_context("spawn").SimpleQueue()
    with socket.socket() as free:  # a port for the ranks to meet on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    torch.multiprocessing.start_processes(_count_held_parameters, (2, port, tiny_base_model, held), nprocs=2,
                                          start_method="spawn")
    counts = sorted(held.get() for _ in range(2 * 3))  # two ranks, three models
    for model in ("policy", "lora policy", "reward model"):
        (_, _, first, total), (_, _, second, _) = [c for c in counts if c[0] == model]
        print(f"{model}: {first} and {second} of {total} parameters")
        assert first + second == total and abs(first - second) < 0.01 * total


def _count_held_parameters(rank: int, world: int, port: int, model_dir: Path, held) -> None:
    """On each of `world` spawned ranks: how many of each model's parameters it holds once placed."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    ranks = Ranks(rank, world, sharded=True)
    models = {"policy": AutoModelForCausalLM.from_pretrained(model_dir),
              "lora policy": add_lora(AutoModelForCausalLM.from_pretrained(model_dir), 4, 16, TaskType.CAUSAL_LM),
              "reward model": AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)}
    for name, model in models.items():
        total = sum(p.numel() for p in model.parameters())
        ranks.place(model, torch.device("cpu"))
        held.put((name, rank, sum(local_part(p).numel() for p in model.parameters()), total))
    dist.destroy_process_group()


def test_two_processes_run_ppo_as_one_process_does(tmp_path, tiny_base_model, colour_pairs):
    reward_model = fit_reward_model(tiny_base_model, colour_pairs, RewardModelConfig(epochs=1, batch_size=16),
                                    tmp_path / "reward-model").out_dir
    config = PPOConfig(steps=4, rollout_batch_size=16, minibatch_size=8, ppo_epochs=2, max_new_tokens=16,
                       learning_rate=3e-5)
    runs = run_both("ppo", tmp_path, policy_dir=tiny_base_model, reward_model_dir=reward_model,
                    prompts=[p.text for p in builtin_prompts()[:40]], config=config)
    assert_same_training(runs, tiny_base_model)
    (_, _, one_steps), (_, _, two_steps) = runs
    # Every rank sampled the same rollouts: the ones one process samples.
    assert [m["response_length"] for _, m in two_steps] == [m["response_length"] for _, m in one_steps]


def test_fsdp_runs_watched_ppo_as_one_process_does(tmp_path, tiny_base_model, colour_pairs):
    reward_model = fit_reward_model(tiny_base_model, colour_pairs, RewardModelConfig(epochs=1, batch_size=16),
                                    tmp_path / "reward-model").out_dir
    config = PPOConfig(steps=3, rollout_batch_size=16, minibatch_size=8, ppo_epochs=2, max_new_tokens=16,
                       learning_rate=3e-5, sharded=True)
    runs = run_both("ppo", tmp_path, policy_dir=tiny_base_model, reward_model_dir=reward_model,
                    prompts=[p.text for p in builtin_prompts()[:40]], config=config, watch=WATCH)
    assert_same_training(runs, tiny_base_model)
    (one, _, one_steps), (two, _, two_steps) = runs
    assert [m["response_length"] for _, m in two_steps] == [m["response_length"] for _, m in one_steps]
    assert two.report["kept_step"] == one.report["kept_step"] > 0
    assert two.report["kl"] == pytest.approx(one.report["kl"], abs=1e-3)


def test_a_cancelled_job_stops_every_rank_and_leaves_nothing(tmp_path, tiny_base_model, colour_pairs):
    job, steps = tmp_path / "job", []
    with pytest.raises(TrainingCancelled):
        run_trainer("reward_model", 2, job, policy_dir=tiny_base_model, comparisons=colour_pairs,
                    config=RewardModelConfig(epochs=1000, batch_size=16), out_dir=tmp_path / "out",
                    on_metrics=lambda step, metrics: steps.append(step), should_stop=lambda: bool(steps))
    assert steps and job_processes(job) == {} and list(tmp_path.iterdir()) == [job]

"""Where training runs, in which precision, and whether it fits.

Memory is estimated before a round loads anything, from the parameter count
and what each trainer keeps: float32 weights (4 bytes a parameter), and for
what it trains a gradient and AdamW's two moments (12 more). Full weights:
the reward model 16 P, DPO 20 P (the policy and a frozen copy the watch
measures KL against), PPO 40 P (policy, frozen reference, value model and
reward scorer). With LoRA the base is shared and frozen: about 4 P per model
loaded, adapters being a small fraction. Activations are left out (they scale
with the batch, not the model): the estimate is a floor, and a round that
does not clear it fails at once instead of after loading.

On several processes, DDP has every process hold all of that; FSDP
(worker.training.distributed) has each hold 1/N of it, so a model that fits only
across N GPUs trains sharded.
"""

import contextlib
import os
from dataclasses import dataclass

import torch

GIB = 1024**3
# Bytes per parameter a round keeps, by trainer: (full weights, LoRA).
BYTES_PER_PARAMETER = {"reward_model": (16, 4), "dpo": (20, 4), "ppo": (40, 12)}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_for(device: torch.device, dtype: str):
    """bf16 autocast when asked for; weights and optimiser state stay float32."""
    if dtype == "float32":
        return contextlib.nullcontext()
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown dtype {dtype!r}; use 'float32' or 'bfloat16'")


def resolve_dtype(name: str, device: torch.device) -> str:
    """"auto": bfloat16 where the device computes in it natively (recent CUDA GPUs), float32 elsewhere."""
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


def available_bytes(device: torch.device) -> int:
    """Free memory on the device: the GPU's, or the machine's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def memory_needed(parameters: int, trainers: list[str], lora: bool) -> int:
    """The estimated floor, in bytes, of the largest phase of a round."""
    return max(parameters * BYTES_PER_PARAMETER[t][1 if lora else 0] for t in trainers)


class DoesNotFit(Exception):
    """A round's memory estimate exceeds what the device has."""


@dataclass(frozen=True)
class Fit:
    needed: int  # bytes of the estimate, on each device (the machine's one memory for CPU processes)
    sharded: bool  # whether the round trains with FSDP


def check_fits(parameters: int, trainers: list[str], lora: bool, device: torch.device,
               limit_bytes: int | None = None, processes: int = 1, sharding: str = "auto", nodes: int = 1) -> Fit:
    """How a round trains on `processes` processes (one a GPU) on each of `nodes` machines, and its
    estimate for one device (or one machine's memory, on CPUs); raise DoesNotFit with the numbers
    when that exceeds the device's free memory (or the operator's limit), or when the processes
    outnumber the GPUs.

    `sharding`: "ddp" (every process holds whole weights), "fsdp" (each of the N = nodes x
    processes holds 1/N of them) or "auto": DDP when whole weights fit each device, else FSDP.
    One process shards nothing. Processes on the CPU share their machine's one memory: DDP's
    copies add up there, FSDP's shards to the machine's share of one copy."""
    if sharding not in ("auto", "ddp", "fsdp"):
        raise ValueError(f"unknown sharding {sharding!r}; use 'auto', 'ddp' or 'fsdp'")
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise DoesNotFit(f"{processes} training processes need a GPU each and there are {torch.cuda.device_count()}")
    whole = memory_needed(parameters, trainers, lora)

    def on_each_device(sharded: bool) -> int:
        if device.type == "cpu":
            return -(-whole // nodes) if sharded else whole * processes
        return -(-whole // (processes * nodes)) if sharded else whole

    options = {"ddp": [False], "fsdp": [True], "auto": [False, True]}[sharding]
    there = available_bytes(device) if limit_bytes is None else limit_bytes
    for sharded in [option and processes * nodes > 1 for option in options]:
        needed = on_each_device(sharded)
        if needed <= there:
            return Fit(needed, sharded)
    hints = ["use LoRA (lora_r)"] if not lora else []
    if not sharded and (device.type == "cuda" or processes * nodes > 1):
        hints.append("shard the weights across processes (FSDP)")
    elif sharded and device.type == "cuda":
        hints.append("shard them across more GPUs")
    raise DoesNotFit(
        f"this round needs about {needed / GIB:.1f} GiB on {device.type} ({parameters / 1e6:.0f}M parameters, "
        f"{'LoRA' if lora else 'full weights'}, {', '.join(trainers)}"
        + (f", {nodes} nodes" if nodes > 1 else "")
        + (f", {processes} processes{', sharded' if sharded else ''}" if processes * nodes > 1 else "")
        + f") and there are {there / GIB:.1f} GiB: "
        + ", ".join(hints + ["a smaller model, or a device with more memory"]))


def prepare_for_training(model: torch.nn.Module, gradient_checkpointing: bool) -> torch.nn.Module:
    """Put a model the trainers optimise in the mode they train it in: dropout off (the policy and
    its reference must give the same log-probs, as every RLHF trainer does), and, when asked,
    gradient checkpointing: each layer's activations are recomputed in the backward pass instead
    of kept, for about a third more compute. Transformers recomputes only in training mode, so
    that mode is on with every dropout probability set to 0; otherwise the model is in eval mode."""
    if not gradient_checkpointing:
        return model.eval()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0  # Llama-style attention reads a float in training mode
    return model.train()

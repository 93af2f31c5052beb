"""Several processes training as one; one process is its plain case.

torchrun (worker.training.launch) starts one process per device and tells each its
RANK and WORLD_SIZE; worker.training.job joins them into a process group (gloo on
CPUs, nccl on GPUs). Every rank reads the same data with the same seeds, so every
rank draws the same global batch; each computes its own contiguous part of it
(`shard`), and the ranks average their gradients in the backward pass. A rank's
loss, a mean over its part, is scaled by `share`, so that the averaged gradient is
the gradient of the mean over the whole batch: N processes with B/N rows each take
the steps one process takes with B rows, up to float rounding (sums taken in
another order). Step metrics come from the whole batch's values (`gather`).

How the ranks hold the models (`place`):

- DDP (`sharded` False): every rank holds whole weights, and DDP all-reduces the
  gradients. Rank 0 alone runs the passes that only measure (the watch, held-out
  figures, the reward model's normalisation) and saves; it tells the others whether
  to stop (`from_main`).
- FSDP (`sharded` True; torch's FSDP2 `fully_shard`): each rank holds 1/N of every
  weight, gradient and optimiser moment, so a model N devices hold together trains
  where one device could not hold it. A forward pass gathers each layer's weights
  from all ranks as it reaches it, so every forward pass is a collective: every rank
  runs every pass in lockstep, the measuring ones included, and takes rank 0's
  decisions (`agree`). The save gathers the whole state dict onto rank 0's CPU
  (`whole_state_dict`), which writes it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from worker.training.lora import unwrap_model

T = TypeVar("T")


@dataclass(frozen=True)
class Shard(Generic[T]):
    """This rank's part of a global batch."""

    rows: list[T]
    # False when the part would be empty (a batch with fewer rows than ranks): `rows` is then the
    # batch's first row, computed at weight 0, as every rank takes part in every gradient reduction.
    counted: bool = True


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    sharded: bool = False  # FSDP: each rank holds 1/world of every weight (see the module's docstring)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def measures(self) -> bool:
        """Whether this rank runs the passes that only measure (the watch, held-out figures): rank 0
        alone with whole weights, every rank with sharded ones."""
        return self.main or self.sharded

    def shard(self, batch: list[T]) -> Shard[T]:
        size = -(-len(batch) // self.world)
        rows = batch[self.rank * size : (self.rank + 1) * size]
        return Shard(rows) if rows or not batch else Shard(batch[:1], counted=False)

    def share(self, shard: Shard, part: float, whole: float) -> float:
        """The factor for a loss averaged over `part` of a batch's weight (this rank's rows) that
        makes the gradients DDP averages over the ranks those of the loss averaged over the whole
        batch's weight `whole`."""
        return self.world * part / whole if shard.counted and whole > 0 else 0.0

    def gather(self, values: torch.Tensor, shard: Shard) -> torch.Tensor:
        """The ranks' `values` (a row per row of their shard) in rank order: the whole batch's
        values, as one process computes them. A stand-in's are left out."""
        if self.world == 1:
            return values
        values = values.detach() if shard.counted else values[:0].detach()
        sizes = [torch.zeros(1, dtype=torch.long, device=values.device) for _ in range(self.world)]
        dist.all_gather(sizes, torch.tensor([len(values)], device=values.device))
        longest = max(int(size) for size in sizes)
        padded = torch.zeros((longest, *values.shape[1:]), dtype=values.dtype, device=values.device)
        padded[: len(values)] = values
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([part[: int(size)] for part, size in zip(parts, sizes)])

    def from_main(self, value: T) -> T:
        """Rank 0's `value` on every rank: what rank 0 alone decided (the watch's verdict), or drew."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, value: T) -> T:
        """What the ranks that run the measuring passes decide from them: rank 0's `value` under
        FSDP, where every rank runs them (`from_main`); `value` itself where rank 0 alone does."""
        return self.from_main(value) if self.sharded else value

    def place(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` on `device`: whole, or under FSDP this rank's shard of it, in units that each
        gather their weights for a forward pass and free them after it: every decoder layer, then
        each part the trainers call (a sequence classifier's body and head, which
        worker.training.reward_model calls apart; any other model whole). Gradients are reduced
        in float32."""
        if not self.sharded:
            return model.to(device)
        mesh = init_device_mesh(device.type, (self.world,))
        precision = MixedPrecisionPolicy(reduce_dtype=torch.float32)
        layers = set(model._no_split_modules or ())  # transformers' names for its decoder layer classes
        for module in [m for m in model.modules() if type(m).__name__ in layers]:
            fully_shard(module, mesh=mesh, mp_policy=precision)
        inner = unwrap_model(model)
        head = getattr(inner, "score", None)
        for unit in [inner.base_model, head] if head is not None else [model]:
            fully_shard(unit, mesh=mesh, mp_policy=precision)
        return model

    def whole_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """Under FSDP, `model`'s whole state dict on rank 0's CPU, for it to save (a collective:
        every rank calls it; the others get an empty dict). None where the model is whole already."""
        if not self.sharded:
            return None
        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def data_parallel(self, *models: nn.Module) -> Callable[[Callable[[], T]], T]:
        """`train_pass(forward)`: runs `forward()`, the forward pass of a training step on `models`
        (`place`d), so that its backward pass averages their gradients across the ranks. DDP arms
        that reduction in its own forward; running the step's forward inside it lets the trainers
        call their models as they like (whole, a body and a head apart, packed). FSDP's units
        reduce their own gradients, whoever calls them."""
        if self.world == 1 or self.sharded:
            return lambda forward: forward()
        device = next(models[0].parameters()).device
        # Buffers are constants here (attention masks); rank 0 alone runs the watch's forward passes.
        return DistributedDataParallel(_Forward(models), forward_sync_buffers=False,
                                       device_ids=[device.index] if device.type == "cuda" else None)


class _Forward(nn.Module):
    """The module DDP wraps: it holds the trained models and runs the forward it is handed."""

    def __init__(self, models: tuple[nn.Module, ...]):
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, run: Callable[[], T]) -> T:
        return run()


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded (FSDP) parameter; a whole one as it is."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def current_ranks(sharded: bool = False) -> Ranks:
    """The process group this process belongs to (worker.training.job), or one process alone;
    `sharded`: FSDP when there are several."""
    if not dist.is_initialized():
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), sharded and dist.get_world_size() > 1)

"""Data parallelism over the processes torchrun starts; one process is its plain case.

torchrun (worker.training.launch) starts one process per device and tells each its
RANK and WORLD_SIZE; worker.training.job joins them into a process group (gloo on
CPUs, nccl on GPUs). Every rank reads the same data with the same seeds, so every
rank draws the same global batch; each computes its own contiguous part of it
(`shard`), and DDP averages the gradients across ranks in the backward pass. A
rank's loss, a mean over its part, is scaled by `share`, so that the averaged
gradient is the gradient of the mean over the whole batch: N processes with B/N
rows each take the steps one process takes with B rows, up to float rounding
(sums taken in another order). Step metrics come from the whole batch's values
(`gather`). The watch, held-out figures and the checkpoint are rank 0's alone
(`main`); it tells the others whether to stop (`from_main`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

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

    @property
    def main(self) -> bool:
        return self.rank == 0

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

    def data_parallel(self, *models: nn.Module) -> Callable[[Callable[[], T]], T]:
        """`train_pass(forward)`: runs `forward()`, the forward pass of a training step on `models`,
        so that its backward pass averages their gradients across the ranks (DDP). DDP arms that
        reduction in its own forward; running the step's forward inside it lets the trainers call
        their models as they like (whole, a body and a head apart, packed)."""
        if self.world == 1:
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


def current_ranks() -> Ranks:
    """The process group this process belongs to (worker.training.job), or one process alone."""
    if not dist.is_initialized():
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size())

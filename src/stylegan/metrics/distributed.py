"""Metrics across processes (``torchrun``): the work is cut into numbered batches, batch ``b`` runs on
process ``b mod world``, and process 0 receives every batch's result in batch order.

Each batch draws its random numbers from its own seed (:func:`batch_seeds`) and has the same size
and content however many processes there are, so process 0 accumulates exactly the numbers one
process would, in the same order: the metric is bit-for-bit the one-process value (on the same
kind of device). This mirrors what NVIDIA's multi-GPU metrics do (each GPU a strided share,
results collected), without their dependence of the random samples on the GPU count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's place in the group: ``rank`` of ``world``; ``device`` carries the collectives."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_shard() -> Shard:
    """The process group ``torchrun`` set up (and that the caller joined), or a single process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return Shard()
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return Shard(dist.get_rank(), dist.get_world_size(), device)


def batch_seeds(seed: int, batch: int, count: int = 3) -> list[int]:
    """``count`` independent 32-bit seeds for batch number ``batch`` of a metric run with ``seed``
    (one per random stream: latents, labels, noise inputs...)."""
    return [int(s) for s in np.random.SeedSequence([seed % 2**63, batch]).generate_state(count)]


def gather_rows(shard: Shard, rows: torch.Tensor | None, dtype: torch.dtype) -> list[torch.Tensor]:
    """Every process's ``rows`` (a 2-D tensor, or None for nothing) in rank order, on every process."""
    if shard.world == 1:
        return [] if rows is None else [rows.to("cpu", dtype)]
    shape = list(rows.shape) if rows is not None else [0, 0]
    if len(shape) != 2:
        raise ValueError(f"gather_rows takes 2-D tensors, got shape {tuple(shape)}")
    meta = torch.tensor(shape, dtype=torch.int64, device=shard.device)
    metas = [torch.empty_like(meta) for _ in range(shard.world)]
    dist.all_gather(metas, meta)
    sizes = [tuple(int(v) for v in m.tolist()) for m in metas]
    n_max, d_max = max(s[0] for s in sizes), max(s[1] for s in sizes)
    buf = torch.zeros([n_max, d_max], dtype=dtype, device=shard.device)
    if rows is not None:
        buf[:shape[0], :shape[1]] = rows.to(shard.device, dtype)
    bufs = [torch.empty_like(buf) for _ in range(shard.world)]
    dist.all_gather(bufs, buf)
    return [b[:n, :d].cpu() for b, (n, d) in zip(bufs, sizes) if n > 0]


def sharded_map(fn: Callable[[int], torch.Tensor], num_batches: int, shard: Shard,
                dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
    """``fn(b)`` for ``b`` in ``range(num_batches)``, each computed by process ``b mod world``. Process 0
    gets the results (2-D, on the CPU) in batch order; the other processes get nothing but must
    exhaust the iterator too (it runs the collectives)."""
    for start in range(0, num_batches, shard.world):
        b = start + shard.rank
        out = fn(b) if b < num_batches else None
        parts = gather_rows(shard, None if out is None else out.reshape(len(out), -1), dtype)
        if shard.is_main:
            yield from parts


def broadcast_flag(shard: Shard, flag: bool) -> bool:
    """Process 0's ``flag`` on every process."""
    if shard.world == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=shard.device)
    dist.broadcast(t, src=0)
    return bool(t.item())

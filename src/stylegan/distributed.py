"""Work shared over the processes ``torchrun`` starts (one per GPU, or CPU processes with gloo).

Joining the group (:func:`init`) and the batch-sharing scheme every command uses: the work is cut
into numbered batches whose size and content do not depend on the number of processes, batch ``b``
runs on process ``b mod world``, and the results are collected in batch order (:func:`sharded_map`).
Each batch is computed exactly as one process computes it, so the collected numbers are the
one-process numbers bit for bit (on the same kind of device). Training's own collectives (gradient
all-reduce, broadcasts of the networks) are in :mod:`stylegan.train.distributed`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where ``torchrun`` put this process: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Shard:
    """This process's place in the group: ``rank`` of ``world``; ``device`` carries the collectives."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def batches(self, num_batches: int) -> range:
        """The batch numbers this process computes."""
        return range(self.rank, num_batches, self.world)


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init(device_name: str | torch.device = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (if any) and pick this process's device
    (``cuda:LOCAL_RANK`` under torchrun on GPUs, NCCL; gloo on CPUs)."""
    from .devices import pick_device
    if not launched_by_torchrun():
        return DistInfo(), pick_device(device_name)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    name = str(device_name or "auto")
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        from .errors import UserInputError
        raise UserInputError(f"--device {name}: multi-process runs use CUDA GPUs (NCCL) or CPUs (gloo)")
    use_cuda = torch.cuda.is_available() and name != "cpu"   # one GPU per process: cuda:LOCAL_RANK
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def current_shard() -> Shard:
    """The process group ``torchrun`` set up (and that the caller joined), or a single process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return Shard()
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return Shard(dist.get_rank(), dist.get_world_size(), device)


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
                dtype: torch.dtype = torch.float32, everywhere: bool = False) -> Iterator[torch.Tensor]:
    """``fn(b)`` for ``b`` in ``range(num_batches)``, each computed by process ``b mod world``, as 2-D
    CPU tensors in batch order: on process 0 only, or (``everywhere``) on every process. A process
    that gets nothing must still exhaust the iterator (it runs the collectives)."""
    for start in range(0, num_batches, shard.world):
        b = start + shard.rank
        out = fn(b) if b < num_batches else None
        parts = gather_rows(shard, None if out is None else out.reshape(len(out), -1), dtype)
        if shard.is_main or everywhere:
            yield from parts


def broadcast_flag(shard: Shard, flag: bool) -> bool:
    """Process 0's ``flag`` on every process."""
    if shard.world == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=shard.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_object(shard: Shard, obj):
    """Process 0's ``obj`` (anything picklable that process 0 made itself, e.g. random seeds) on every process."""
    if shard.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=shard.device)
    return box[0]


def gather_objects(shard: Shard, obj) -> list | None:
    """Every process's ``obj`` (picklable, CPU tensors) in rank order on process 0; None elsewhere.
    Only for data the processes of one job made themselves (it travels pickled between them)."""
    if shard.world == 1:
        return [obj]
    out = [None] * shard.world if shard.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out

"""Data-parallel training over processes started by ``torchrun`` (one per GPU, or CPU processes).

We synchronise by hand, as NVIDIA's StyleGAN3 loop does, instead of wrapping the networks in
``DistributedDataParallel``: a step runs several sub-networks and double-backward regularisers
(R1, path length) per phase, and one all-reduce of one flat gradient vector per optimiser step is
both simpler and exactly what the single-process gradient accumulation computes. Parameters start
identical (broadcast from rank 0); buffers are updated from all-reduced statistics, so they stay
identical too. NCCL on GPUs, gloo on CPUs; multi-node works as with any ``torchrun`` job.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init(device_name: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (if any) and pick this process's device."""
    from ..devices import pick_device
    if not launched_by_torchrun():
        return DistInfo(), pick_device(device_name)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    name = str(device_name or "auto")
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        from ..errors import UserInputError
        raise UserInputError(f"--device {name}: multi-process training runs on CUDA GPUs (NCCL) or CPUs (gloo)")
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


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """In-place sum over processes (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every process hold rank ``src``'s parameters and buffers."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` over processes as one flat tensor.

    Only parameters that have a gradient take part (which ones do is decided by the phase, so it is
    the same set in every process); the others stay ``None`` and the optimiser skips them, exactly
    as in a single process.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def any_flag(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is set in any process (e.g. a stop request)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    all_reduce_sum(t)
    return bool(t.item() > 0)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()

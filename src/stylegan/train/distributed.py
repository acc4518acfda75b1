"""Data-parallel training over processes started by ``torchrun`` (one per GPU, or CPU processes).

We synchronise by hand, as NVIDIA's StyleGAN3 loop does, instead of wrapping the networks in
``DistributedDataParallel``: a step runs several sub-networks and double-backward regularisers
(R1, path length) per phase, and one all-reduce of one flat gradient vector per optimiser step is
both simpler and exactly what the single-process gradient accumulation computes. Parameters start
identical (broadcast from rank 0); buffers are updated from all-reduced statistics, so they stay
identical too. NCCL on GPUs, gloo on CPUs; multi-node works as with any ``torchrun`` job. Joining
the group is :func:`stylegan.distributed.init`, shared with the other commands.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..distributed import DistInfo, barrier, init, launched_by_torchrun, shutdown  # noqa: F401 (the loop's entry points)


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

"""Choosing where to run: ``auto`` picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .errors import UserInputError

PRECISIONS = ("fp32", "fp16", "bf16")


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for but no CUDA GPU is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserInputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserInputError("--device mps was asked for but Apple's MPS backend is not available")
    return dev


def half_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The half dtype for ``precision`` on ``device``, or None for fp32; refuses what the device lacks."""
    if precision not in PRECISIONS:
        raise UserInputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if device.type != "cuda":
        raise UserInputError(f"--{precision} needs a CUDA GPU (this run is on {device.type}); "
                             f"the CPU and MPS paths run in fp32")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserInputError("--bf16: this GPU does not support bfloat16")
    return torch.float16 if precision == "fp16" else torch.bfloat16


THREADS_ENV = "STYLEGAN_THREADS"


def available_cpus() -> int:
    """The CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (containers,
    ``docker --cpus``, Slurm), never the host's core count."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def set_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads: ``threads``, else ``$STYLEGAN_THREADS``, else ``$OMP_NUM_THREADS`` (which torch
    reads itself), else :func:`available_cpus`.
    Returns the number set. On a shared machine, 1 or 2 threads are often several times faster than
    many spinning OpenMP threads (docs/operating.md)."""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                raise UserInputError(f"${THREADS_ENV} must be a whole number of threads, got {env!r}") from None
    if threads is not None and threads < 1:
        raise UserInputError(f"the number of threads must be at least 1, got {threads}")
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").strip():
        return torch.get_num_threads()          # torch already follows the standard OpenMP variable
    n = threads or available_cpus()
    torch.set_num_threads(n)
    return n

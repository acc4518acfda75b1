"""Choosing where to run: ``auto`` picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

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

"""Reading and writing models: our safetensors format, NVIDIA's PyTorch and TensorFlow pickles,
rosinality checkpoints. Every reader is safe: no code from a file is ever executed."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..networks import Discriminator, Generator
from .download import PUBLISHED, resolve
from .native import save_native
from .readers import detect_format, read_checkpoint
from .types import Checkpoint

BUILTIN_NAME = "builtin"
#: the models shipped inside the package, by the name ``--network`` takes (model cards in stylegan/pretrained/)
BUILTIN_MODELS = {"builtin": "builtin.safetensors", "builtin-sg3": "builtin-sg3.safetensors"}


def builtin_model_path(name: str = BUILTIN_NAME) -> Path:
    """Path of a model shipped inside the package (``builtin`` is used when no ``--network`` is given)."""
    return Path(__file__).resolve().parent.parent / "pretrained" / BUILTIN_MODELS[name]


def load_network(source: str | os.PathLike | None = None,
                 which: tuple[str, ...] = ("G_ema", "G", "D")) -> Checkpoint:
    """Load every network in a model file of any supported format (CPU, eval mode)."""
    name = BUILTIN_NAME if source is None else str(source)
    builtin = name in BUILTIN_MODELS
    if builtin:
        path = builtin_model_path(name)
        if not path.exists():
            raise CheckpointError(f"this installation has no built-in model {name!r}; pass --network PATH")
    else:
        path = resolve(source)
    ckpt = read_checkpoint(path, which)
    if builtin:
        ckpt.metadata.setdefault("builtin", name)
    return ckpt


def load_generator(source: str | os.PathLike | Checkpoint | None = None, device: str | torch.device = "cpu",
                   precision: str | None = None, which: str = "G_ema") -> Generator:
    """``G = stylegan.load_generator('model.pkl')``: the one way to get a generator ready to draw.

    ``source``: anything ``--network`` takes (None: the built-in model) or a :class:`Checkpoint` already
    read; ``device``: 'cpu', 'cuda', 'mps', 'auto'...; ``precision``: 'fp32' (None), 'fp16' or 'bf16' for
    the layers built for half precision. The EMA generator (``which``) in eval mode, without gradients.
    """
    from ..devices import half_dtype, pick_device
    dev = pick_device(device)
    half = half_dtype(precision or "fp32", dev)
    ckpt = source if isinstance(source, Checkpoint) else load_network(
        source, which=(which, "G") if which == "G_ema" else (which,))
    G = getattr(ckpt, which, None) or ckpt.generator()
    return G.to(dev).eval().requires_grad_(False).set_half_dtype(half)


def load_discriminator(source: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Discriminator:
    ckpt = load_network(source, which=("D",))
    return ckpt.discriminator().to(device)


def save_network(ckpt: Checkpoint, dest: str | os.PathLike) -> Path:
    """Write ``ckpt`` in our native format (``.safetensors`` file or folder)."""
    return save_native(ckpt, dest)


__all__ = ["Checkpoint", "CheckpointError", "load_network", "load_generator", "load_discriminator",
           "save_network", "detect_format", "builtin_model_path", "BUILTIN_MODELS", "PUBLISHED", "resolve"]

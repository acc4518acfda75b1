"""Reading and writing models: our safetensors format, NVIDIA's PyTorch and TensorFlow pickles,
rosinality checkpoints. Every reader is safe: no code from a file is ever executed."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..networks import Discriminator, Generator
from .download import PUBLISHED, resolve
from .native import is_safetensors_file, load_native, save_native
from .types import Checkpoint

BUILTIN_NAME = "builtin"
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled 0x1950a86a20f9469cfc6c


def builtin_model_path() -> Path:
    """Path of the model shipped inside the package (used when no ``--network`` is given)."""
    return Path(__file__).resolve().parent.parent / "pretrained" / "builtin.safetensors"


def detect_format(path: Path) -> str:
    """'native' | 'official-pickle' | 'torch-zip' (rosinality / torch.save)."""
    if path.is_dir():
        return "native"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not head:
        raise CheckpointError(f"{path.name} is empty")
    if head[:4] == b"PK\x03\x04" or head.startswith(_LEGACY_TORCH_MAGIC[:8]):
        return "torch-zip"  # also legacy (pre-1.6) torch.save files, e.g. older rosinality .pt
    if head[:2] in _PICKLE_MAGIC:
        return "official-pickle"
    if is_safetensors_file(path):
        return "native"
    raise CheckpointError(f"{path.name} is not a model file we know (expected NVIDIA .pkl, our .safetensors, "
                          f"or a rosinality .pt)")


def load_network(source: str | os.PathLike | None = None,
                 which: tuple[str, ...] = ("G_ema", "G", "D")) -> Checkpoint:
    """Load every network in a model file of any supported format (CPU, eval mode)."""
    if source is None or str(source) == BUILTIN_NAME:
        path = builtin_model_path()
        if not path.exists():
            raise CheckpointError("this installation has no built-in model; pass --network PATH")
    else:
        path = resolve(source)
    fmt = detect_format(path)
    try:
        if fmt == "native":
            ckpt = load_native(path, which=which)
        elif fmt == "official-pickle":
            from .official import load_official_pickle
            ckpt = load_official_pickle(path, which=which)
        else:
            from .rosinality import load_rosinality
            ckpt = load_rosinality(path, which=which)
    except MemoryError as exc:
        raise CheckpointError(f"{path.name}: out of memory while loading") from exc
    if source is None or str(source) == BUILTIN_NAME:
        ckpt.metadata.setdefault("builtin", True)
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
           "save_network", "detect_format", "builtin_model_path", "PUBLISHED", "resolve"]

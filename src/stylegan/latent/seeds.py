"""Seeds, z vectors and class labels: the one way to turn a seed into a latent and a class into a label."""

from __future__ import annotations

import re

import numpy as np
import torch

from ..errors import UserInputError

MAX_SEED = 2**32 - 1
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(spec: str | int | list) -> list[int]:
    """``'0-9,12'`` -> [0, 1, ..., 9, 12]. Ranges are inclusive; order and duplicates are kept as given."""
    if isinstance(spec, int):
        spec = str(spec)
    if isinstance(spec, (list, tuple)):
        return [s for part in spec for s in parse_seeds(part)]
    seeds: list[int] = []
    if not str(spec).strip():
        raise UserInputError("no seeds given; use e.g. --seeds 0-9,12")
    for part in str(spec).split(","):
        m = _RANGE.match(part)
        if not m:
            raise UserInputError(f"invalid seed list {spec!r}: {part.strip()!r} is not a seed or a range "
                                 f"like 3-7 (seeds are integers 0..{MAX_SEED})")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UserInputError(f"invalid seed range {part.strip()!r}: the end is smaller than the start")
        if hi > MAX_SEED:
            raise UserInputError(f"seed {hi} is out of range (0..{MAX_SEED})")
        if hi - lo >= 1_000_000:
            raise UserInputError(f"seed range {part.strip()!r} has more than a million seeds")
        seeds.extend(range(lo, hi + 1))
    return seeds


def random_seeds(count: int, rng_seed: int | None = None) -> list[int]:
    """``count`` distinct random seeds (reproducible when ``rng_seed`` is given)."""
    if count < 1:
        raise UserInputError("--random needs a positive count")
    rng = np.random.default_rng(rng_seed)
    return [int(s) for s in rng.choice(MAX_SEED, size=count, replace=False)]


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z for ``seed`` exactly as NVIDIA's scripts draw it: ``RandomState(seed).randn(z_dim)`` (float64)."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise UserInputError(f"seed {seed} is out of range (0..{MAX_SEED})")
    return np.random.RandomState(int(seed)).randn(z_dim)


def z_from_seeds(seeds: list[int], z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[N, z_dim] float32 tensor of :func:`z_from_seed` rows."""
    z = np.stack([z_from_seed(s, z_dim) for s in seeds]) if seeds else np.zeros([0, z_dim])
    return torch.from_numpy(z.astype(np.float32)).to(device)     # float32 before the device: MPS has no float64


def z_samples(count: int, z_dim: int, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """[count, z_dim] float32 z drawn in one go from ``RandomState(seed)`` (the samples SeFa/PCA,
    classifier scoring and the projector's starting point use; one seed for the whole set)."""
    return torch.from_numpy(np.random.RandomState(seed).randn(count, z_dim).astype(np.float32)).to(device)


def _check_label_given(c_dim: int, given: bool, required: bool = True) -> None:
    if c_dim == 0 and given:
        raise UserInputError("this model is unconditional: it takes no class label")
    if c_dim and not given and required:
        raise UserInputError(f"this model is conditional: give a class label (0..{c_dim - 1})")


def class_labels(c_dim: int, class_idx: int | None, count: int, device: torch.device | str = "cpu",
                 required: bool = True) -> torch.Tensor | None:
    """One-hot labels [count, c_dim] for a conditional model, ``None`` for an unconditional one
    (all-zero rows when ``class_idx`` is None and not ``required``)."""
    _check_label_given(c_dim, class_idx is not None, required)
    if c_dim == 0:
        return None
    c = torch.zeros([count, c_dim], device=device)
    if class_idx is None:
        return c
    if not 0 <= int(class_idx) < c_dim:
        raise UserInputError(f"class {class_idx} is out of range: this model has classes 0..{c_dim - 1}")
    c[:, int(class_idx)] = 1
    return c


def saved_label(c_dim: int, class_idx: int) -> list[list[float]]:
    """The one-hot label a latents file stores as ``c`` ([1, c_dim], as ``generate --save-ws`` writes it)."""
    return [[float(k == class_idx) for k in range(c_dim)]]


def check_labels(c: torch.Tensor | None, c_dim: int, count: int,
                 device: torch.device | str = "cpu") -> torch.Tensor | None:
    """Labels a caller passed as a tensor ([c_dim] for all, or [count, c_dim]) as float32 [count, c_dim]."""
    _check_label_given(c_dim, c is not None)
    if c_dim == 0:
        return None
    c = torch.as_tensor(c).to(device, torch.float32)
    if c.ndim == 1:
        c = c[None]
    if c.shape[0] == 1:
        c = c.repeat(count, 1)
    if tuple(c.shape) != (count, c_dim):
        raise UserInputError(f"labels must be [{count}, {c_dim}], got {tuple(c.shape)}")
    return c

"""Seeds -> ws -> images: the generation path every command shares."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserInputError
from ..networks import Generator
from ..progress import progress as progress_bar
from ..render.images import to_uint8
from .seeds import class_labels, z_from_seeds

PSI_RANGE = (-2.0, 2.0)


def check_truncation(G: Generator, psi: float, cutoff: int | None) -> None:
    if not (PSI_RANGE[0] <= psi <= PSI_RANGE[1]) or math.isnan(psi):
        raise UserInputError(f"truncation psi {psi} is out of range [{PSI_RANGE[0]}, {PSI_RANGE[1]}] "
                             f"(1 = no truncation, 0.5-0.7 = typical)")
    if cutoff is not None and not 1 <= cutoff <= G.num_ws:
        raise UserInputError(f"truncation cutoff {cutoff} is out of range: this model has {G.num_ws} layers (1..{G.num_ws})")


def transform_matrix(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The 3x3 matrix StyleGAN3 expects in ``synthesis.input.transform``: the *inverse* of the image
    transform that translates by ``translate`` (in units of the image half-size) and rotates by
    ``rotate`` degrees."""
    a = rotate / 360.0 * 2 * np.pi
    m = np.array([[np.cos(a), np.sin(a), translate[0]],
                  [-np.sin(a), np.cos(a), translate[1]],
                  [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)


def has_transform(G: Generator) -> bool:
    return G.synthesis.has_input_transform


@contextmanager
def image_transform(G: Generator, translate=(0.0, 0.0), rotate: float = 0.0) -> Iterator[None]:
    """Temporarily set a StyleGAN3 model's input transform (restored afterwards)."""
    identity = tuple(translate) == (0, 0) and rotate == 0
    if not has_transform(G):
        if not identity:
            raise UserInputError("--translate/--rotate need a StyleGAN3 model (this one has no input transform)")
        yield
        return
    buf = G.synthesis.input.transform
    saved = buf.clone()
    try:
        if not identity:
            buf.copy_(torch.from_numpy(transform_matrix(translate, rotate)).to(buf))
        yield
    finally:
        buf.copy_(saved)


@dataclass
class Generated:
    seeds: list[int]
    images: np.ndarray          # [N, H, W, C] uint8
    ws: np.ndarray              # [N, num_ws, w_dim] float32


def seeds_to_ws(G: Generator, seeds: list[int], truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                class_idx: int | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    check_truncation(G, truncation_psi, truncation_cutoff)
    z = z_from_seeds(seeds, G.z_dim, device=device)
    c = class_labels(G.c_dim, class_idx, len(seeds), device=device)
    with torch.inference_mode():
        return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def synthesize(G: Generator, ws: torch.Tensor, noise_mode: str = "const", batch_size: int = 8,
               show_progress: bool = False, desc: str = "generating") -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> images [N, C, H, W] float32, in batches."""
    device = next(G.parameters()).device
    out = []
    starts = range(0, ws.shape[0], batch_size)
    for i in progress_bar(starts, desc=desc, unit="batch", disable=not show_progress):
        with torch.inference_mode():
            out.append(G.synthesis(ws[i:i + batch_size].to(device), noise_mode=noise_mode).float().cpu())
    return torch.cat(out) if out else torch.zeros([0, G.img_channels, G.img_resolution, G.img_resolution])


def seeded_synthesis(G: Generator, ws: torch.Tensor, seed: int) -> torch.Tensor:
    """``noise_mode='random'`` made reproducible: the noise maps are drawn from ``torch.manual_seed(seed)``
    (the global RNG state is restored afterwards)."""
    device = next(G.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        torch.manual_seed(int(seed))
        return G.synthesis(ws.to(device), noise_mode="random").float().cpu()


def generate_images(G: Generator, seeds: list[int], truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                    class_idx: int | None = None, noise_mode: str = "const", translate=(0.0, 0.0),
                    rotate: float = 0.0, batch_size: int = 8, show_progress: bool = False) -> Generated:
    """Images for ``seeds`` exactly as NVIDIA's ``gen_images.py`` makes them (same z, same uint8)."""
    device = next(G.parameters()).device
    ws = seeds_to_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx, device=device)
    with image_transform(G, translate, rotate):
        imgs = synthesize(G, ws, noise_mode=noise_mode, batch_size=batch_size, show_progress=show_progress)
    return Generated(seeds=list(seeds), images=to_uint8(imgs), ws=ws.float().cpu().numpy())

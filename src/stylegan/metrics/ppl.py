"""Perceptual Path Length (Karras et al. 2019, Sec. 3; 2020, Sec. 3.2): the LPIPS distance between
images a small step ε apart along a latent path, divided by ε², averaged over samples after dropping
the lowest and highest 1 % (the distribution is heavy-tailed).

``space='w'`` interpolates mapped latents linearly, ``space='z'`` interpolates z on the sphere
(slerp); ``sampling='end'`` measures at the path's start (t = 0), ``'full'`` at t ~ U(0, 1).
Noise inputs are re-drawn for every batch but shared by the two images of a pair.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch

from ..errors import UserInputError
from ..perception.detectors import Detector
from ..progress import progress
from .distributed import Shard, batch_seeds, current_shard, sharded_map
from .features import random_labels

LPIPS_RESOLUTION = 256


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of ``a`` and ``b`` [N, D] at ``t`` [N]; unit length."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t.unsqueeze(-1) * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def lpips_embeddings(lpips, images: torch.Tensor) -> torch.Tensor:
    """LPIPS embeddings of images in [-1, 1]: with a VGG16 :class:`Detector` (NVIDIA's ``vgg16.pt``),
    or any perceptual loss of :mod:`stylegan.perception.lpips` that embeds (``features``) images."""
    if isinstance(lpips, Detector):
        return lpips.lpips((images + 1) * (255 / 2))
    return lpips.features(images).flatten(1)


def filtered_mean(dist: np.ndarray, low: float = 1, high: float = 99) -> float:
    """Mean of the values between the ``low``-th and ``high``-th percentiles (inclusive)."""
    lo = np.percentile(dist, low, method="lower")
    hi = np.percentile(dist, high, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def path_length_samples(G, lpips, *, num_samples: int, epsilon: float = 1e-4, space: str = "w",
                        sampling: str = "end", crop: bool = False, batch_size: int = 2, seed: int = 0,
                        labels: np.ndarray | None = None, desc: str = "ppl", shard: Shard | None = None
                        ) -> np.ndarray | None:
    """The per-sample ``LPIPS(img(t), img(t + ε)) / ε²`` values [num_samples] (float64); None
    outside process 0 of a multi-process run (the pairs are shared out batch by batch).

    ``crop``: StyleGAN1's FFHQ face crop (rows 3/8..7/8, columns 2/8..6/8), defined for square face
    models only; a non-square model is refused (UserInputError)."""
    if crop and G.img_shape[0] != G.img_shape[1]:
        raise UserInputError(f"{desc}: the cropped PPL (StyleGAN1's face crop) is measured on square models only "
                             f"(this one draws {G.img_shape[1]}x{G.img_shape[0]}); ppl2_wend measures the whole image")
    if space not in ("w", "z") or sampling not in ("end", "full"):
        raise ValueError(f"PPL space must be 'w' or 'z' and sampling 'end' or 'full', got {space!r}, {sampling!r}")
    shard = shard or current_shard()
    G = copy.deepcopy(G)   # its noise buffers are overwritten below
    pair = functools.partial(_pair_distances, G, lpips, epsilon=epsilon, space=space, sampling=sampling,
                             crop=crop, seed=seed, labels=labels)
    num_batches = -(-num_samples // batch_size)
    out = []
    with progress(total=num_samples, desc=desc, unit="pair", disable=not shard.is_main) as bar:
        for part in sharded_map(lambda b: pair(b, min(batch_size, num_samples - b * batch_size)), num_batches,
                                shard, dtype=torch.float64):
            out.append(part[:, 0].numpy())
            bar.update(len(part))
    return np.concatenate(out) if shard.is_main else None


def _pair_distances(G, lpips, b: int, n: int, *, epsilon: float, space: str, sampling: str, crop: bool,
                    seed: int, labels: np.ndarray | None) -> torch.Tensor:
    """Batch ``b`` of PPL: ``n`` pairs, their scaled LPIPS distances [n, 1] (float64). As NVIDIA's:
    t, z0, z1, labels and the noise inputs (shared by the two images of a pair) drawn per batch; the
    interpolation in float32; the images in fp32 with constant (re-drawn) noise."""
    device = next(G.parameters()).device
    draw_seed, label_seed = batch_seeds(seed, b, 2)
    gen = torch.Generator().manual_seed(draw_seed)
    t = torch.rand([n], generator=gen) * (1 if sampling == "full" else 0)
    z0, z1 = torch.randn([2 * n, G.z_dim], generator=gen).chunk(2)
    c = random_labels(G.c_dim, n, np.random.RandomState(label_seed), labels)
    c2 = torch.cat([c, c]).to(device)
    with torch.no_grad():
        if space == "w":
            w0, w1 = G.mapping(torch.cat([z0, z1]).to(device), c2).chunk(2)
            tt = t.to(device)[:, None, None]
            ws = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)])
        else:
            zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            ws = G.mapping(zt.to(device), c2)
        for name, buf in G.named_buffers():
            if name.endswith("noise_const"):
                buf.copy_(torch.randn(buf.shape, generator=gen).to(buf))
        img = G.synthesis(ws, noise_mode="const", force_fp32=True).to(torch.float32)
        if crop:
            k = img.shape[2] // 8
            img = img[:, :, k * 3:k * 7, k * 2:k * 6]
        factor = G.img_resolution // LPIPS_RESOLUTION
        if factor > 1:
            img = img.reshape(img.shape[0], img.shape[1], img.shape[2] // factor, factor,
                              img.shape[3] // factor, factor).mean(dim=[3, 5])
        if img.shape[1] == 1:
            img = img.repeat(1, 3, 1, 1)
        e0, e1 = lpips_embeddings(lpips, img).to(torch.float64).chunk(2)
    return ((e0 - e1).square().sum(dim=1, keepdim=True) / epsilon ** 2).cpu()


def compute_ppl(G, lpips, *, num_samples: int = 50_000, epsilon: float = 1e-4, space: str = "w",
                sampling: str = "end", crop: bool = False, batch_size: int = 2, seed: int = 0,
                labels: np.ndarray | None = None, name: str = "ppl") -> dict | None:
    dist = path_length_samples(G, lpips, num_samples=num_samples, epsilon=epsilon, space=space,
                               sampling=sampling, crop=crop, batch_size=batch_size, seed=seed, labels=labels,
                               desc=name)
    return None if dist is None else {"ppl": filtered_mean(dist)}

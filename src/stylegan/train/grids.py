"""The image grids of a run: ``reals.png`` and ``fakes*.png`` (G_ema at fixed latents, noise const)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.dataset import ImageDataset
from ..render.images import make_grid, save_image, to_uint8


def grid_size(resolution: int | tuple[int, int], on_gpu: bool, grid: tuple[int, int] | None = None) -> tuple[int, int]:
    """(columns, rows): NVIDIA's ``clip(7680/W, 7, 32) x clip(4320/H, 4, 32)`` (``resolution``: a side, or
    the images' ``(H, W)``), at most 16x16 on a CPU (a 32x32 grid costs minutes per snapshot there), or the
    user's ``--grid``."""
    if grid is not None:
        return grid
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    gw, gh = int(np.clip(7680 // w, 7, 32)), int(np.clip(4320 // h, 4, 32))
    return (gw, gh) if on_gpu else (min(gw, 16), min(gh, 16))


def grid_indices(dataset: ImageDataset, gw: int, gh: int, seed: int) -> np.ndarray:
    """Real images for the grids: random ones, or one class per row for conditional datasets."""
    rnd = np.random.default_rng(seed)
    n = gw * gh
    if not dataset.has_labels:
        return np.resize(rnd.permutation(len(dataset)), n)
    labels = dataset.get_labels(np.arange(dataset.num_raw_images))
    keys = [tuple(row) for row in labels]
    groups: dict[tuple, list[int]] = {}
    for i in rnd.permutation(dataset.num_raw_images):
        groups.setdefault(keys[i], []).append(int(i))
    order = sorted(groups, reverse=True)  # one-hot rows: class 0 first
    rows = [np.resize(np.asarray(groups[order[y % len(order)]]), gw) for y in range(gh)]
    return np.concatenate(rows)


class Grids:
    """The fixed latents and labels of a run's grids, and the writers of its grid images."""

    def __init__(self, dataset: ImageDataset, z_dim: int, size: tuple[int, int], seed: int, batch: int, device):
        self.dataset = dataset
        self.gw, self.gh = size
        self.batch = batch
        self.indices = grid_indices(dataset, self.gw, self.gh, seed)
        z = np.random.default_rng([seed, 1]).standard_normal([self.gw * self.gh, z_dim]).astype(np.float32)
        self.z = torch.from_numpy(z).to(device)
        self.c = torch.from_numpy(dataset.get_labels(self.indices)).to(device)

    def save_reals(self, path: Path) -> None:
        reals = self.dataset.get_images(self.indices).transpose(0, 2, 3, 1)
        save_image(make_grid(reals, self.gh, self.gw), path)

    @torch.no_grad()
    def save_fakes(self, G_ema, path: Path) -> np.ndarray:
        imgs = [to_uint8(G_ema(z, c, noise_mode="const")) for z, c in zip(self.z.split(self.batch),
                                                                          self.c.split(self.batch))]
        grid = make_grid(np.concatenate(imgs), self.gh, self.gw)
        save_image(grid, path)
        return grid

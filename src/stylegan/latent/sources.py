"""Where latents come from: seeds (mapped by :class:`stylegan.latent.sampling.GenerationRequest`) or saved
``.npz`` files.

Every command that takes latents (``mix --rows/--cols``, ``video --seeds/--ws``, ``generate --ws``)
accepts the same items: seeds and seed ranges (``'0-3,7'``) and paths of ``.npz`` files in the
layout of :mod:`stylegan.latent.io` (``--save-ws`` output, projections, ``stylegan latent`` results).
Truncation applies to seeds only; latents from files are used exactly as saved (as NVIDIA's
``generate.py --projected-w`` does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserInputError
from ..networks import Generator
from .io import load_npz_extra, load_ws


@dataclass
class Latents:
    """ws [N, num_ws, w_dim] float32 with a label per row (seed number or file name) for file names."""
    ws: np.ndarray
    labels: list[str]
    seeds: list[int | None]
    z: np.ndarray | None = None     # [N, z_dim] when every row came from a seed (needed for slerp in Z)
    names: list[str] | None = None  # image file stems: seed0042 for a seed, the label for a file's row

    def __post_init__(self):
        if self.names is None:
            self.names = list(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def noise_seeds(self) -> list[int]:
        """What seeds ``noise_mode='random'``: the latent's seed, else its row number."""
        return [s if s is not None else i for i, s in enumerate(self.seeds)]

    @staticmethod
    def concat(parts: list["Latents"]) -> "Latents":
        z = np.concatenate([p.z for p in parts]) if parts and all(p.z is not None for p in parts) else None
        return Latents(ws=np.concatenate([p.ws for p in parts]), labels=[lb for p in parts for lb in p.labels],
                       seeds=[s for p in parts for s in p.seeds], z=z, names=[n for p in parts for n in p.names])


def latents_from_file(G: Generator | None, path: str | os.PathLike) -> Latents:
    """Every latent saved in an ``.npz`` file; labels are the file name (``name`` or ``name-03``)."""
    path = Path(path)
    ws = load_ws(path, G.num_ws if G is not None else None, G.w_dim if G is not None else None)
    extra = load_npz_extra(path)
    seeds = [int(s) for s in extra["seeds"]] if "seeds" in extra and len(extra["seeds"]) == len(ws) else [None] * len(ws)
    labels = [path.stem] if len(ws) == 1 else [f"{path.stem}-{i:02d}" for i in range(len(ws))]
    z = None
    if G is not None and "z" in extra and np.shape(extra["z"]) == (len(ws), G.z_dim):
        z = np.asarray(extra["z"], dtype=np.float32)
    return Latents(ws=ws, labels=labels, seeds=seeds, z=z)


def is_latent_file(item: str) -> bool:
    item = str(item).strip()
    return item.lower().endswith(".npz") or os.sep in item or (os.altsep is not None and os.altsep in item)


def latent_items(items) -> list[tuple[str, object]]:
    """Split what the user gave into ``('seeds', '0-3,7')`` and ``('file', path)`` parts, in order
    (consecutive seed items form one part).

    ``items``: a string (``'0-3,7'``, ``'a.npz'``, ``'1,2,proj.npz'``), a path, an int, or a list of those.
    """
    if isinstance(items, os.PathLike) or (isinstance(items, str) and os.path.isfile(items)):
        items = [items]
    elif isinstance(items, str):
        items = items.split(",")
    if isinstance(items, int):
        items = [items]
    parts: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, os.PathLike) or (isinstance(item, str) and is_latent_file(item)):
            parts.append(("file", item))
        elif parts and parts[-1][0] == "seeds":
            parts[-1] = ("seeds", f"{parts[-1][1]},{item}")
        else:
            parts.append(("seeds", str(item)))
    if not parts:
        raise UserInputError("no latents given (seeds like 0-3 or .npz files)")
    return parts


def as_ws_tensor(G: Generator, ws) -> torch.Tensor:
    """Check user latents against the model and return them as float32 [N, num_ws, w_dim]."""
    a = torch.as_tensor(np.asarray(ws.detach().cpu() if isinstance(ws, torch.Tensor) else ws, dtype=np.float32))
    if a.ndim == 2 and a.shape[1] == G.w_dim:
        a = a[:, None].repeat(1, G.num_ws, 1)
    if a.ndim == 1 and a.shape[0] == G.w_dim:
        a = a[None, None].repeat(1, G.num_ws, 1)
    if a.ndim != 3 or a.shape[1:] != (G.num_ws, G.w_dim):
        raise UserInputError(f"latents must be [N, {G.num_ws}, {G.w_dim}] (or one w of {G.w_dim} per row), "
                             f"got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise UserInputError("latents contain NaN or infinite values")
    return a

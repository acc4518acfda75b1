"""Where latents come from: seeds (through the mapping network) or saved ``.npz`` files.

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
from .seeds import class_labels, parse_seeds, z_from_seeds


@dataclass
class Latents:
    """ws [N, num_ws, w_dim] float32 with a label per row (seed number or file name) for file names."""
    ws: np.ndarray
    labels: list[str]
    seeds: list[int | None]
    z: np.ndarray | None = None     # [N, z_dim] when every row came from a seed (needed for slerp in Z)

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(parts: list["Latents"]) -> "Latents":
        z = np.concatenate([p.z for p in parts]) if parts and all(p.z is not None for p in parts) else None
        return Latents(ws=np.concatenate([p.ws for p in parts]), labels=[lb for p in parts for lb in p.labels],
                       seeds=[s for p in parts for s in p.seeds], z=z)


def latents_from_seeds(G: Generator, seeds, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                       class_idx: int | None = None) -> Latents:
    """ws of ``seeds`` (a spec like ``'0-3,7'`` or a list) exactly as ``generate`` makes them.

    Each seed is mapped on its own, as NVIDIA's gen_images.py does: a batched matmul rounds
    differently, and a seed's w should not depend on which other seeds were asked for with it."""
    from .sampling import check_truncation, seeds_to_ws
    seed_list = parse_seeds(seeds) if not isinstance(seeds, (list, tuple, range)) else [int(s) for s in seeds]
    check_truncation(G, truncation_psi, truncation_cutoff)
    class_labels(G.c_dim, class_idx, 1)
    device = next(G.parameters()).device
    ws = [seeds_to_ws(G, [s], truncation_psi, truncation_cutoff, class_idx, device=device).float().cpu()
          for s in seed_list]
    z = z_from_seeds(seed_list, G.z_dim).numpy()
    ws = torch.cat(ws).numpy() if ws else np.zeros([0, G.num_ws, G.w_dim], np.float32)
    return Latents(ws=ws, labels=[str(s) for s in seed_list], seeds=seed_list, z=z)


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


def parse_latents(G: Generator, items, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                  class_idx: int | None = None) -> Latents:
    """Latents from a mix of seed specs and ``.npz`` paths, in the order given.

    ``items``: a string (``'0-3,7'``, ``'a.npz'``, ``'1,2,proj.npz'``), a path, or a list of those.
    """
    if isinstance(items, os.PathLike) or (isinstance(items, str) and os.path.isfile(items)):
        items = [items]
    elif isinstance(items, str):
        items = items.split(",")
    if isinstance(items, int):
        items = [items]
    parts: list[Latents] = []
    pending_seeds: list[str] = []

    def flush():
        if pending_seeds:
            parts.append(latents_from_seeds(G, ",".join(pending_seeds), truncation_psi, truncation_cutoff,
                                            class_idx))
            pending_seeds.clear()

    for item in items:
        if isinstance(item, os.PathLike) or (isinstance(item, str) and is_latent_file(item)):
            flush()
            parts.append(latents_from_file(G, item))
        else:
            pending_seeds.append(str(item))
    flush()
    if not parts:
        raise UserInputError("no latents given (seeds like 0-3 or .npz files)")
    if class_idx is not None and not any(p.z is not None for p in parts):
        class_labels(G.c_dim, class_idx, 1)  # still validate the class
    return Latents.concat(parts)


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

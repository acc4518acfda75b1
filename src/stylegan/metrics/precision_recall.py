"""Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
balls around its feature vectors with radius = distance to the k-th nearest neighbour in the same
set. Precision = share of generated vectors inside the real manifold; recall = share of real
vectors inside the generated manifold. Features: VGG16 (``return_features=True``)."""

from __future__ import annotations

import numpy as np
import torch

from ..progress import progress
from ..perception.detectors import Detector
from .features import generated_features, real_features


def _distances(a: torch.Tensor, b: torch.Tensor, half: bool) -> torch.Tensor:
    if half:
        a, b = a.half(), b.half()
    return torch.cdist(a, b).float()


def knn_radii(feats: torch.Tensor, k: int, batch_size: int = 4096, half: bool = False) -> torch.Tensor:
    """Distance of every vector to its k-th nearest other vector of the same set (memory: one
    ``batch_size``² block of distances at a time)."""
    out = []
    for i in range(0, len(feats), batch_size):
        rows = feats[i:i + batch_size]
        best = torch.full([len(rows), 0], float("inf"), device=feats.device)
        for j in range(0, len(feats), batch_size):
            d = torch.cat([best, _distances(rows, feats[j:j + batch_size], half)], dim=1)
            best = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False).values
        out.append(best[:, k])   # k + 1 smallest: the vector itself is at distance 0
    return torch.cat(out)


def manifold_coverage(probe: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor, batch_size: int = 4096,
                      half: bool = False, desc: str | None = None) -> float:
    """Share of ``probe`` vectors within ``ref_radii[j]`` of some ``ref[j]``."""
    inside = torch.zeros(len(probe), dtype=torch.bool, device=probe.device)
    starts = range(0, len(probe), batch_size)
    for i in progress(starts, desc=desc, unit="batch", disable=desc is None or len(starts) < 2):
        for j in range(0, len(ref), batch_size):
            d = _distances(probe[i:i + batch_size], ref[j:j + batch_size], half)
            inside[i:i + batch_size] |= (d <= ref_radii[j:j + batch_size].unsqueeze(0)).any(dim=1)
    return float(inside.float().mean())


def precision_recall(real: np.ndarray | torch.Tensor, gen: np.ndarray | torch.Tensor, k: int = 3,
                     batch_size: int = 4096, device: str | torch.device = "cpu",
                     half: bool | None = None) -> tuple[float, float]:
    """(precision, recall) of ``gen`` against ``real`` feature vectors. Distances run in fp16 on CUDA
    (as the published numbers were made) and fp32 elsewhere, unless ``half`` says otherwise."""
    device = torch.device(device)
    half = device.type == "cuda" if half is None else half
    r = torch.as_tensor(np.asarray(real), dtype=torch.float32, device=device)
    g = torch.as_tensor(np.asarray(gen), dtype=torch.float32, device=device)
    if min(len(r), len(g)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and generated images")
    precision = manifold_coverage(g, r, knn_radii(r, k, batch_size, half), batch_size, half)
    recall = manifold_coverage(r, g, knn_radii(g, k, batch_size, half), batch_size, half)
    return precision, recall


def compute_pr(G, data, detector: Detector, *, num_gen: int, max_real: int | None = 200_000, k: int = 3,
               batch_size: int = 64, seed: int = 0, cache: bool = True, name: str = "pr") -> dict:
    real = real_features(data, detector, max_items=max_real, capture_all=True, batch_size=batch_size,
                         cache=cache, desc=f"{name}: real images")
    gen = generated_features(G, detector, num_gen=num_gen, capture_all=True, batch_size=batch_size,
                             seed=seed, labels=getattr(data, "labels", None), desc=f"{name}: generated")
    p, r = precision_recall(real.get_all(), gen.get_all(), k=k, device=detector.device)
    return {"precision": p, "recall": r, "_num_real": real.num_items, "_real_cached": real.from_cache}

"""Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
balls around its feature vectors with radius = distance to the k-th nearest neighbour in the same
set. Precision = share of generated vectors inside the real manifold; recall = share of real
vectors inside the generated manifold. Features: VGG16 (``return_features=True``).

As in NVIDIA's metric, the features are rounded to fp16 and so are the distances and radii; a
probe is inside when its fp16 distance to some manifold vector is <= that vector's fp16 radius.
"""

from __future__ import annotations

import numpy as np
import torch

from ..perception.detectors import Detector
from ..progress import progress
from .features import generated_features, real_features


def fp16_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [len(a), len(b)] of fp16 vectors, as fp16. On CUDA ``torch.cdist`` of the
    fp16 tensors (NVIDIA's call); elsewhere the distance is computed in float64 (float32 where the
    device has no float64) and rounded to fp16, which differs from the CUDA kernel's half-precision
    products by at most a few fp16 steps."""
    if a.device.type == "cuda":
        return torch.cdist(a.half()[None], b.half()[None])[0]
    dtype = torch.float64 if a.device.type == "cpu" else torch.float32
    a, b = a.to(dtype), b.to(dtype)
    sq = (a.square().sum(1)[:, None] + b.square().sum(1)[None] - 2 * a @ b.T).clamp(min=0)
    return sq.sqrt().half()


def knn_radii(feats: torch.Tensor, k: int, block: int = 4096) -> torch.Tensor:
    """fp16 distance of every vector to its k-th nearest vector of the same set (the vector itself,
    at distance 0, is the 0-th); one ``block``² block of distances in memory at a time."""
    out = []
    for i in range(0, len(feats), block):
        rows = feats[i:i + block]
        best = torch.empty([len(rows), 0], dtype=torch.float32, device=feats.device)
        for j in range(0, len(feats), block):
            d = torch.cat([best, fp16_distances(rows, feats[j:j + block]).float()], dim=1)
            best = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False, sorted=True).values
        out.append(best[:, k].half())
    return torch.cat(out)


def manifold_coverage(probe: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor, block: int = 4096,
                      desc: str | None = None) -> float:
    """Share of ``probe`` vectors whose fp16 distance to some ``ref[j]`` is <= ``ref_radii[j]``."""
    inside = torch.zeros(len(probe), dtype=torch.bool, device=probe.device)
    starts = range(0, len(probe), block)
    for i in progress(starts, desc=desc, unit="block", disable=desc is None or len(starts) < 2):
        for j in range(0, len(ref), block):
            d = fp16_distances(probe[i:i + block], ref[j:j + block])
            inside[i:i + block] |= (d <= ref_radii[j:j + block][None]).any(dim=1)
    return float(inside.float().mean())


def precision_recall(real: np.ndarray | torch.Tensor, gen: np.ndarray | torch.Tensor, k: int = 3,
                     block: int | None = None, device: str | torch.device = "cpu") -> tuple[float, float]:
    """(precision, recall) of ``gen`` against ``real`` feature vectors (both rounded to fp16)."""
    device = torch.device(device)
    block = block or (10_000 if device.type == "cuda" else 2048)
    r = torch.as_tensor(np.asarray(real, dtype=np.float32)).to(device).half()
    g = torch.as_tensor(np.asarray(gen, dtype=np.float32)).to(device).half()
    if min(len(r), len(g)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and generated images")
    precision = manifold_coverage(g, r, knn_radii(r, k, block), block)
    recall = manifold_coverage(r, g, knn_radii(g, k, block), block)
    return precision, recall


def compute_pr(G, data, detector: Detector, *, num_gen: int, max_real: int | None = 200_000, k: int = 3,
               batch_size: int = 64, seed: int = 0, cache: bool = True, name: str = "pr") -> dict | None:
    real = real_features(data, detector, max_items=max_real, capture_all=True, batch_size=batch_size,
                         cache=cache, desc=f"{name}: real images")
    gen = generated_features(G, detector, num_gen=num_gen, capture_all=True, batch_size=batch_size,
                             seed=seed, labels=getattr(data, "labels", None), desc=f"{name}: generated")
    if gen is None:
        return None
    p, r = precision_recall(real.get_all(), gen.get_all(), k=k, device=detector.device)
    return {"precision": p, "recall": r, "_num_real": real.num_items, "_real_cached": real.from_cache}

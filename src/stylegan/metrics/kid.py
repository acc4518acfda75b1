"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared MMD between
real and generated Inception features under the cubic polynomial kernel ``k(x, y) = (x·y/d + 1)³``,
averaged over random subsets."""

from __future__ import annotations

import numpy as np

from ..perception.detectors import Detector
from .features import generated_features, real_features


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, dtype=np.float64) -> float:
    """Unbiased MMD² of samples ``x`` [m, d] and ``y`` [n, d] under ``(a·b/d + 1)³``: within-set sums
    exclude the diagonal (i = j) and are divided by m(m−1), n(n−1); the cross term by m·n. The
    products and sums in ``dtype`` (NVIDIA's code: float32)."""
    d = x.shape[1]
    x, y = x.astype(dtype), y.astype(dtype)
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kernel_inception_distance(gen: np.ndarray, real: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0, dtype=np.float64) -> float:
    """Mean of :func:`polynomial_mmd2` over ``num_subsets`` random subsets (without replacement) of
    ``min(len(gen), len(real), max_subset_size)`` vectors from each set: per subset the generated
    indices are drawn first, then the real ones, from ``np.random.RandomState(seed)``."""
    m = min(len(gen), len(real), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 generated images")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        total += polynomial_mmd2(x, y, dtype)
    return total / num_subsets


def compute_kid(G, data, detector: Detector, *, num_gen: int, max_real: int | None = 1_000_000,
                num_subsets: int = 100, max_subset_size: int = 1000, batch_size: int = 64, seed: int = 0,
                cache: bool = True, name: str = "kid") -> dict | None:
    real = real_features(data, detector, max_items=max_real, capture_all=True, batch_size=batch_size,
                         cache=cache, desc=f"{name}: real images")
    gen = generated_features(G, detector, num_gen=num_gen, capture_all=True, batch_size=batch_size,
                             seed=seed, labels=getattr(data, "labels", None), desc=f"{name}: generated")
    if gen is None:
        return None
    kid = kernel_inception_distance(gen.get_all(), real.get_all(), num_subsets, max_subset_size, seed)
    return {"kid": kid, "_num_real": real.num_items, "_real_cached": real.from_cache}

"""Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to
the Inception pool features (2048-d) of real and generated images."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..perception.detectors import Detector
from .features import generated_features, real_features


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)``; the matrix square root by ``scipy.linalg.sqrtm``
    (its tiny imaginary part from round-off is dropped)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (fewer samples than features): regularise both covariances slightly.
        eps = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(np.real(covmean)))


def compute_fid(G, data, detector: Detector, *, num_gen: int, max_real: int | None = None,
                batch_size: int = 64, seed: int = 0, cache: bool = True, name: str = "fid") -> dict | None:
    """FID of ``num_gen`` generated images against (up to ``max_real``) real images; None outside
    process 0 of a multi-process run."""
    real = real_features(data, detector, max_items=max_real, capture_mean_cov=True, batch_size=batch_size,
                         cache=cache, desc=f"{name}: real images")
    gen = generated_features(G, detector, num_gen=num_gen, capture_mean_cov=True, batch_size=batch_size,
                             seed=seed, labels=getattr(data, "labels", None), desc=f"{name}: generated")
    if gen is None:
        return None
    mu_r, sigma_r = real.get_mean_cov()
    mu_g, sigma_g = gen.get_mean_cov()
    return {"fid": frechet_distance(mu_g, sigma_g, mu_r, sigma_r), "_num_real": real.num_items,
            "_real_cached": real.from_cache}

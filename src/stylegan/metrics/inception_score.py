"""Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) ‖ p(y)))`` over splits of the
generated images, with Inception's class probabilities computed without the output bias."""

from __future__ import annotations

import numpy as np

from ..perception.detectors import Detector
from .features import generated_features


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation of the score over ``num_splits`` equal parts of ``probs`` [N, K]."""
    probs = np.asarray(probs, dtype=np.float64)
    n = len(probs)
    if n < num_splits:
        raise ValueError(f"the Inception Score with {num_splits} splits needs at least {num_splits} images")
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        kl = part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(part.mean(axis=0, keepdims=True), 1e-30, None)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(G, data, detector: Detector, *, num_gen: int, num_splits: int = 10, batch_size: int = 64,
               seed: int = 0, name: str = "is", **_unused) -> dict | None:
    labels = getattr(data, "labels", None) if data is not None else None
    probs = generated_features(G, detector, num_gen=num_gen, capture_all=True, batch_size=batch_size, seed=seed,
                               labels=labels, desc=f"{name}: generated", output="probabilities")
    if probs is None:
        return None
    mean, std = inception_score(probs.get_all(), num_splits)
    return {"is_mean": mean, "is_std": std}

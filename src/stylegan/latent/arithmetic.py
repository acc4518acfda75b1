"""Latent arithmetic on ws [N, num_ws, w_dim]: ``w + alpha·direction`` on chosen layers, averages,
differences, interpolation and truncation. Plain numpy (torch tensors are accepted); results go
straight into :func:`stylegan.latent.io.save_ws`.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError


def _ws(ws, name: str = "ws") -> np.ndarray:
    a = np.asarray(ws.detach().cpu() if hasattr(ws, "detach") else ws, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise UserInputError(f"{name} must be [N, num_ws, w_dim] or [num_ws, w_dim], got shape {a.shape}")
    return a


def _layers_mask(num_ws: int, layers) -> np.ndarray:
    mask = np.zeros(num_ws, dtype=bool)
    if layers is None:
        mask[:] = True
    else:
        idx = np.asarray(list(layers), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= num_ws):
            raise UserInputError(f"layers {idx.tolist()} are out of range 0-{num_ws - 1}")
        mask[idx] = True
    return mask


def add_direction(ws, direction, alpha=1.0, layers=None) -> np.ndarray:
    """``ws + alpha·direction`` on ``layers`` (all when None).

    ``direction``: [w_dim] (same on every layer) or [num_ws, w_dim] (per layer). ``alpha``: a number
    (result [N, num_ws, w_dim]) or a list of K numbers (result [N·K, ...], every ws with every alpha,
    ws-major: rows ``i·K + k``)."""
    w = _ws(ws)
    d = np.asarray(direction.detach().cpu() if hasattr(direction, "detach") else direction, dtype=np.float32)
    n, num_ws, w_dim = w.shape
    if d.ndim == 2 and d.shape[0] == 1:
        d = d[0]
    if d.shape == (w_dim,):
        d = np.broadcast_to(d, (num_ws, w_dim))
    if d.shape != (num_ws, w_dim):
        raise UserInputError(f"the direction has shape {d.shape}; the latents need [{w_dim}] or [{num_ws}, {w_dim}]")
    mask = _layers_mask(num_ws, layers)[:, None]
    alphas = np.atleast_1d(np.asarray(alpha, dtype=np.float32))
    out = w[:, None] + alphas[None, :, None, None] * np.where(mask, d, 0)[None, None]
    return out.reshape(n * len(alphas), num_ws, w_dim) if np.ndim(alpha) else out[:, 0]


def average_ws(ws, weights=None) -> np.ndarray:
    """The (weighted) mean latent, [1, num_ws, w_dim]: e.g. the average of several projections of one face."""
    w = _ws(ws)
    if weights is None:
        return w.mean(0, keepdims=True)
    wt = np.asarray(weights, dtype=np.float64)
    if wt.shape != (w.shape[0],):
        raise UserInputError(f"{w.shape[0]} latents need {w.shape[0]} weights, got {wt.size}")
    if wt.sum() == 0:
        raise UserInputError("the weights sum to zero")
    return (np.tensordot(wt / wt.sum(), w.astype(np.float64), axes=1)[None]).astype(np.float32)


def difference(ws_from, ws_to, normalize: bool = False) -> np.ndarray:
    """The direction from ``ws_from`` to ``ws_to`` (means of each), [num_ws, w_dim]; ``normalize``
    scales it to unit length per layer, so ``alpha`` is a distance in W."""
    a, b = average_ws(ws_from)[0], average_ws(ws_to)[0]
    if a.shape != b.shape:
        raise UserInputError(f"latents of different shapes: {a.shape} and {b.shape}")
    d = b - a
    if normalize:
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        if (norm == 0).any():
            raise UserInputError("the two latents are equal on some layer: there is no direction to normalise")
        d = d / norm
    return d.astype(np.float32)


def interpolate_ws(ws_a, ws_b, t) -> np.ndarray:
    """``ws_a·(1 - t) + ws_b·t`` for a number or a list of K values of t (result [N·K, ...])."""
    a, b = _ws(ws_a, "ws_a"), _ws(ws_b, "ws_b")
    if a.shape[1:] != b.shape[1:] or (a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0])):
        raise UserInputError(f"cannot interpolate latents of shapes {a.shape} and {b.shape}")
    ts = np.atleast_1d(np.asarray(t, dtype=np.float32))
    out = a[:, None] * (1 - ts[None, :, None, None]) + b[:, None] * ts[None, :, None, None]
    return out.reshape(-1, *a.shape[1:]) if np.ndim(t) else out[:, 0]


def truncate_ws(ws, w_avg, psi: float, layers=None) -> np.ndarray:
    """``w_avg + psi·(w - w_avg)`` on ``layers`` (all when None): the truncation trick in W
    (Karras et al. 2019, Appendix B), as ``G.mapping(..., truncation_psi)`` applies it."""
    w = _ws(ws)
    avg = np.asarray(w_avg.detach().cpu() if hasattr(w_avg, "detach") else w_avg, dtype=np.float32)
    if avg.shape != (w.shape[2],):
        raise UserInputError(f"w_avg has shape {avg.shape}, the latents have w_dim {w.shape[2]}")
    mask = _layers_mask(w.shape[1], layers)[None, :, None]
    return np.where(mask, avg + psi * (w - avg), w).astype(np.float32)

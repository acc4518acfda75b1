"""Editing and varying a latent (typically a projection): move along a direction on chosen layers,
resample noise, mix in other seeds' coarse/middle/fine styles, sweep truncation toward the mean."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch

from ..errors import UserInputError
from .mixing import layer_groups, mix_ws
from .sampling import GenerationRequest

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_strengths(spec: str | float | list) -> list[float]:
    """``'-3:3:7'`` -> 7 evenly spaced values from -3 to 3; ``'-2,0,2.5'`` -> those; ``'1.5'`` -> [1.5]."""
    if isinstance(spec, (int, float)):
        return [float(spec)]
    if isinstance(spec, (list, tuple)):
        return [float(s) for s in spec]
    text = str(spec).strip()
    m = re.fullmatch(rf"\s*({_FLOAT})\s*:\s*({_FLOAT})\s*:\s*(\d+)\s*", text)
    if m:
        lo, hi, count = float(m.group(1)), float(m.group(2)), int(m.group(3))
        if not 1 <= count <= 10000:
            raise UserInputError(f"--strength {spec!r}: the count must be 1..10000")
        return np.linspace(lo, hi, count).tolist() if count > 1 else [lo]
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(np.isfinite(values)):
        raise UserInputError(f"invalid --strength {spec!r}; use START:STOP:COUNT (e.g. -3:3:7) or a list like -2,0,2")
    return values


def direction_offsets(direction, num_ws: int, w_dim: int, layers: list[int] | None = None) -> torch.Tensor:
    """The per-layer offset [num_ws, w_dim] of a unit step along ``direction`` ([w_dim] for the chosen
    layers, or per layer [num_ws, w_dim]); layers outside ``layers`` get zero."""
    d = torch.as_tensor(np.asarray(direction, np.float32))
    if d.ndim == 1:
        if d.numel() != w_dim:
            raise UserInputError(f"direction has size {d.numel()}, the model's w_dim is {w_dim}")
        d = d[None].repeat(num_ws, 1)
    elif tuple(d.shape) != (num_ws, w_dim):
        raise UserInputError(f"per-layer direction must be [{num_ws}, {w_dim}], got {tuple(d.shape)}")
    if layers is not None:
        mask = torch.zeros([num_ws, 1])
        mask[list(layers)] = 1
        d = d * mask
    return d


def apply_direction(ws: torch.Tensor, direction, strengths, layers: list[int] | None = None) -> torch.Tensor:
    """``ws`` [N, num_ws, w_dim] moved by each strength: [N, S, num_ws, w_dim]."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.ndim != 3:
        raise UserInputError(f"latents must be [N, num_ws, w_dim], got {tuple(ws.shape)}")
    offset = direction_offsets(direction, ws.shape[1], ws.shape[2], layers).to(ws.device)
    s = torch.as_tensor(np.asarray(parse_strengths(strengths), np.float32), device=ws.device)
    return ws[:, None] + s[None, :, None, None] * offset


def edit_images(request: GenerationRequest, w: torch.Tensor, direction, strengths, layers: list[int] | None = None,
                noise: dict[str, torch.Tensor] | None = None, batch_size: int = 8) -> np.ndarray:
    """The strip of one latent ``w`` [num_ws, w_dim] edited at every strength: uint8 [S, H, W, C]."""
    ws = apply_direction(torch.as_tensor(w)[None], direction, strengths, layers)[0]
    return request.images(ws, noise=noise, batch_size=batch_size)


def noise_variations(request: GenerationRequest, w: torch.Tensor, count: int, seed: int = 0,
                     batch_size: int = 8) -> np.ndarray:
    """``count`` images of one latent with freshly drawn per-pixel noise (StyleGAN2 stochastic detail),
    drawn from ``torch.manual_seed(seed)`` (the caller's RNG state is left alone)."""
    if count < 1:
        raise UserInputError("the number of noise variations must be positive")
    device = request.device
    ws = torch.as_tensor(w)[None].repeat(count, 1, 1)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return dataclasses.replace(request, noise_mode="random").images(ws, batch_size=batch_size)


def style_variations(request: GenerationRequest, w: torch.Tensor, seed_ws: torch.Tensor,
                     groups: list[str] | None = None, noise: dict[str, torch.Tensor] | None = None,
                     batch_size: int = 8) -> dict[str, np.ndarray]:
    """For each style group (coarse/middle/fine), the projection with that group's ws taken from each
    seed latent: {group: uint8 [S, H, W, C]}."""
    G = request.G
    groups_all = layer_groups(G)
    groups = groups or [g for g in ("coarse", "middle", "fine") if groups_all[g]]
    w = torch.as_tensor(w, dtype=torch.float32)
    out = {}
    for g in groups:
        if g not in groups_all:
            raise UserInputError(f"unknown style group {g!r}; use coarse, middle or fine")
        if not groups_all[g]:
            raise UserInputError(f"this {G.img_shape[1]}x{G.img_shape[0]} model has no {g} layers")
        mixed = mix_ws(w[None].expand(len(seed_ws), -1, -1), torch.as_tensor(seed_ws), groups_all[g])
        out[g] = request.images(mixed, noise=noise, batch_size=batch_size)
    return out


def truncation_sweep(request: GenerationRequest, w: torch.Tensor, psis, w_avg: torch.Tensor | None = None,
                     noise: dict[str, torch.Tensor] | None = None, batch_size: int = 8) -> np.ndarray:
    """The latent pulled toward the average w: ``w_avg + psi (w - w_avg)`` for each psi: uint8 [P, H, W, C]."""
    w = torch.as_tensor(w, dtype=torch.float32)
    w_avg = (request.G.mapping.w_avg if w_avg is None else w_avg).detach().float().cpu()
    psis = torch.as_tensor(np.asarray(psis, np.float32))
    ws = w_avg[None, None] + psis[:, None, None] * (w[None] - w_avg[None, None])
    return request.images(ws, noise=noise, batch_size=batch_size)


def pingpong(strengths: list[float], frames: int) -> np.ndarray:
    """Strengths for a looping video: 0 -> max -> min -> 0 along a sine, ``frames`` long."""
    lo, hi = min(strengths), max(strengths)
    t = np.arange(frames) / frames
    s = np.sin(2 * np.pi * t)
    return np.where(s >= 0, s * hi, -s * lo)

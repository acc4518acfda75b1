"""Walks through latent space: lerp in W, slerp in Z, cubic splines, easing, frame timing, and the
lazy frame generator behind ``stylegan video``.

Time is measured in keyframes: position 2.5 is half-way between keyframes 2 and 3. A walk over K
keyframes has K - 1 transitions, a loop has K (the last one returns to the first keyframe).
With ``frames_per_transition = N`` a walk has ``(K - 1)·N + 1`` frames (first and last frame are
exactly the first and last keyframe) and a loop ``K·N`` frames (the frame after the last is the
first: it plays seamlessly on repeat), as NVIDIA's gen_video.py (``num_keyframes·w_frames``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.interpolate import CubicSpline

from ..errors import UserInputError
from ..render.images import make_grid
from .sampling import GenerationRequest

KINDS = ("lerp", "slerp", "cubic")

#: Easing curves on [0, 1] (applied inside every transition; all but linear stop briefly at keyframes).
EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "smoothstep": lambda t: t * t * (3 - 2 * t),
    "sine": lambda t: 0.5 - 0.5 * np.cos(np.pi * t),
    "cubic": lambda t: np.where(t < 0.5, 4 * t**3, 1 - (-2 * t + 2) ** 3 / 2),
}


def ease(t, easing: str = "linear") -> np.ndarray:
    if easing not in EASINGS:
        raise UserInputError(f"unknown easing {easing!r}; use one of {', '.join(EASINGS)}")
    return EASINGS[easing](np.asarray(t, dtype=np.float64))


def lerp(a, b, t):
    """``a·(1 - t) + b·t``, written so that t = 0 gives ``a`` and t = 1 gives ``b`` exactly."""
    return a * (1 - t) + b * t


def slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical interpolation between vectors along the last axis (Shoemake 1985); for Gaussian z
    it keeps the norm near sqrt(z_dim) where lerp would pass through low-probability short vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    t = t.reshape(t.shape + (1,) * (a.ndim - t.ndim)) if t.ndim < a.ndim else t
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    safe = so > 1e-6
    so_safe = np.where(safe, so, 1.0)
    sl = np.sin((1 - t) * omega) / so_safe * a + np.sin(t * omega) / so_safe * b
    out = np.where(safe, sl, lerp(a, b, t))
    out = np.where(t == 0, a, out)
    return np.where(t == 1, b, out)


def num_transitions(num_keyframes: int, loop: bool) -> int:
    return num_keyframes if loop else num_keyframes - 1


def frame_positions(num_keyframes: int, frames_per_transition: int | None = None, num_frames: int | None = None,
                    loop: bool = False, easing: str = "linear") -> np.ndarray:
    """Keyframe position of every frame (see the module docstring for the timing rules).

    Give ``frames_per_transition`` or the total ``num_frames`` (then transitions need not start on a
    frame, except that a non-loop walk still starts and ends exactly on its end keyframes)."""
    if num_keyframes < 1:
        raise UserInputError("an interpolation needs at least one keyframe")
    transitions = num_transitions(num_keyframes, loop)
    if (frames_per_transition is None) == (num_frames is None):
        raise UserInputError("give either frames per transition or the total number of frames")
    if frames_per_transition is not None:
        if frames_per_transition < 1:
            raise UserInputError("frames per transition must be at least 1")
        if transitions == 0:
            raise UserInputError("a walk needs at least two keyframes (or --loop, or a total frame count)")
        total = transitions * frames_per_transition + (0 if loop else 1)
        t = np.arange(total, dtype=np.float64) / frames_per_transition
    else:
        if num_frames < 1:
            raise UserInputError("the number of frames must be at least 1")
        if loop:
            t = np.arange(num_frames, dtype=np.float64) * transitions / num_frames
        elif num_frames == 1:
            t = np.zeros(1)
        else:
            t = np.linspace(0.0, transitions, num_frames)
    whole = np.floor(t)
    return whole + ease(t - whole, easing)


class Interpolator:
    """Keyframes [K, ...] -> values at any positions [T] -> [T, ...], along axis 0.

    ``lerp``: piecewise linear; ``slerp``: piecewise spherical (vectors along the last axis);
    ``cubic``: C2 cubic spline through the keyframes (natural ends; periodic for loops, so a loop
    closes without a kink — NVIDIA's gen_video.py gets a similar loop by wrapping keyframes)."""

    def __init__(self, keys, kind: str = "cubic", loop: bool = False):
        if kind not in KINDS:
            raise UserInputError(f"unknown interpolation {kind!r}; use one of {', '.join(KINDS)}")
        self.keys = np.asarray(keys, dtype=np.float64)
        self.kind, self.loop = kind, loop
        self.num_keyframes = k = self.keys.shape[0]
        self._spline = None
        if kind == "cubic" and k > 1:
            flat = self.keys.reshape(k, -1)
            if loop:
                self._spline = CubicSpline(np.arange(k + 1), np.concatenate([flat, flat[:1]]), bc_type="periodic")
            else:
                self._spline = CubicSpline(np.arange(k), flat, bc_type="natural")

    def __call__(self, positions) -> np.ndarray:
        pos = np.atleast_1d(np.asarray(positions, dtype=np.float64))
        k = self.num_keyframes
        if k == 1:
            return np.repeat(self.keys, len(pos), axis=0).astype(np.float32)
        span = k if self.loop else k - 1
        if self.loop:
            pos = np.mod(pos, span)
        else:
            pos = np.clip(pos, 0, span)
        if self._spline is not None:
            out = self._spline(pos).reshape((len(pos),) + self.keys.shape[1:])
            exact = pos == np.round(pos)       # keyframes come back bit-exact
            idx = np.round(pos).astype(int) % k
            out[exact] = self.keys[idx[exact]]
            return out.astype(np.float32)
        i0 = np.minimum(np.floor(pos).astype(int), span - 1)
        frac = pos - i0
        a, b = self.keys[i0 % k], self.keys[(i0 + 1) % k]
        frac = frac.reshape((-1,) + (1,) * (a.ndim - 1))
        out = slerp(a, b, frac) if self.kind == "slerp" else lerp(a, b, frac)
        return out.astype(np.float32)


@dataclass
class Motion:
    """StyleGAN3 camera motion over the video: a static ``translate``/``rotate`` plus an animated part.
    ``rotate_anim`` degrees are turned linearly over the video (a multiple of 360 loops seamlessly);
    ``translate_anim`` pans linearly over a walk, and out and back ((1 - cos)/2) over a loop so the
    loop closes. Translation is in units of half the image size, as in ``generate --translate``."""
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    translate_anim: tuple[float, float] = (0.0, 0.0)
    rotate_anim: float = 0.0

    @property
    def animated(self) -> bool:
        return tuple(self.translate_anim) != (0, 0) or self.rotate_anim != 0

    def at(self, frame: int, num_frames: int, loop: bool) -> tuple[tuple[float, float], float]:
        if loop:
            u = frame / num_frames
            pan = (1 - math.cos(2 * math.pi * u)) / 2
        else:
            u = pan = frame / (num_frames - 1) if num_frames > 1 else 0.0
        tx = self.translate[0] + self.translate_anim[0] * pan
        ty = self.translate[1] + self.translate_anim[1] * pan
        return (tx, ty), self.rotate + self.rotate_anim * u


class LatentWalk:
    """One interpolation per grid cell through keyframe latents.

    ``ws``: keyframes [cells, K, num_ws, w_dim] (lerp/cubic interpolate in W); for ``slerp`` give
    ``z`` [cells, K, z_dim] instead: frames are mapped from slerped z by ``request`` (its truncation
    and class). Keyframes that do not fit the model raise :class:`UserInputError`."""

    def __init__(self, request: GenerationRequest, ws=None, z=None, kind: str = "cubic", loop: bool = False):
        if kind not in KINDS:
            raise UserInputError(f"unknown interpolation {kind!r}; use one of {', '.join(KINDS)}")
        G = request.G
        self.request, self.kind, self.loop = request, kind, loop
        if kind == "slerp":
            if z is None:
                raise UserInputError("slerp interpolates z and needs seeds as keyframes; latents from files "
                                     "are w: use lerp or cubic for them")
            keys = np.asarray(z, dtype=np.float64)
            if keys.ndim != 3 or keys.shape[2] != G.z_dim:
                raise UserInputError(f"z keyframes must be [cells, K, {G.z_dim}], got {keys.shape}")
        else:
            if ws is None:
                raise UserInputError("lerp/cubic walks interpolate w: give ws keyframes")
            keys = np.asarray(ws, dtype=np.float32)
            if keys.ndim != 4 or keys.shape[2:] != (G.num_ws, G.w_dim):
                raise UserInputError(f"ws keyframes must be [cells, K, {G.num_ws}, {G.w_dim}], got {keys.shape}")
        self.num_cells, self.num_keyframes = keys.shape[:2]
        self._interp = Interpolator(np.swapaxes(keys, 0, 1), kind, loop)

    def ws(self, positions) -> torch.Tensor:
        """ws [T, cells, num_ws, w_dim] at the given keyframe positions."""
        vals = torch.from_numpy(self._interp(positions))
        if self.kind != "slerp":
            return vals
        G = self.request.G
        ws = self.request.map_z(vals.reshape(-1, G.z_dim))
        return ws.reshape(vals.shape[0], vals.shape[1], G.num_ws, G.w_dim)


def walk_frames(request: GenerationRequest, walk: LatentWalk, positions: np.ndarray, grid: tuple[int, int] = (1, 1),
                motion: Motion | None = None, batch_size: int = 8) -> Iterator[np.ndarray]:
    """Yield the video's frames one by one as uint8 [H, W, C] (a grid of the walk's cells), drawn by
    ``request`` moved by ``motion`` (StyleGAN3 camera motion; default: the request's own transform).

    Frames are made in batches of about ``batch_size`` images and handed out as soon as their batch
    is done, so memory does not grow with the length of the video."""
    G = request.G
    rows, cols = grid
    if rows * cols != walk.num_cells:
        raise UserInputError(f"a {rows}x{cols} grid needs {rows * cols} walks, got {walk.num_cells}")
    motion = motion or Motion(request.translate, request.rotate)
    num_frames = len(positions)
    per_batch = 1 if motion.animated else max(1, batch_size // walk.num_cells)
    for start in range(0, num_frames, per_batch):
        pos = positions[start:start + per_batch]
        ws = walk.ws(pos).reshape(-1, G.num_ws, G.w_dim)
        translate, rotate = motion.at(start, num_frames, walk.loop)
        imgs = request.with_transform(translate, rotate).images(ws, batch_size=max(batch_size, walk.num_cells))
        imgs = imgs.reshape(len(pos), walk.num_cells, *imgs.shape[1:])
        for cells in imgs:
            yield make_grid(cells, rows, cols) if walk.num_cells > 1 else cells[0]


def grid_keyframes(count: int, cells: int, num_keyframes: int | None = None,
                   shuffle_seed: int | None = None) -> np.ndarray:
    """Indices [cells, K] into ``count`` keyframe latents for a grid of walks, as NVIDIA's
    gen_video.py deals them: cell ``i`` gets items ``i·K .. i·K + K - 1`` of the list repeated
    cyclically; with ``shuffle_seed`` the dealt list is shuffled first (numpy RandomState)."""
    if count < 1:
        raise UserInputError("no keyframes given")
    if num_keyframes is None:
        num_keyframes = count // cells
        if num_keyframes < 1:
            raise UserInputError(f"a grid of {cells} walks needs at least {cells} keyframe latents, got {count} "
                                 f"(give more seeds or --keyframes K to reuse them)")
    if num_keyframes < 1:
        raise UserInputError("--keyframes must be at least 1")
    idx = np.arange(cells * num_keyframes) % count
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(idx)
    return idx.reshape(cells, num_keyframes)

"""Style mixing: which ws drive which scale of the image, and images made of two latents.

The StyleGAN paper (Karras et al. 2019, Sec. 3.1 and Fig. 3) groups the synthesis layers by the
resolution they work at: *coarse* = 4²–8² (pose, face shape), *middle* = 16²–32² (features, hair
style, eyes open/closed), *fine* = 64² up to the full resolution (colour scheme, micro structure).

StyleGAN1 and StyleGAN2 have two ws per resolution: resolution ``2**k`` owns ws ``2k-4`` and
``2k-3`` (so at 1024²: coarse = 0-3, middle = 4-7, fine = 8-17). In StyleGAN2 the odd w of a
resolution also drives that resolution's ToRGB and the next block's first (upsampling) conv, as
NVIDIA's code wires it; the grouping follows the paper's convention that every tool uses.

StyleGAN3 has no per-resolution blocks: its layers raise the band limit (cutoff frequency) step by
step. A layer belongs to the smallest resolution whose Nyquist frequency covers its output cutoff:
``res = 2**ceil(log2(2 * cutoff))``; ``ws[0]`` drives the Fourier-feature input (cutoff = its
bandwidth) and ``ws[i + 1]`` drives layer ``L{i}``. At 1024² (StyleGAN3-T/R) this gives coarse = 0-2,
middle = 3-5, fine = 6-15; at 256²: coarse = 0-3, middle = 4-7, fine = 8-15, the same split as a
StyleGAN2 model of that size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import UserInputError
from ..networks import Generator
from .sampling import GenerationRequest

#: The paper's style groups, as inclusive resolution ranges (the upper end of ``fine`` is the model's).
STYLE_GROUPS: dict[str, tuple[int, int]] = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 2**30)}

_ITEM = re.compile(r"^(\d+)?\s*(-)?\s*(\d+)?$")


def layer_resolutions(G: Generator) -> list[int]:
    """The image resolution each w index works at (see the module docstring for the rules)."""
    return list(G.synthesis.layer_resolutions)


def layer_groups(G: Generator) -> dict[str, list[int]]:
    """``{'coarse': [...], 'middle': [...], 'fine': [...]}``: the ws indices of each style group."""
    res = layer_resolutions(G)
    return {name: [i for i, r in enumerate(res) if lo <= r <= hi] for name, (lo, hi) in STYLE_GROUPS.items()}


def parse_layers(spec, G: Generator | int) -> list[int]:
    """Turn a layer spec into sorted ws indices.

    ``spec``: ``'coarse'``, ``'middle'``, ``'fine'``, ``'all'``, indices and inclusive ranges
    (``'0-6'``, ``'8-'`` = 8 to the last, ``'-3'`` = 0 to 3), combined with commas or ``+``
    (``'coarse,fine'``, ``'0-3,8'``), or a list/range of ints. ``G`` is the model (needed for the
    group names) or just its ``num_ws``.
    """
    num_ws = G if isinstance(G, int) else G.num_ws
    if isinstance(spec, (int, np.integer)):
        if not 0 <= int(spec) < num_ws:
            raise UserInputError(f"layer {int(spec)} is out of range: this model has {num_ws} ws "
                                 f"(layers 0-{num_ws - 1})")
        return [int(spec)]
    if isinstance(spec, (list, tuple, range, np.ndarray)):
        out = set()
        for item in spec:
            out.update(parse_layers(item if isinstance(item, str) else int(item), G))
        if not out:
            raise UserInputError("no layers given")
        return sorted(out)
    text = str(spec).strip().lower()
    if not text:
        raise UserInputError("no layers given; use e.g. coarse, middle, fine, all or a range like 0-3")
    out: set[int] = set()
    for part in re.split(r"[,+]", text):
        part = part.strip()
        if part == "all":
            out.update(range(num_ws))
        elif part in STYLE_GROUPS:
            if isinstance(G, int):
                raise UserInputError(f"the layer group {part!r} depends on the model: give the model "
                                     f"(--network) or use indices such as 0-3")
            group = layer_groups(G)[part]
            if not group:
                lo, _ = STYLE_GROUPS[part]
                raise UserInputError(f"this {G.img_shape[1]}x{G.img_shape[0]} model has no {part} layers "
                                     f"(they work at {lo}x{lo} and above); use indices 0-{num_ws - 1}")
            out.update(group)
        else:
            m = _ITEM.match(part)
            if not m or (m.group(1) is None and m.group(3) is None):
                raise UserInputError(f"invalid layer spec {spec!r}: {part!r} is not a layer, a range like 0-3, "
                                     f"or one of coarse, middle, fine, all")
            lo = int(m.group(1)) if m.group(1) is not None else 0
            if m.group(2):
                hi = int(m.group(3)) if m.group(3) is not None else num_ws - 1
            else:
                hi = lo
            if hi < lo:
                raise UserInputError(f"invalid layer range {part!r}: the end is smaller than the start")
            if hi >= num_ws:
                raise UserInputError(f"layer {hi} is out of range: this model has {num_ws} ws (layers 0-{num_ws - 1})")
            out.update(range(lo, hi + 1))
    return sorted(out)


def mix_ws(ws_row, ws_col, layers):
    """``ws_row`` with the ws at ``layers`` taken from ``ws_col`` (torch or numpy, broadcasting over
    leading dims; shapes [..., num_ws, w_dim]). For a grid, pass ``ws_row[:, None]`` and ``ws_col[None]``."""
    layers = list(layers)
    if isinstance(ws_row, torch.Tensor) or isinstance(ws_col, torch.Tensor):
        ws_row, ws_col = torch.as_tensor(ws_row), torch.as_tensor(ws_col, device=torch.as_tensor(ws_row).device)
        shape = torch.broadcast_shapes(ws_row.shape, ws_col.shape)
        out = ws_row.expand(shape).clone()
        out[..., layers, :] = ws_col.expand(shape)[..., layers, :].to(out.dtype)
        return out
    ws_row, ws_col = np.asarray(ws_row), np.asarray(ws_col)
    shape = np.broadcast_shapes(ws_row.shape, ws_col.shape)
    out = np.array(np.broadcast_to(ws_row, shape))
    out[..., layers, :] = np.broadcast_to(ws_col, shape)[..., layers, :]
    return out


@dataclass
class StyleMix:
    """The result of :func:`render_style_mix`: every image as uint8 [H, W, C] plus the grid."""
    row_labels: list[str]
    col_labels: list[str]
    layers: list[int]
    row_images: np.ndarray                  # [R, H, W, C]
    col_images: np.ndarray                  # [C, H, W, C]
    mixed: np.ndarray                       # [R, C, H, W, C]
    mixed_ws: np.ndarray                    # [R, C, num_ws, w_dim]
    grid: np.ndarray = field(repr=False)    # [(R+1)·H, (C+1)·W, C], top-left blank

    def items(self):
        """``(name, image)`` for every file NVIDIA's style_mixing.py writes: ``{row}-{col}`` and ``{s}-{s}``."""
        for label, img in zip(self.row_labels, self.row_images):
            yield f"{label}-{label}", img
        for label, img in zip(self.col_labels, self.col_images):
            yield f"{label}-{label}", img
        for r, rl in enumerate(self.row_labels):
            for c, cl in enumerate(self.col_labels):
                yield f"{rl}-{cl}", self.mixed[r, c]


def mixing_grid(row_images: np.ndarray, col_images: np.ndarray, mixed: np.ndarray) -> np.ndarray:
    """The paper's layout: first row = column images, first column = row images, top-left blank (black)."""
    from ..render.images import make_grid
    n_rows, n_cols = mixed.shape[:2]
    h, w, ch = row_images.shape[1:]
    cells = np.zeros([n_rows + 1, n_cols + 1, h, w, ch], dtype=np.uint8)
    cells[0, 1:] = col_images
    cells[1:, 0] = row_images
    cells[1:, 1:] = mixed
    return make_grid(cells.reshape(-1, h, w, ch), n_rows + 1, n_cols + 1)


def render_style_mix(request: GenerationRequest, row_ws, col_ws, layers, row_labels=None, col_labels=None,
                     batch_size: int = 8, show_progress: bool = False) -> StyleMix:
    """Every row latent with the ``layers`` of every column latent (NVIDIA's style_mixing.py:
    row = source A gives the other layers, column = source B gives ``layers``), drawn by ``request``
    (a :class:`~stylegan.latent.sampling.GenerationRequest`)."""
    G = request.G
    row_ws = torch.as_tensor(np.asarray(row_ws, dtype=np.float32))
    col_ws = torch.as_tensor(np.asarray(col_ws, dtype=np.float32))
    for name, ws in (("row", row_ws), ("column", col_ws)):
        if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or ws.shape[0] == 0:
            raise UserInputError(f"{name} latents must be [N, {G.num_ws}, {G.w_dim}], got {tuple(ws.shape)}")
    layers = parse_layers(layers, G)
    n_rows, n_cols = row_ws.shape[0], col_ws.shape[0]
    mixed_ws = mix_ws(row_ws[:, None], col_ws[None], layers)          # [R, C, num_ws, w_dim]
    all_ws = torch.cat([row_ws, col_ws, mixed_ws.reshape(-1, G.num_ws, G.w_dim)])
    imgs = request.images(all_ws, batch_size=batch_size, show_progress=show_progress, desc="mixing")
    row_images, col_images = imgs[:n_rows], imgs[n_rows:n_rows + n_cols]
    mixed = imgs[n_rows + n_cols:].reshape(n_rows, n_cols, *imgs.shape[1:])
    return StyleMix(row_labels=[str(x) for x in (row_labels or range(n_rows))],
                    col_labels=[str(x) for x in (col_labels or range(n_cols))],
                    layers=layers, row_images=row_images, col_images=col_images, mixed=mixed,
                    mixed_ws=mixed_ws.numpy(), grid=mixing_grid(row_images, col_images, mixed))

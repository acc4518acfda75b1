"""The notebook API: one call per operator workflow, mirroring the commands, returning PIL images.

    import stylegan
    imgs = stylegan.generate_images("ffhq.pkl", seeds="0-7", truncation_psi=0.7)
    imgs[0]                          # a PIL image; imgs.grid(2, 4) is one image of all eight
    mix = stylegan.style_mix("ffhq.pkl", rows=[85, 100], cols=[55, 821], layers="coarse")
    mix.grid                         # the paper's Figure 3 layout
    stylegan.render_video("ffhq.pkl", "0-5", "walk.mp4", interpolation="cubic", loop=True)

Every function takes ``model``: a loaded :class:`~stylegan.networks.Generator`, or anything
``--network`` accepts (path, URL, published name, None for the built-in model). Files are loaded
once and kept (the last one) so repeated calls are fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import UserInputError
from .latent.arithmetic import add_direction, average_ws, difference, interpolate_ws, truncate_ws
from .latent.interpolation import (EASINGS, KINDS, LatentWalk, Motion, frame_positions,
                                   grid_keyframes, walk_frames)
from .latent.io import load_directions, load_ws, save_directions, save_ws
from .latent.mixing import layer_groups, layer_resolutions, mix_ws, parse_layers, render_style_mix
from .latent.sampling import GenerationRequest
from .latent.sources import Latents, as_ws_tensor
from .networks import Generator
from .render.images import make_grid, save_image, to_pil

__all__ = [
    "load_model", "generate_images", "seeds_to_ws", "style_mix", "video_frames", "render_video",
    "ImageBatch", "StyleMixResult", "VideoFrames",
    "parse_layers", "layer_groups", "layer_resolutions", "mix_ws", "add_direction", "average_ws", "difference",
    "interpolate_ws", "truncate_ws", "load_ws", "save_ws", "load_directions", "save_directions",
]

_loaded: dict = {}


def load_model(model=None, device: str | torch.device = "auto", precision: str | None = None) -> Generator:
    """A generator from a Generator (returned as is, moved only if ``device`` is not 'auto') or from
    anything ``--network`` accepts (loaded once by :func:`stylegan.checkpoints.load_generator` and kept
    while the same file is asked for); ``precision``: 'fp32', 'fp16', 'bf16' (CUDA) or None (keep)."""
    from .devices import half_dtype, pick_device
    if isinstance(model, Generator):
        G = model if device == "auto" else model.to(pick_device(device))
        if precision is not None:
            G.set_half_dtype(half_dtype(precision, next(G.parameters()).device))
        return G
    from .checkpoints import load_generator
    key = (str(model), _mtime(model), str(pick_device(device)), precision or "fp32")
    if _loaded.get("key") != key:
        _loaded.clear()
        _loaded.update(key=key, G=load_generator(model, device=device, precision=precision))
    return _loaded["G"]


def _mtime(model) -> float | None:
    try:
        return os.stat(model).st_mtime if model is not None else None
    except (OSError, TypeError, ValueError):
        return None


class ImageBatch(list):
    """A list of PIL images with what made them: ``.arrays`` uint8 [N, H, W, C], ``.ws``
    [N, num_ws, w_dim], ``.names`` (``seed0042`` or the latent file's name), ``.seeds``."""

    def __init__(self, arrays: np.ndarray, ws: np.ndarray, names: list[str], seeds: list[int | None]):
        super().__init__(to_pil(a) for a in arrays)
        self.arrays, self.ws, self.names, self.seeds = arrays, ws, names, seeds

    def grid(self, rows: int | None = None, cols: int | None = None, pad: int = 0) -> Image.Image:
        """All images tiled row by row into one (``rows``/``cols`` default to a near-square layout)."""
        n = len(self)
        if rows is None and cols is None:
            cols = int(np.ceil(np.sqrt(n)))
        if rows is None:
            rows = int(np.ceil(n / cols))
        if cols is None:
            cols = int(np.ceil(n / rows))
        return to_pil(make_grid(self.arrays, rows, cols, pad=pad))

    def save(self, outdir: str | os.PathLike, suffix: str = ".png") -> list[Path]:
        """Write ``outdir/<name>.png`` for every image (atomically)."""
        return [save_image(a, Path(outdir) / f"{name}{suffix}") for a, name in zip(self.arrays, self.names)]


def seeds_to_ws(model, seeds, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                class_idx: int | None = None, device="auto") -> np.ndarray:
    """ws [N, num_ws, w_dim] of ``seeds`` (``'0-3,7'``, a list or a range), as ``generate`` makes them."""
    G = load_model(model, device)
    return GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx).latents(_seed_items(seeds)).ws


def _seed_items(seeds):
    if isinstance(seeds, range):
        return [str(s) for s in seeds]
    if isinstance(seeds, (int, np.integer)):
        return [str(int(seeds))]
    return seeds


def _latent_files(ws) -> list[Path] | None:
    """``ws`` as a list of .npz paths when it names files (a path or a list of paths), else None."""
    if isinstance(ws, (str, os.PathLike)):
        return [Path(ws)]
    if isinstance(ws, (list, tuple)) and ws and isinstance(ws[0], (str, os.PathLike)):
        return [Path(p) for p in ws]
    return None


def generate_images(model=None, seeds=None, *, ws=None, truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                    translate=(0.0, 0.0), rotate: float = 0.0, canvas=None, extension: str | None = None,
                    batch_size: int = 8, device="auto", precision: str | None = None,
                    show_progress: bool = False) -> ImageBatch:
    """Images for ``seeds`` (NVIDIA's z and uint8 conversion, as gen_images.py) or for latents ``ws``
    (an array [N, num_ws, w_dim], an ``.npz`` path, or a list of paths).

    ``canvas=(height, width)`` or ``'WxH'``: images of that size instead of the model's own size (docs/canvas.md;
    sizes off the model's stride are rendered larger and centre-cropped); ``extension``: how a
    StyleGAN1/2 model continues its constant ('tile', 'reflect', 'stretch').

    The same call always gives the same pixels; with ``noise_mode='random'`` the noise is drawn
    from a generator seeded with the image's seed. Another ``batch_size`` batches the convolutions
    differently, which can move a rare value by one level (float rounding)."""
    G = load_model(model, device, precision)
    if (seeds is None) == (ws is None):
        raise UserInputError("give either seeds or ws")
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode, tuple(translate), rotate,
                                canvas=canvas, extension=extension)
    if seeds is not None:
        lat = request.latents(_seed_items(seeds))
    elif _latent_files(ws) is not None:
        lat = request.latents(_latent_files(ws))
    else:
        arr = as_ws_tensor(G, ws).numpy()
        lat = Latents(ws=arr, labels=[f"w{i:02d}" for i in range(len(arr))], seeds=[None] * len(arr))
    images = request.images(lat.ws, noise_seeds=lat.noise_seeds, batch_size=batch_size, show_progress=show_progress)
    return ImageBatch(images, lat.ws, lat.names, lat.seeds)


@dataclass
class StyleMixResult:
    """``grid`` (PIL, the paper's layout), ``images`` {``'row-col'``: PIL} with the unmixed
    ``'s-s'`` images too (NVIDIA's file names), ``mixed[r][c]`` PIL, ``ws`` [R, C, num_ws, w_dim]."""
    grid: Image.Image
    images: dict[str, Image.Image]
    mixed: list[list[Image.Image]]
    row_images: list[Image.Image]
    col_images: list[Image.Image]
    ws: np.ndarray
    layers: list[int]
    row_labels: list[str]
    col_labels: list[str]


def style_mix(model=None, rows=None, cols=None, layers="coarse", *, truncation_psi: float = 1.0,
              truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
              canvas=None, extension: str | None = None, batch_size: int = 8, device="auto",
              precision: str | None = None, show_progress: bool = False) -> StyleMixResult:
    """Style mixing as in the StyleGAN paper (Fig. 3): image (r, c) takes every layer from row
    latent r except ``layers`` (``'coarse'``, ``'middle'``, ``'fine'``, ``'0-3'``, ...), which come
    from column latent c. ``rows``/``cols``: seeds (``'85,100'``, a list) or ``.npz`` files;
    ``canvas``/``extension`` as for :func:`generate_images`."""
    G = load_model(model, device, precision)
    if rows is None or cols is None:
        raise UserInputError("style mixing needs row latents and column latents")
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode, canvas=canvas,
                                extension=extension)
    row, col = request.latents(_seed_items(rows)), request.latents(_seed_items(cols))
    res = render_style_mix(request, row.ws, col.ws, layers, row.labels, col.labels, batch_size=batch_size,
                           show_progress=show_progress)
    return StyleMixResult(grid=to_pil(res.grid), images={name: to_pil(img) for name, img in res.items()},
                          mixed=[[to_pil(img) for img in r] for r in res.mixed],
                          row_images=[to_pil(i) for i in res.row_images],
                          col_images=[to_pil(i) for i in res.col_images],
                          ws=res.mixed_ws, layers=res.layers, row_labels=res.row_labels, col_labels=res.col_labels)


class VideoFrames:
    """The frames of an interpolation video, made lazily: iterate to get uint8 [H, W, 3] frames one
    at a time (nothing is kept), ``len()`` is the frame count, ``frames[i]``-style access is not offered
    on purpose. ``keyframe_labels[cell]`` lists the latents each grid cell walks through."""

    def __init__(self, request: GenerationRequest, walk: LatentWalk, positions: np.ndarray, grid: tuple[int, int],
                 motion: Motion, batch_size: int, keyframe_labels: list[list[str]]):
        self.request, self.walk, self.positions, self.grid = request, walk, positions, grid
        self.motion, self.batch_size = motion, batch_size
        self.keyframe_labels = keyframe_labels

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames (before any padding to even sizes for H.264)."""
        rows, cols = self.grid
        h, w = self.request.image_size
        return cols * w, rows * h

    def __iter__(self) -> Iterator[np.ndarray]:
        return walk_frames(self.request, self.walk, self.positions, self.grid, self.motion, self.batch_size)

    def save(self, output: str | os.PathLike, fps: float | None = None, crf: int = 18, lossless: bool = False,
             show_progress: bool = False) -> Path:
        """Encode the frames into ``output`` as they are made (see :func:`render_video`)."""
        from .render.video import check_video_path, write_video
        output = check_video_path(output)
        if fps is None:
            fps = 25 if output.suffix.lower() == ".gif" else 60
        return write_video(iter(self), output, fps=fps, crf=crf, lossless=lossless,
                           num_frames=len(self), show_progress=show_progress)

    def ws(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The latents of frames ``start:stop``, [T, cells, num_ws, w_dim] (e.g. to save a walk)."""
        return self.walk.ws(self.positions[start:stop]).numpy()


def video_frames(model=None, keyframes=None, *, interpolation: str = "cubic", loop: bool = True,
                 easing: str = "linear", frames_per_transition: int | None = None, num_frames: int | None = None,
                 grid=(1, 1), num_keyframes: int | None = None, shuffle_seed: int | None = None,
                 truncation_psi: float = 1.0, truncation_cutoff: int | None = None, class_idx: int | None = None,
                 noise_mode: str = "const", translate=(0.0, 0.0), rotate: float = 0.0,
                 translate_anim=(0.0, 0.0), rotate_anim: float = 0.0, canvas=None, extension: str | None = None,
                 batch_size: int = 8, device="auto", precision: str | None = None) -> VideoFrames:
    """Plan an interpolation video through ``keyframes`` (seeds like ``'0-5'`` and/or ``.npz`` files).

    ``interpolation``: ``'lerp'`` (linear in W), ``'slerp'`` (spherical in Z, seeds only) or
    ``'cubic'`` (spline in W). ``loop`` returns to the first keyframe and closes seamlessly.
    ``frames_per_transition`` (default 120 if ``num_frames`` is not given) or ``num_frames`` in
    total. ``grid=(rows, cols)`` runs one walk per cell, keyframes dealt as NVIDIA's gen_video.py
    (``num_keyframes`` per walk, default len(keyframes) // cells). StyleGAN3 models can also
    ``translate``/``rotate`` and animate both (``translate_anim``, ``rotate_anim`` in degrees): on a
    wide ``canvas`` (as for :func:`generate_images`) a pan travels through the wider field of view."""
    G = load_model(model, device, precision)
    if keyframes is None:
        raise UserInputError("a video needs keyframes: seeds like 0-5 or .npz latent files")
    if interpolation not in KINDS:
        raise UserInputError(f"unknown interpolation {interpolation!r}; use one of {', '.join(KINDS)}")
    if easing not in EASINGS:
        raise UserInputError(f"unknown easing {easing!r}; use one of {', '.join(EASINGS)}")
    if batch_size < 1:
        raise UserInputError("batch size must be at least 1")
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode, tuple(translate), rotate,
                                canvas=canvas, extension=extension)
    rows, cols = grid
    if rows < 1 or cols < 1:
        raise UserInputError(f"invalid grid {rows}x{cols}")
    motion = Motion(tuple(translate), rotate, tuple(translate_anim), rotate_anim)
    if motion.animated:
        request.with_transform(translate_anim, rotate_anim)       # refused for a model without input transform
    items = keyframes if isinstance(keyframes, (list, tuple)) else _seed_items(keyframes)
    lat = request.latents(items)
    idx = grid_keyframes(len(lat), rows * cols, num_keyframes, shuffle_seed)
    if frames_per_transition is None and num_frames is None:
        frames_per_transition = 120
    positions = frame_positions(idx.shape[1], frames_per_transition, num_frames, loop, easing)
    if interpolation == "slerp":
        if lat.z is None:
            raise UserInputError("slerp interpolates z and needs seeds as keyframes (latent files hold w, "
                                 "not z): use lerp or cubic")
        walk = LatentWalk(request, z=lat.z[idx], kind="slerp", loop=loop)
    else:
        walk = LatentWalk(request, ws=lat.ws[idx], kind=interpolation, loop=loop)
    labels = [[lat.labels[i] for i in cell] for cell in idx]
    return VideoFrames(request, walk, positions, (rows, cols), motion, batch_size, labels)


def render_video(model=None, keyframes=None, output="video.mp4", *, fps: float | None = None, crf: int = 18,
                 lossless: bool = False, show_progress: bool = False, **options) -> Path:
    """Write an interpolation video (``.mp4``/``.mov``/``.mkv`` H.264, or ``.gif``), streaming frames
    from the generator to ffmpeg. ``fps`` defaults to 60 (NVIDIA's) for H.264 and 25 for GIF; the
    other options are those of :func:`video_frames`; ``lossless`` writes bit-exact RGB H.264.
    Returns the path written."""
    from .render.video import check_video_path
    check_video_path(output)
    return video_frames(model, keyframes, **options).save(output, fps=fps, crf=crf, lossless=lossless,
                                                          show_progress=show_progress)

"""The one generation path: a :class:`GenerationRequest` (truncation, class, noise mode, StyleGAN3
transform) is checked once against the model; then seeds or latent files -> mapped ws -> synthesized
images. Every command, the Python API and the web explorer draw through it, so the same request gives
the same pixels everywhere (NVIDIA's z, each seed mapped on its own, NVIDIA's uint8 conversion).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserInputError
from ..networks import NOISE_MODES, Generator
from ..networks.options import CONST_EXTENSIONS
from ..networks.synthesis import check_canvas
from ..progress import progress as progress_bar
from ..render.images import to_uint8
from .seeds import class_labels, parse_seeds, z_from_seeds
from .sources import Latents, as_ws_tensor, latent_items, latents_from_file

PSI_RANGE = (-2.0, 2.0)
MAX_CANVAS_SIDE = 16384                    # pixels per side of a canvas (a 16384x16384 RGB float image is 3 GiB)


def transform_matrix(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The 3x3 matrix StyleGAN3 takes as its input transform: the *inverse* of the image transform that
    translates by ``translate`` (in units of the image half-size) and rotates by ``rotate`` degrees."""
    a = rotate / 360.0 * 2 * np.pi
    m = np.array([[np.cos(a), np.sin(a), translate[0]],
                  [-np.sin(a), np.cos(a), translate[1]],
                  [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)


def has_transform(G: Generator) -> bool:
    """Whether ``G`` takes translate/rotate (asks the network; kept for the explorer's and metrics' callers)."""
    return G.synthesis.has_input_transform


def parse_canvas(value) -> tuple[int, int] | None:
    """A canvas as (height, width): from ``'1920x1080'`` (width x height, as ``--size`` takes it) or a pair."""
    if value is None or not isinstance(value, str):
        return value
    try:
        w, h = (int(p) for p in value.lower().replace("\u00d7", "x").split("x"))
    except ValueError:
        raise UserInputError(f"size must be WIDTHxHEIGHT in pixels, e.g. 1920x1080, got {value!r}") from None
    return h, w


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """How to draw with ``G``, checked once when made: truncation (seeds only), class, noise mode,
    the StyleGAN3 input transform and the canvas. A conditional model needs ``class_idx`` wherever z is
    mapped. ``canvas=(H, W)``: images of that size instead of the training square (docs/canvas.md);
    ``extension``: how StyleGAN1/2 continue their constant (None: the network's default, 'tile')."""
    G: Generator
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None
    noise_mode: str = "const"              # one of NOISE_MODES
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0                    # degrees
    canvas: tuple[int, int] | None = None  # (height, width) or 'WxH'; None or (R, R): the training square
    extension: str | None = None

    def __post_init__(self):
        psi, cutoff, G = self.truncation_psi, self.truncation_cutoff, self.G
        if math.isnan(psi) or not PSI_RANGE[0] <= psi <= PSI_RANGE[1]:
            raise UserInputError(f"truncation psi {psi} is out of range [{PSI_RANGE[0]}, {PSI_RANGE[1]}] "
                                 f"(1 = no truncation, 0.5-0.7 = typical)")
        if cutoff is not None and not 1 <= cutoff <= G.num_ws:
            raise UserInputError(f"truncation cutoff {cutoff} is out of range: this model has {G.num_ws} layers "
                                 f"(1..{G.num_ws})")
        class_labels(G.c_dim, self.class_idx, 1, required=False)
        if self.noise_mode not in NOISE_MODES:
            raise UserInputError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        translate = tuple(float(v) for v in self.translate)
        if len(translate) != 2 or not all(math.isfinite(v) for v in (*translate, self.rotate)):
            raise UserInputError(f"translate must be two finite numbers and rotate one, got {self.translate}, "
                                 f"{self.rotate}")
        object.__setattr__(self, "translate", translate)
        if not self.identity_transform and not G.synthesis.has_input_transform:
            raise UserInputError("translate/rotate need a StyleGAN3 model (this one has no input transform)")
        object.__setattr__(self, "canvas", self._checked_canvas())

    def _checked_canvas(self) -> tuple[int, int] | None:
        canvas, G = parse_canvas(self.canvas), self.G
        if self.extension is not None:
            if self.extension not in CONST_EXTENSIONS:
                raise UserInputError(f"canvas extension must be one of {', '.join(CONST_EXTENSIONS)}, "
                                     f"got {self.extension!r}")
            if G.synthesis.has_input_transform:
                raise UserInputError("StyleGAN3 has no constant to extend: its canvas is a wider view of the "
                                     "same image (leave out the extension)")
        try:
            canvas = check_canvas(canvas, G.img_shape)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        if canvas is not None and max(canvas) > MAX_CANVAS_SIDE:
            raise UserInputError(f"canvas {canvas[1]}x{canvas[0]} (width x height) is too large: at most "
                                 f"{MAX_CANVAS_SIDE} pixels a side")
        return canvas

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images this request makes."""
        return self.canvas or tuple(self.G.img_shape)

    @property
    def canvas_note(self) -> str | None:
        """What the user should hear once when the canvas is rendered larger and cropped, else None."""
        if self.canvas is None:
            return None
        rendered = tuple(self.G.synthesis.canvas_size(self.canvas))
        if rendered == self.canvas:
            return None
        (h, w), (rh, rw) = self.canvas, rendered
        return (f"canvas {w}x{h}: this model renders sizes in steps of {self.G.synthesis.canvas_stride} pixels, "
                f"so each image is rendered at {rw}x{rh} and its centre {w}x{h} kept")

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def identity_transform(self) -> bool:
        return self.translate == (0.0, 0.0) and self.rotate == 0

    def with_transform(self, translate=(0.0, 0.0), rotate: float = 0.0) -> GenerationRequest:
        """The same request with another translate/rotate (a video's camera motion)."""
        if (tuple(translate), rotate) == (self.translate, self.rotate):
            return self
        return dataclasses.replace(self, translate=tuple(translate), rotate=rotate)

    def labels(self, count: int) -> torch.Tensor | None:
        """One-hot labels [count, c_dim] on the model's device (None for an unconditional model)."""
        return class_labels(self.G.c_dim, self.class_idx, count, device=self.device)

    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] float32 (CPU) of z [N, z_dim], mapped as one batch with this truncation."""
        c = self.labels(len(z))
        with torch.inference_mode():
            ws = self.G.mapping(z.to(self.device), c, truncation_psi=self.truncation_psi,
                                truncation_cutoff=self.truncation_cutoff)
        return ws.float().cpu()

    def seed_latents(self, seeds) -> Latents:
        """ws of ``seeds`` (a spec like ``'0-3,7'`` or a list), exactly as ``generate`` makes them.

        Each seed is mapped on its own, as NVIDIA's gen_images.py does: a batched matmul rounds
        differently, and a seed's w should not depend on which other seeds were asked for with it."""
        seed_list = parse_seeds(seeds) if not isinstance(seeds, (list, tuple, range)) else [int(s) for s in seeds]
        self.labels(1)                                        # a conditional model needs its class
        z = z_from_seeds(seed_list, self.G.z_dim)
        ws = [self.map_z(z[i:i + 1]) for i in range(len(seed_list))]
        ws = torch.cat(ws).numpy() if ws else np.zeros([0, self.G.num_ws, self.G.w_dim], np.float32)
        return Latents(ws=ws, labels=[str(s) for s in seed_list], seeds=seed_list, z=z.numpy(),
                       names=[f"seed{s:04d}" for s in seed_list])

    def latents(self, items) -> Latents:
        """Latents from seed specs and ``.npz`` paths, in the order given (see :func:`sources.latent_items`);
        truncation applies to the seeds, files are used exactly as saved."""
        parts = [self.seed_latents(spec) if kind == "seeds" else latents_from_file(self.G, spec)
                 for kind, spec in latent_items(items)]
        return Latents.concat(parts)

    def synthesize(self, ws, noise: dict[str, torch.Tensor] | None = None, noise_seeds: list[int] | None = None,
                   batch_size: int = 8, show_progress: bool = False, desc: str = "generating") -> torch.Tensor:
        """Images [N, C, H, W] float32 (CPU) of ws [N, num_ws, w_dim], ``batch_size`` at a time.

        ``noise``: explicit noise maps by layer name ([1, 1, H, W], e.g. a projection's) instead of the
        noise mode. ``noise_seeds``: with ``noise_mode='random'``, each image's noise comes from
        ``torch.manual_seed(noise_seeds[i])`` (one image at a time; the global RNG is left alone),
        so files stay reproducible; without them random noise comes from the global RNG."""
        if batch_size < 1:
            raise UserInputError("batch size must be at least 1")
        ws = as_ws_tensor(self.G, ws)
        if self.noise_mode == "random" and noise_seeds is not None and not noise:
            return torch.cat([self._seeded(ws[i:i + 1], s) for i, s in enumerate(noise_seeds)]) if len(ws) \
                else self._empty()
        out = []
        starts = range(0, ws.shape[0], batch_size)
        for i in progress_bar(starts, desc=desc, unit="batch", disable=not show_progress):
            out.append(self._synthesis(ws[i:i + batch_size], noise))
        return torch.cat(out) if out else self._empty()

    def images(self, ws, **options) -> np.ndarray:
        """uint8 [N, H, W, C] (NVIDIA's conversion) of :meth:`synthesize`."""
        return to_uint8(self.synthesize(ws, **options))

    def _synthesis(self, ws: torch.Tensor, noise: dict | None) -> torch.Tensor:
        if noise:
            noise = {k: v[:1].to(self.device).expand(len(ws), -1, -1, -1) for k, v in noise.items()}
        transform = None if self.identity_transform else transform_matrix(self.translate, self.rotate)
        canvas = {} if self.canvas is None else {"canvas": self.canvas}
        if self.extension is not None:
            canvas["extension"] = self.extension
        with torch.inference_mode():
            return self.G.synthesis(ws.to(self.device), noise_mode=self.noise_mode, noise=noise,
                                    transform=transform, **canvas).float().cpu()

    def _seeded(self, ws: torch.Tensor, seed: int) -> torch.Tensor:
        device = self.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            return self._synthesis(ws, None)

    def _empty(self) -> torch.Tensor:
        G = self.G
        return torch.zeros([0, G.img_channels, *self.image_size])

"""Point-based editing ("drag"): move handle points of a generated image to target points by optimising
its w+ (Pan et al., "Drag Your GAN", SIGGRAPH 2023), implemented from the paper's equations.

Each step renders ``ws`` once with gradients and reads the feature map ``F`` of one synthesis layer
(:func:`feature_layer`), bilinearly resized to the image size; then

* point tracking (paper Eq. 2): every handle ``p_i`` moves to the pixel of the square of radius ``r2``
  around it whose feature is nearest (L1) to the handle's feature in the original image, ``f_i = F0(p_i)``;
* stop when every handle is within ``tolerance`` pixels of its target;
* motion supervision (paper Eq. 1): with ``d_i = (t_i - p_i) / |t_i - p_i|``,
  ``L = sum_i mean_{q in disc(p_i, r1)} |F(q + d_i) - sg(F(q))|  +  lambda * mean |(F - F0) * (1 - M)|``
  (``F(q + d_i)`` bilinear, ``sg`` = stop-gradient, ``M`` the mask of the region allowed to change), one Adam
  step on the ws of the first ``layers`` synthesis layers (the rest keep their original w).

Both terms are means over their pixels and channels (the paper writes sums), so ``lambda`` does not depend
on the image size or the radius. Everything is float32; with the same inputs and ``seed`` a run is
bitwise repeatable on the CPU. Image coordinates are ``(x, y)`` pixels, ``(0, 0)`` the centre of the top-left
pixel. The per-generation feature layer is documented in docs/drag.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserInputError
from ..networks import NOISE_MODES, Generator

FEATURE_RESOLUTION = 128    # the paper's StyleGAN2 feature: the output of the 6th block (128x128 from 256^2 up)
LAYERS_UP_TO = 16           # optimise the ws of layers working at <= 16x16 (the paper's first 6 at 256^2/512^2)
PAPER_LR, PAPER_RESOLUTION = 2e-3, 256
LAMBDA_MASK = 2.0          # weight of the mask term (both terms are means; chosen on the built-in model)


@dataclass(frozen=True)
class FeatureLayer:
    """Where ``F`` comes from: the output of ``S.get_submodule(name)`` with ``crop`` pixels of margin removed
    on each side (StyleGAN3's feature maps extend beyond the image), then resized to the image."""
    name: str
    resolution: int                        # the feature map's size inside the image, before resizing
    crop: int = 0


@dataclass(frozen=True)
class DragStep:
    """One step of :func:`drag`: the ws it rendered, that image, and where the handles are in it."""
    step: int                              # 0 = the starting image
    ws: torch.Tensor                       # [1, num_ws, w_dim] float32, CPU
    image: torch.Tensor                    # [1, C, H, W] float32 in about [-1, 1], CPU
    points: np.ndarray                     # [K, 2] float32 (x, y): the tracked handles
    distances: np.ndarray                  # [K] float32: pixels from each handle to its target
    done: bool                             # every handle within the tolerance (the last step)


def feature_resolution(img_resolution: int) -> int:
    """The paper's 128x128 feature for 256^2 and larger images; half the image size below (16x16 at 32^2)."""
    return max(4, min(FEATURE_RESOLUTION, img_resolution // 2))


def feature_layer(G: Generator) -> FeatureLayer:
    """The layer whose output is ``F`` (the table in docs/drag.md).

    StyleGAN1/2: the output of block ``b{R}``, ``R = feature_resolution(img_resolution)``. StyleGAN3: the last
    layer whose ``layer_resolutions`` entry is ``<= R``, its margin cropped (the layer's own sampling rate is
    its size inside the image)."""
    S = G.synthesis
    R = feature_resolution(S.img_resolution)
    layers = S.style_layers()
    if G.generation in ("stylegan1", "stylegan2"):
        return FeatureLayer(f"b{R}", R)
    resolutions = S.layer_resolutions
    name = [layer.name for layer in layers if resolutions[layer.w_index] <= R][-1]
    module = S.get_submodule(name)
    size, rate = int(module.out_size[0]), int(module.out_sampling_rate)
    return FeatureLayer(name, rate, crop=(size - rate) // 2)


def default_layers(G: Generator) -> int:
    """How many leading ws :func:`drag` optimises: those of the layers at <= 16x16 (the paper's first 6 on
    StyleGAN2 at 256^2 and 512^2), and at most a quarter of the image size on small models (8x8 at 32^2),
    so that the finest layers keep the image's detail; at least one."""
    top = min(LAYERS_UP_TO, G.synthesis.img_resolution // 4)
    return max(1, sum(1 for r in G.synthesis.layer_resolutions if r <= top))


def default_lr(img_resolution: int) -> float:
    """Adam's step size: the paper's 2e-3 at 256^2 and above; below, scaled by 256 / resolution (1.6e-2 at
    32^2), since a pixel of a small image is a larger part of the picture and takes a larger change of w."""
    return PAPER_LR * max(1.0, PAPER_RESOLUTION / img_resolution)


def default_radii(img_resolution: int) -> tuple[int, int]:
    """``(r1, r2)``: the paper's 3 and 12 pixels at 256^2 and above, scaled down below (2 and 3 at 32^2)."""
    scale = min(img_resolution, 256) / 256
    return max(2, round(3 * scale)), max(3, round(12 * scale))


def check_points(points, shape: tuple[int, int], what: str) -> np.ndarray:
    """``[[x, y], ...]`` inside an image of ``shape = (H, W)`` as float32 [K, 2]; :class:`UserInputError`
    otherwise."""
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} must be a list of (x, y) pairs, got {points!r}") from None
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise UserInputError(f"{what} must be a non-empty list of (x, y) pairs, got shape {p.shape}")
    h, w = shape
    top = np.array([w - 1, h - 1], dtype=np.float64)
    bad = [tuple(q) for q in p if not (np.isfinite(q).all() and (0 <= q).all() and (q <= top).all())]
    if bad:
        ranges = f"x and y must be 0..{w - 1}" if h == w else f"x must be 0..{w - 1}, y 0..{h - 1}"
        raise UserInputError(f"{what} point {bad[0][0]:g},{bad[0][1]:g} is outside the {w}x{h} image ({ranges})")
    return p.astype(np.float32)


def check_mask(mask, shape: tuple[int, int]) -> torch.Tensor | None:
    """A mask of the image's ``shape = (H, W)`` (1 = may change, 0 = keep) as float32 in [0, 1], or None."""
    if mask is None:
        return None
    m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    if tuple(m.shape) != tuple(shape):
        raise UserInputError(f"the mask must be {shape[1]}x{shape[0]} (the image size), "
                             f"got {'x'.join(str(s) for s in m.shape[::-1])}")
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise UserInputError("mask values must be in [0, 1]")
    if m.max() == 0:
        raise UserInputError("the mask is empty: nothing may change")
    return m


class _FeatureCapture:
    """Renders ws and returns ``(F resized to the image, image)`` with a forward hook on the feature layer."""

    def __init__(self, G: Generator, layer: FeatureLayer, noise_mode: str, noise: dict | None):
        self.S, self.layer, self.noise_mode, self.noise = G.synthesis, layer, noise_mode, noise
        self.size = tuple(G.synthesis.img_shape)

    def __call__(self, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured = []
        hook = self.S.get_submodule(self.layer.name).register_forward_hook(
            lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
        try:
            # Unfused modulation: the gradient reaches the styles through the activations, not through
            # per-sample weights, so no weight-gradient convolution runs (4x faster backward on a CPU).
            image = self.S(ws, noise_mode=self.noise_mode, noise=self.noise, fused_modconv=False)
        finally:
            hook.remove()
        feat = captured[0].float()
        c = self.layer.crop
        if c:
            feat = feat[:, :, c:feat.shape[2] - c, c:feat.shape[3] - c]
        feat = F.interpolate(feat, size=self.size, mode="bilinear", align_corners=False)
        return feat, image.float()


def motion_loss(feat: torch.Tensor, point: np.ndarray, target: np.ndarray, r1: int) -> torch.Tensor:
    """Paper Eq. 1 for one handle: mean over the disc of radius ``r1`` around ``point`` (integer pixels) of
    ``|F(q + d) - sg(F(q))|``, ``d`` the unit step toward ``target``. ``F(q + d)`` is the bilinear mix of four
    shifted crops of ``feat`` (slices, so the backward pass is deterministic); pixels whose neighbours would
    fall outside the image are left out."""
    height, width = feat.shape[-2:]
    d = (target - point) / max(float(np.linalg.norm(target - point)), 1e-8)
    ox, oy = math.floor(d[0]), math.floor(d[1])
    ax, ay = float(d[0] - ox), float(d[1] - oy)
    px, py = int(point[0]), int(point[1])
    x0, x1 = max(px - r1, -ox, 0), min(px + r1, width - 2 - ox, width - 1)
    y0, y1 = max(py - r1, -oy, 0), min(py + r1, height - 2 - oy, height - 1)
    if x0 > x1 or y0 > y1:
        return feat.new_zeros([])

    def crop(dx: int, dy: int) -> torch.Tensor:
        return feat[:, :, y0 + dy:y1 + dy + 1, x0 + dx:x1 + dx + 1]
    moved = ((1 - ax) * (1 - ay) * crop(ox, oy) + ax * (1 - ay) * crop(ox + 1, oy)
             + (1 - ax) * ay * crop(ox, oy + 1) + ax * ay * crop(ox + 1, oy + 1))
    ys = torch.arange(y0, y1 + 1, device=feat.device, dtype=torch.float32)[:, None] - py
    xs = torch.arange(x0, x1 + 1, device=feat.device, dtype=torch.float32)[None, :] - px
    disc = (xs.square() + ys.square() <= r1 * r1).float()
    err = (moved - crop(0, 0).detach()).abs().mean(dim=1)[0]
    return (err * disc).sum() / disc.sum()


def track_points(feat: torch.Tensor, f0: torch.Tensor, points: np.ndarray, r2: int) -> np.ndarray:
    """Paper Eq. 2: each point moves to the pixel of the square of radius ``r2`` around it whose feature is
    nearest (L1) to its original feature ``f0[i]`` (first such pixel in row order on ties)."""
    height, width = feat.shape[-2:]
    out = points.copy()
    for i, (px, py) in enumerate(points.astype(np.int64)):
        x0, x1 = max(px - r2, 0), min(px + r2, width - 1)
        y0, y1 = max(py - r2, 0), min(py + r2, height - 1)
        window = feat[0, :, y0:y1 + 1, x0:x1 + 1]
        dist = (window - f0[i][:, None, None]).abs().sum(dim=0)
        k = int(torch.argmin(dist.flatten()))
        out[i] = (x0 + k % (x1 - x0 + 1), y0 + k // (x1 - x0 + 1))
    return out


def held_noise(G: Generator, noise_mode: str, noise: dict | None = None, seed: int = 0) -> dict | None:
    """The explicit noise maps a drag holds: ``noise`` if given, else with ``noise_mode='random'`` maps drawn
    once from ``seed`` ([1, 1, H, W] each; a moving image under fresh noise every step could not be
    tracked), else None (the mode's own 'const' or 'none')."""
    if noise:
        return dict(noise)
    if noise_mode != "random" or not G.synthesis.noise_maps():
        return None
    gen = torch.Generator().manual_seed(int(seed))
    return {k: torch.randn([1, 1, *v.shape[-2:]], generator=gen) for k, v in G.synthesis.noise_maps().items()}


def drag(G: Generator, ws, handles, targets, mask=None, steps: int = 200, layers: int | None = None,
         lr: float | None = None, r1: int | None = None, r2: int | None = None, lambda_mask: float = LAMBDA_MASK,
         tolerance: float = 1.0, noise_mode: str = "const", noise: dict | None = None,
         seed: int = 0) -> Iterator[DragStep]:
    """Drag ``handles`` ([[x, y], ...] image pixels) of the image of ``ws`` ([1, num_ws, w_dim] or
    [num_ws, w_dim]) to ``targets``; yields a :class:`DragStep` per step, step 0 being the start, and stops
    when every handle is within ``tolerance`` pixels of its target (``done``) or after ``steps`` steps.

    ``mask`` [H, W]: 1 where the image may change (outside, the features are held to the original's with
    weight ``lambda_mask``). ``layers``: how many leading ws are optimised (:func:`default_layers`);
    ``lr``: Adam's step size (:func:`default_lr`); ``r1``/``r2``: the motion and tracking radii
    (:func:`default_radii`); ``noise``: explicit noise maps (a projection's), else ``noise_mode``
    ('random' noise is drawn from ``seed`` once, :func:`held_noise`). The arguments are checked here, when
    called (:class:`UserInputError`), before the first step is asked for."""
    S = G.synthesis
    shape, size = tuple(S.img_shape), S.img_resolution       # (H, W); the longer side sets lr and radii
    ws = torch.as_tensor(ws, dtype=torch.float32)
    ws = ws[None] if ws.ndim == 2 else ws
    if tuple(ws.shape) != (1, S.num_ws, S.w_dim):
        raise UserInputError(f"drag takes one latent [1, {S.num_ws}, {S.w_dim}], got {tuple(ws.shape)}")
    handles = np.rint(check_points(handles, shape, "handle"))
    targets = check_points(targets, shape, "target")
    if len(handles) != len(targets):
        raise UserInputError(f"{len(handles)} handle(s) but {len(targets)} target(s): give one target per handle")
    layers = default_layers(G) if layers is None else int(layers)
    if not 1 <= layers <= S.num_ws:
        raise UserInputError(f"layers must be 1..{S.num_ws} (the model's number of ws), got {layers}")
    lr = default_lr(size) if lr is None else float(lr)
    if steps < 0 or not lr > 0 or tolerance < 0 or lambda_mask < 0:
        raise UserInputError("steps, tolerance and lambda_mask must be >= 0 and lr > 0")
    if noise_mode not in NOISE_MODES:
        raise UserInputError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    d1, d2 = default_radii(size)
    m = check_mask(mask, shape)
    keep = None if m is None or m.min() == 1 else 1 - m
    return _drag_steps(G, ws, handles, targets, keep, steps, layers, lr, int(r1 or d1), int(r2 or d2), lambda_mask,
                       tolerance, noise_mode, held_noise(G, noise_mode, noise, seed))


def _drag_steps(G: Generator, ws, handles, targets, keep, steps, layers, lr, r1, r2, lambda_mask, tolerance,
                noise_mode, noise) -> Iterator[DragStep]:
    """The loop of :func:`drag` on checked arguments, in the paper's order: render, track, stop, supervise, step."""
    device = next(G.parameters()).device
    keep = keep.to(device)[None, None] if keep is not None else None
    noise = {k: v.to(device) for k, v in noise.items()} if noise else None
    render = _FeatureCapture(G, feature_layer(G), noise_mode, noise)
    w_opt = ws[:, :layers].clone().to(device).requires_grad_(True)
    w_rest = ws[:, layers:].to(device)
    optimizer = torch.optim.Adam([w_opt], lr=lr)
    points, feat0, f0 = handles.copy(), None, None
    for step in range(steps + 1):
        current = torch.cat([w_opt, w_rest], dim=1)
        with torch.enable_grad():
            feat, image = render(current)
        if feat0 is None:
            feat0 = feat.detach()
            f0 = torch.stack([feat0[0, :, int(y), int(x)] for x, y in handles])
        else:
            points = track_points(feat.detach(), f0, points, r2)
        distances = np.linalg.norm(targets - points, axis=1).astype(np.float32)
        done = bool((distances <= tolerance).all())
        yield DragStep(step, current.detach().cpu(), image.detach().cpu(), points.astype(np.float32),
                       distances, done)
        if done or step == steps:
            return
        with torch.enable_grad():
            loss = sum(motion_loss(feat, p, t, r1) for p, t, dist in zip(points, targets, distances)
                       if dist > tolerance)
            if keep is not None:
                loss = loss + lambda_mask * ((feat - feat0).abs() * keep).sum() / (keep.sum() * feat.shape[1])
            if not torch.is_tensor(loss) or not loss.requires_grad:
                continue                    # no pixel of any disc can move (cannot happen inside the image)
            (grad,) = torch.autograd.grad(loss, [w_opt])
        w_opt.grad = grad
        optimizer.step()


def drag_to_end(G: Generator, ws, handles, targets, **options) -> tuple[DragStep, DragStep]:
    """``(first, last)`` step of :func:`drag` (the start and the result)."""
    first = last = None
    for last in drag(G, ws, handles, targets, **options):
        first = first or last
    return first, last

"""Projection: find the latent (and, for StyleGAN2, the noise maps) that makes the generator draw a given image.

The optimisation follows the published StyleGAN2-ADA projector (Karras et al. 2020, Sec. 5 / Appendix D):
Adam (0.9, 0.999) at lr 0.1 with a linear ramp-up over the first 5 % of the steps and a cosine ramp-down over
the last 25 %; Gaussian noise on w of ``w_std * 0.05 * max(0, 1 - t / 0.75)^2``; w starts at the mean of
10 000 mapped ``RandomState(123)`` z; the per-pixel noise maps are optimised too, with a multi-scale
autocorrelation penalty (weight 1e5) and re-normalised to zero mean and unit variance after every step.
Unlike that projector, the noise maps start from the model's own constant noise rather than a fresh draw:
the same distribution, but the start is then exactly the image ``noise_mode='const'`` gives.

Beyond that projector: W+ (one w per layer), batches of targets (each with its own noise maps),
conditional models, StyleGAN3, any :class:`~stylegan.perception.lpips.PerceptualLoss`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import devices
from ..errors import UserInputError
from ..networks import Generator
from ..progress import progress as progress_bar
from ..render.images import from_uint8, to_uint8
from ..perception.lpips import NoDownloadLoss, PerceptualLoss
from .seeds import check_labels, z_samples

SPACES = ("w", "w+")


@dataclass(frozen=True)
class ProjectionConfig:
    space: str = "w"                       # 'w': one w for every layer; 'w+': one w per layer
    num_steps: int = 1000                  # optimisation steps
    initial_learning_rate: float = 0.1     # Adam learning rate at the top of the schedule
    lr_rampup_length: float = 0.05         # fraction of the steps for the linear warm-up
    lr_rampdown_length: float = 0.25       # fraction of the steps for the cosine ramp-down
    initial_noise_factor: float = 0.05     # w noise at step 0, in units of w_std
    noise_ramp_length: float = 0.75        # the w noise reaches zero at this fraction of the steps
    regularize_noise_weight: float = 1e5   # weight of the noise-map autocorrelation penalty
    optimize_noise: bool = True            # optimise StyleGAN2's per-pixel noise maps (no effect for StyleGAN3)
    w_avg_samples: int = 10000             # z samples for the starting point and w_std
    seed: int = 303                        # seeds the noise added to w during the optimisation

    def __post_init__(self):
        if self.space not in SPACES:
            raise UserInputError(f"unknown projection space {self.space!r}; use 'w' or 'w+'")
        if self.num_steps < 1:
            raise UserInputError(f"--steps must be at least 1, got {self.num_steps}")
        if not self.initial_learning_rate > 0:
            raise UserInputError("the learning rate must be positive")
        if self.w_avg_samples < 2:
            raise UserInputError("w_avg_samples must be at least 2")


@dataclass
class Projection:
    """What a projection found, for N targets."""
    ws: torch.Tensor                       # [N, num_ws, w_dim] float32 (CPU)
    noise: dict[str, torch.Tensor]         # noise-map name -> [N, 1, H, W] (StyleGAN2; empty otherwise)
    images: np.ndarray                     # [N, H, W, C] uint8: the generator's image of the result
    targets: np.ndarray                    # [N, H, W, C] uint8
    loss_history: np.ndarray               # [steps, N] perceptual distance at each step
    psnr: np.ndarray                       # [N] dB, result vs target (uint8)
    initial_psnr: np.ndarray               # [N] dB, the starting image (w_avg) vs target
    loss_name: str
    space: str
    seconds_per_step: float
    c: torch.Tensor | None = None          # [N, c_dim] labels used (conditional models)
    extra: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> np.ndarray:
        return self.loss_history[-1]


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of uint8 images [N, H, W, C] (per image; 100 dB if identical)."""
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return np.where(mse > 0, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0)


def w_stats(G: Generator, c: torch.Tensor | None = None, num_samples: int = 10000,
            seed: int = 123) -> tuple[torch.Tensor, float]:
    """Mean w and its spread ``sqrt(sum ||w - w_mean||^2 / n)`` over ``num_samples`` mapped z
    drawn with ``RandomState(seed)`` (the projector's starting point). ``c``: one label row [c_dim]."""
    device = next(G.parameters()).device
    z = z_samples(num_samples, G.z_dim, seed, device)
    cs = None if c is None or G.c_dim == 0 else c.reshape(1, -1).to(device, torch.float32).repeat(num_samples, 1)
    ws = []
    with torch.no_grad():
        for i in range(0, num_samples, 2048):
            ws.append(G.mapping(z[i:i + 2048], None if cs is None else cs[i:i + 2048])[:, 0]
                      .to(devices.accumulation_dtype(device)))
    w = torch.cat(ws)
    w_mean = w.mean(0)
    w_std = float(((w - w_mean).square().sum() / num_samples).sqrt())
    return w_mean.to(torch.float32), w_std


def noise_regularizer(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample multi-scale autocorrelation of the noise maps (shifted by one pixel in x and y,
    averaged, squared; then halve the resolution until 8x8): [N]."""
    reg = None
    for v in noise_maps:
        while True:
            term = (v * torch.roll(v, shifts=1, dims=3)).mean(dim=[1, 2, 3]).square() \
                + (v * torch.roll(v, shifts=1, dims=2)).mean(dim=[1, 2, 3]).square()
            reg = term if reg is None else reg + term
            if v.shape[2] <= 8:
                break
            v = torch.nn.functional.avg_pool2d(v, 2)
    return reg


def clip_like_target(synth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Clamp the synthesized image where the target is saturated (pure black or white after uint8 rounding):
    any value beyond the range looks the same there, so it must not count as an error."""
    synth = torch.where(target >= 1, synth.clamp(max=1), synth)
    return torch.where(target <= -1, synth.clamp(min=-1), synth)


def learning_rate(step: int, cfg: ProjectionConfig) -> float:
    t = step / cfg.num_steps
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / cfg.lr_rampup_length) if cfg.lr_rampup_length > 0 else ramp
    return cfg.initial_learning_rate * ramp


def _targets_tensor(G: Generator, targets, device) -> torch.Tensor:
    if isinstance(targets, np.ndarray):
        if targets.ndim == 3:
            targets = targets[None]
        if targets.dtype != np.uint8 or targets.ndim != 4:
            raise UserInputError(f"targets must be uint8 images [N, H, W, C], got {targets.dtype} {targets.shape}")
        x = from_uint8(targets, device)
    else:
        x = targets.to(device, torch.float32)
        if x.ndim == 3:
            x = x[None]
    expected = (G.img_channels, *G.img_shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise UserInputError(f"targets must be {expected[1]}x{expected[2]} with {expected[0]} channel(s) for this "
                             f"model, got shape {tuple(x.shape)} (NCHW)")
    return x


def _starting_point(G: Generator, c: torch.Tensor | None, n: int, cfg: ProjectionConfig,
                    initial_ws: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """The latents to optimise, [n, 1 or num_ws, w_dim], starting at ``initial_ws`` (in W space its mean
    over the layers) or else at the mean w of each target's label, and the largest w spread (which
    scales the w noise)."""
    device = next(G.parameters()).device
    w_start = torch.empty([n, G.w_dim], device=device)
    w_std = 0.0
    rows = c if c is not None else [None] * n
    cache: dict[tuple, tuple[torch.Tensor, float]] = {}
    for i, row in enumerate(rows):
        key = () if row is None else tuple(row.tolist())
        if key not in cache:
            cache[key] = w_stats(G, row, cfg.w_avg_samples)
        w_start[i], std = cache[key]
        w_std = max(w_std, std)
    num_opt_ws = G.num_ws if cfg.space == "w+" else 1
    if initial_ws is not None:
        initial_ws = torch.as_tensor(initial_ws, dtype=torch.float32).to(device)
        if tuple(initial_ws.shape) != (n, G.num_ws, G.w_dim):
            raise UserInputError(f"initial ws must be [{n}, {G.num_ws}, {G.w_dim}], got {tuple(initial_ws.shape)}")
        if cfg.space == "w+":
            return initial_ws.clone().requires_grad_(True), w_std
        w_start = initial_ws.mean(1)
    return w_start[:, None, :].repeat(1, num_opt_ws, 1).clone().requires_grad_(True), w_std


def project(
    G: Generator,
    targets,                                 # uint8 [N, H, W, C] / [H, W, C], or float [N, C, H, W] in [-1, 1]
    loss: PerceptualLoss | None = None,      # default: NoDownloadLoss without a discriminator
    config: ProjectionConfig = ProjectionConfig(),
    c: torch.Tensor | None = None,           # [c_dim] or [N, c_dim] one-hot labels (conditional models)
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,  # (step, images, dist) per step
    show_progress: bool = False,
    desc: str = "projecting",
    initial_ws: torch.Tensor | None = None,  # [N, num_ws, w_dim] start (e.g. an encoder's); None: mean w
) -> Projection:
    """Optimise latents (W or W+, plus StyleGAN2 noise maps) so ``G`` reproduces ``targets``.

    ``initial_ws`` replaces the mean-w start (in W space its mean over the layers is used)."""
    cfg = config
    device = next(G.parameters()).device
    target = _targets_tensor(G, targets, device)
    n = target.shape[0]
    c = check_labels(c, G.c_dim, n, device)
    loss = (loss or NoDownloadLoss()).to(device)
    G = G.eval().requires_grad_(False)
    w_opt, w_std = _starting_point(G, c, n, cfg, initial_ws)

    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    maps = G.synthesis.noise_maps() if cfg.optimize_noise else {}
    # Noise maps start from the model's constant noise (itself a N(0, 1) draw), so a projection starts
    # from exactly what ``noise_mode='const'`` draws; each target then gets its own maps.
    noise = {name: m.detach().to(device, torch.float32).reshape(1, 1, *m.shape[-2:]).repeat(n, 1, 1, 1)
             .requires_grad_(True) for name, m in maps.items()}
    noise_list = list(noise.values())
    optimizer = torch.optim.Adam([w_opt] + noise_list, betas=(0.9, 0.999), lr=cfg.initial_learning_rate)

    def expand(w: torch.Tensor) -> torch.Tensor:
        return w.repeat(1, G.num_ws, 1) if w.shape[1] == 1 else w

    with torch.no_grad():
        target_features = loss.features(target)
        target_u8 = to_uint8(target)
        initial_u8 = to_uint8(G.synthesis(expand(w_opt), noise_mode="const", noise=noise))

    history = torch.empty([cfg.num_steps, n], device=device)
    bar = progress_bar(range(cfg.num_steps), desc=desc, unit="step", disable=not show_progress)
    start = time.perf_counter()
    for step in bar:
        t = step / cfg.num_steps
        w_noise_scale = w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp_length) ** 2
        lr = learning_rate(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
        synth = G.synthesis(expand(w_opt + w_noise), noise_mode="const", noise=noise)
        dist = loss.distance(target_features, loss.features(clip_like_target(synth, target)))
        reg = noise_regularizer(noise_list) if noise_list else torch.zeros_like(dist)
        total = (dist + cfg.regularize_noise_weight * reg).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        history[step] = dist.detach()
        with torch.no_grad():
            for v in noise_list:
                v -= v.mean(dim=[1, 2, 3], keepdim=True)
                v *= v.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        if on_step is not None:
            on_step(step, synth.detach(), dist.detach())
        if show_progress and (step % 10 == 0 or step == cfg.num_steps - 1):
            bar.set_postfix(loss=f"{float(dist.detach().mean()):.4f}", refresh=False)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        ws = expand(w_opt.detach())
        images = to_uint8(G.synthesis(ws, noise_mode="const", noise=noise))
    bar.close()
    return Projection(
        ws=ws.float().cpu(),
        noise={k: v.detach().float().cpu() for k, v in noise.items()},
        images=images,
        targets=target_u8,
        loss_history=history.float().cpu().numpy(),
        psnr=psnr(images, target_u8),
        initial_psnr=psnr(initial_u8, target_u8),
        loss_name=loss.name,
        space=cfg.space,
        seconds_per_step=elapsed / cfg.num_steps,
        c=None if c is None else c.cpu(),
    )


NOISE_PREFIX = "noise."


def noise_to_npz(noise: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Noise maps as extra ``projected_w.npz`` arrays: ``noise.<layer>`` float32 [N, 1, H, W]."""
    return {f"{NOISE_PREFIX}{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in noise.items()}


def noise_from_npz(arrays: dict, G: Generator | None = None) -> dict[str, torch.Tensor]:
    """The noise maps stored by :func:`noise_to_npz` (empty if the file has none), checked against ``G``."""
    noise = {k[len(NOISE_PREFIX):]: torch.from_numpy(np.asarray(v, np.float32))
             for k, v in arrays.items() if k.startswith(NOISE_PREFIX)}
    if G is not None and noise:
        maps = G.synthesis.noise_maps()
        if set(noise) != set(maps):
            raise UserInputError("the projection's noise maps do not match this model's layers "
                                 "(was it projected with another network?)")
        for k, v in noise.items():
            if v.ndim != 4 or v.shape[1] != 1 or tuple(v.shape[-2:]) != tuple(maps[k].shape[-2:]):
                raise UserInputError(f"noise map {k} has shape {tuple(v.shape)}, "
                                     f"the model needs [N, 1, {maps[k].shape[-1]}, ...]")
    return noise

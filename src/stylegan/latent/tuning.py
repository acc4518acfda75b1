"""Pivotal tuning (Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real Images", Sec. 3):
after an inversion, fine-tune a copy of the synthesis network so that the inversion's latent (the
pivot) draws the target exactly, while the rest of latent space stays as it was.

* Reconstruction (their Eq. 2): the perceptual distance plus ``l2_weight`` times the pixel MSE between
  the target and ``G_tuned(w_pivot)``.
* Locality (their Eq. 3-4): latents ``w_r = w_p + alpha (w_z - w_p) / ||w_z - w_p||`` between the
  pivot and random samples ``w_z``; ``G_tuned(w_r)`` must keep drawing ``G(w_r)`` (same distance),
  weighted by ``locality_weight``. ``alpha`` is ``locality_distance`` times the model's w spread
  (their 30 is for FFHQ's W; a spread-relative distance carries over to any model). The defaults were
  measured on the built-in model (docs/projection.md): a short distance and a weight of 1 keep edits near
  the pivot closest to the untuned model's; PTI's far samples (1 spread, weight 0.1) kept other samples
  equally close but changed a SeFa edit half as much again.

Only the synthesis network is tuned: the mapping network, ``w_avg``, W itself, and with them every
direction found on the original model and every encoder trained for it, stay valid.
:func:`save_tuned` writes the result as a native model file that every command loads.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import Checkpoint, save_network
from ..errors import UserInputError
from ..networks import Generator
from ..perception.lpips import NoDownloadLoss, PerceptualLoss
from ..progress import progress as progress_bar
from ..render.images import to_uint8
from .projection import _targets_tensor, clip_like_target, psnr, w_stats


@dataclass(frozen=True)
class TuningConfig:
    steps: int = 100                       # optimisation steps
    lr: float = 1e-3                       # Adam learning rate (PTI: 3e-4 over 350 steps for FFHQ)
    l2_weight: float = 1.0                 # pixel MSE added to the perceptual distance (PTI's lambda_L2)
    locality_weight: float = 1.0           # weight of the locality regulariser (PTI: 0.1)
    locality_distance: float = 0.3         # alpha, in units of the model's w spread
    locality_samples: int = 2              # random latents per pivot and regulariser evaluation
    locality_every: int = 1                # evaluate the regulariser every this many steps
    seed: int = 0                          # seeds the regulariser's random latents

    def __post_init__(self):
        if self.steps < 1:
            raise UserInputError(f"--tune must be at least 1 step, got {self.steps}")
        if not self.lr > 0:
            raise UserInputError("the tuning learning rate must be positive")
        if min(self.l2_weight, self.locality_weight, self.locality_distance) < 0:
            raise UserInputError("tuning weights and distances must not be negative")
        if self.locality_samples < 1 or self.locality_every < 1:
            raise UserInputError("locality_samples and locality_every must be at least 1")


@dataclass
class Tuning:
    """A tuned generator and how well it draws the targets from their pivots."""
    G: Generator                           # the tuned copy (eval mode, no gradients)
    ws: torch.Tensor                       # [N, num_ws, w_dim] the pivots
    images: np.ndarray                     # [N, H, W, C] uint8: the tuned generator's image of each pivot
    targets: np.ndarray                    # [N, H, W, C] uint8
    psnr_before: np.ndarray                # [N] dB, the original generator at the pivots
    psnr_after: np.ndarray                 # [N] dB, the tuned generator at the pivots
    loss_history: np.ndarray               # [steps] reconstruction loss
    seconds_per_step: float
    config: TuningConfig = field(default_factory=TuningConfig)


def tune_generator(G: Generator, targets, ws: torch.Tensor, loss: PerceptualLoss | None = None,
                   config: TuningConfig = TuningConfig(), noise: dict[str, torch.Tensor] | None = None,
                   show_progress: bool = False, desc: str = "tuning") -> Tuning:
    """Fine-tune a copy of ``G`` so that ``ws`` ([N, num_ws, w_dim], e.g. a projection's) draw ``targets``.

    ``noise``: the projection's noise maps (name -> [N, 1, H, W]), used when drawing the pivots."""
    cfg = config
    device = next(G.parameters()).device
    target = _targets_tensor(G, targets, device)
    ws = torch.as_tensor(ws, dtype=torch.float32).to(device)
    if tuple(ws.shape) != (target.shape[0], G.num_ws, G.w_dim):
        raise UserInputError(f"pivots must be [{target.shape[0]}, {G.num_ws}, {G.w_dim}], got {tuple(ws.shape)}")
    loss = (loss or NoDownloadLoss()).to(device)
    G0 = G.eval().requires_grad_(False)
    G1 = copy.deepcopy(G0)
    G1.synthesis.requires_grad_(True)
    params = [p for p in G1.synthesis.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    _, w_std = w_stats(G0)
    target_u8 = to_uint8(target)
    with torch.no_grad():
        before = to_uint8(G0.synthesis(ws, noise_mode="const", noise=noise))
        target_features = loss.features(target)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = np.zeros(cfg.steps, np.float32)
    bar = progress_bar(range(cfg.steps), desc=desc, unit="step", disable=not show_progress)
    start = time.perf_counter()
    for step in bar:
        synth = G1.synthesis(ws, noise_mode="const", noise=noise)
        rec = loss.distance(target_features, loss.features(clip_like_target(synth, target))).mean()
        rec = rec + cfg.l2_weight * (synth - target).square().mean()
        total = rec
        if cfg.locality_weight > 0 and step % cfg.locality_every == 0:
            total = total + cfg.locality_weight * _locality(G0, G1, ws, loss, cfg, w_std, gen, cfg.l2_weight)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        history[step] = float(rec.detach())
        if show_progress and (step % 10 == 0 or step == cfg.steps - 1):
            bar.set_postfix(loss=f"{history[step]:.4f}", refresh=False)
    elapsed = time.perf_counter() - start
    bar.close()
    G1.eval().requires_grad_(False)
    with torch.no_grad():
        after = to_uint8(G1.synthesis(ws, noise_mode="const", noise=noise))
    return Tuning(G=G1, ws=ws.cpu(), images=after, targets=target_u8, psnr_before=psnr(before, target_u8),
                  psnr_after=psnr(after, target_u8), loss_history=history, seconds_per_step=elapsed / cfg.steps,
                  config=cfg)


def locality_latents(G: Generator, ws: torch.Tensor, distance: float, count: int,
                     gen: torch.Generator) -> torch.Tensor:
    """``count`` latents per pivot at ``distance`` from it toward random samples (PTI's Eq. 3):
    [N * count, num_ws, w_dim]."""
    device = ws.device
    z = torch.randn([len(ws) * count, G.z_dim], generator=gen).to(device)
    c = None
    if G.c_dim:
        c = torch.eye(G.c_dim, device=device)[torch.randint(G.c_dim, [len(z)], generator=gen).to(device)]
    with torch.no_grad():
        w_z = G.mapping(z, c)
    pivots = ws.repeat_interleave(count, dim=0)
    step = w_z - pivots
    return pivots + distance * step / step.norm(dim=2, keepdim=True).clamp(min=1e-8)


def _locality(G0, G1, ws, loss, cfg: TuningConfig, w_std: float, gen, l2_weight: float) -> torch.Tensor:
    w_r = locality_latents(G0, ws, cfg.locality_distance * w_std, cfg.locality_samples, gen)
    with torch.no_grad():
        ref = G0.synthesis(w_r, noise_mode="const")
        ref_features = loss.features(ref)
    out = G1.synthesis(w_r, noise_mode="const")
    return loss.distance(ref_features, loss.features(out)).mean() + l2_weight * (out - ref).square().mean()


def save_tuned(tuning: Tuning, dest: str | Path, source: Checkpoint | None = None, metadata: dict | None = None) -> Path:
    """Write the tuned generator as a native model file (G_ema; the source's discriminator is kept so the
    projector's no-download loss still works), with the pivots and the measured PSNR in its metadata."""
    meta = dict(source.metadata) if source is not None else {}
    meta.pop("builtin", None)
    meta["pivotal_tuning"] = {
        "source": getattr(source, "path", None), "steps": tuning.config.steps, "lr": tuning.config.lr,
        "locality_weight": tuning.config.locality_weight, "locality_distance": tuning.config.locality_distance,
        "psnr_before": [round(float(v), 3) for v in tuning.psnr_before],
        "psnr_after": [round(float(v), 3) for v in tuning.psnr_after],
        "pivots": tuning.ws.tolist(), **(metadata or {})}
    ckpt = Checkpoint(G_ema=tuning.G.cpu(), G=None, D=None if source is None else source.D, source_format="native",
                      metadata=meta)
    return save_network(ckpt, dest)


def edit_drift(G0: Generator, G1: Generator, ws: torch.Tensor, offset: torch.Tensor,
               threshold: float = 8.0) -> dict[str, float]:
    """How an edit ``ws + offset`` made with the tuned ``G1`` compares to the same edit with ``G0``.

    Returns ``relative_error``: ``||d1 - d0|| / ||d0||`` of the edit's change ``d = G(ws + offset) - G(ws)``
    (0 = the same edit); ``outside_change``: the mean absolute change (8-bit levels) the tuned edit makes
    where the original edit changes less than ``threshold`` levels (outside the edited region), and
    ``outside_change_original``, the same for ``G0``."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    device = next(G0.parameters()).device
    ws, edited = ws.to(device), (ws + torch.as_tensor(offset, dtype=torch.float32)).to(device)
    with torch.no_grad():
        a0, b0 = (G0.synthesis(x, noise_mode="const").float() * 127.5 for x in (ws, edited))
        a1, b1 = (G1.synthesis(x, noise_mode="const").float() * 127.5 for x in (ws, edited))
    d0, d1 = b0 - a0, b1 - a1
    outside = (d0.abs().amax(dim=1, keepdim=True) < threshold).expand_as(d0)
    rel = float((d1 - d0).norm() / d0.norm().clamp(min=1e-8))
    return {"relative_error": rel, "outside_fraction": float(outside.float().mean()),
            "outside_change": float(d1.abs()[outside].mean()) if outside.any() else 0.0,
            "outside_change_original": float(d0.abs()[outside].mean()) if outside.any() else 0.0}

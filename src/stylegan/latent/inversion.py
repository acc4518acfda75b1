"""Inverting images with an encoder: one forward pass gives W+, optionally refined by the projector.

* :func:`encode` -- encoder only: ``ws = E(target)``, no optimisation (milliseconds on a GPU).
* :func:`invert` -- the encoder's ws, corrected once by the encoder itself (:func:`corrected_start`), as the
  start of :func:`~stylegan.latent.projection.project` (``steps=0`` is :func:`encode`). A good start needs
  fewer steps, smaller ones and no w noise: :data:`REFINE_CONFIG` holds the defaults measured for that
  (docs/projection.md, "Measured").

Both return a :class:`~stylegan.latent.projection.Projection`, so the result is saved, varied and
edited exactly like a projection; ``initial_psnr`` is the mean-w image (for :func:`encode`) or the
encoder's image (for :func:`invert`), and ``extra['encoder_psnr']`` is always the encoder's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch

from ..errors import UserInputError
from ..networks import Generator
from ..networks.encoder import Encoder, mapping_fingerprint
from ..perception.lpips import NoDownloadLoss, PerceptualLoss
from ..render.images import from_uint8, to_uint8
from .projection import Projection, ProjectionConfig, _targets_tensor, clip_like_target, project, psnr
from .seeds import check_labels

#: Correction passes before the refinement (:func:`corrected_start`): one pass of the encoder and of G each.
CORRECTIONS = 1

#: Refinement after an encoder start: W+, half the projector's learning rate from the first step (no ramp-up),
#: no w noise (the start is already close). Measured on the built-in model (docs/projection.md, "Measured") against
#: lr 0.03/0.07/0.1, ramp-ups, W space and no noise maps.
REFINE_CONFIG = ProjectionConfig(space="w+", num_steps=20, initial_learning_rate=0.05, initial_noise_factor=0.0,
                                 lr_rampup_length=0.0)


def check_square_model(G: Generator) -> None:
    """Refuse a non-square model: encoders (using one, training one) are made for square models."""
    if G.img_shape[0] != G.img_shape[1]:
        raise UserInputError(f"encoders are made for square models; this one draws {G.img_shape[1]}x{G.img_shape[0]}")


def check_encoder(encoder: Encoder, G: Generator) -> None:
    """Refuse an encoder made for another model (other W space, image size or number of ws)."""
    cfg = encoder.config
    check_square_model(G)
    want = (G.img_resolution, G.img_channels, G.num_ws, G.w_dim)
    have = (cfg.img_resolution, cfg.img_channels, cfg.num_ws, cfg.w_dim)
    if have != want:
        raise UserInputError(f"the encoder is for {have[0]}x{have[0]} images with {have[1]} channel(s), {have[2]} ws "
                             f"of {have[3]}; this model draws {want[0]}x{want[0]} with {want[1]}, {want[2]} ws of {want[3]}")
    if cfg.generator_fingerprint and cfg.generator_fingerprint != mapping_fingerprint(G):
        raise UserInputError("the encoder was trained for another model (its mapping network differs); "
                             "train one for this model with `stylegan encoder train`")


def load_checked_encoder(source, G: Generator, device=None) -> Encoder:
    """The encoder file ``source`` (or ``'builtin'``), loaded safely and refused in one line -- ``--encoder
    SOURCE: why`` -- when it was made for another model than ``G`` (:func:`check_encoder`)."""
    from ..checkpoints.encoder import load_encoder
    encoder, _ = load_encoder(source, device=device or next(G.parameters()).device)
    try:
        check_encoder(encoder, G)
    except UserInputError as exc:
        raise UserInputError(f"--encoder {source}: {exc}") from None
    return encoder


def encoder_ws(encoder: Encoder, G: Generator, target: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """ws [N, num_ws, w_dim] for targets [N, C, H, W] in [-1, 1], ``batch_size`` at a time."""
    check_encoder(encoder, G)
    device = next(G.parameters()).device
    encoder = encoder.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(target), batch_size):
            out.append(encoder(target[i:i + batch_size].to(device))[0])
    return torch.cat(out)


def encode(G: Generator, targets, encoder: Encoder, c: torch.Tensor | None = None,
           batch_size: int = 16) -> Projection:
    """Encoder-only inversion of ``targets`` (uint8 [N, H, W, C] / [H, W, C], or float [N, C, H, W])."""
    device = next(G.parameters()).device
    target = _targets_tensor(G, targets, device)
    c = check_labels(c, G.c_dim, target.shape[0], device)
    start = time.perf_counter()
    ws = encoder_ws(encoder, G, target, batch_size)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        images = _render(G, ws, batch_size)
        mean_images = _render(G, encoder.w_avg.to(device).expand(1, G.num_ws, -1), batch_size)
    target_u8 = to_uint8(target)
    enc_psnr = psnr(images, target_u8)
    return Projection(ws=ws.float().cpu(), noise={}, images=images, targets=target_u8,
                      loss_history=np.zeros([0, len(ws)], np.float32), psnr=enc_psnr,
                      initial_psnr=psnr(np.repeat(mean_images, len(ws), 0), target_u8), loss_name="encoder",
                      space="w+", seconds_per_step=0.0, c=None if c is None else c.cpu(),
                      extra={"encoder_psnr": enc_psnr, "encoder_seconds": elapsed})


def invert(G: Generator, targets, encoder: Encoder, loss: PerceptualLoss | None = None,
           config: ProjectionConfig = REFINE_CONFIG, steps: int | None = None, c: torch.Tensor | None = None,
           on_step: Callable | None = None, show_progress: bool = False, desc: str = "refining",
           corrections: int = CORRECTIONS) -> Projection:
    """Encoder start, then ``steps`` (default ``config.num_steps``) of the projector; ``steps=0``: encoder only.

    Before the steps, ``corrections`` passes of :func:`corrected_start` (each one more pass of the encoder and
    of G, no gradients) improve the start where the loss says they do."""
    steps = config.num_steps if steps is None else steps
    if steps < 0:
        raise UserInputError(f"--steps must be 0 or more, got {steps}")
    start = encode(G, targets, encoder, c)
    if steps == 0:
        return start
    loss = loss or NoDownloadLoss()
    ws, corrected = corrected_start(G, targets, encoder, loss, corrections, encoded=start.ws)
    cfg = dataclasses.replace(config, num_steps=steps)
    res = project(G, targets, loss, cfg, c=c, on_step=on_step, show_progress=show_progress, desc=desc,
                  initial_ws=ws)
    res.extra.update(start.extra)
    res.extra["mean_w_psnr"] = start.initial_psnr
    res.extra["corrected"] = corrected
    return res


def corrected_start(G: Generator, targets, encoder: Encoder, loss: PerceptualLoss, passes: int = CORRECTIONS,
                    batch_size: int = 16, encoded: torch.Tensor | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The encoder's ws, corrected by its own estimate of what it got wrong (ReStyle's idea without its
    retrained encoder; Alaluf et al. 2021): ``ws + E(target) - E(G(ws))``, ``passes`` times, G's image
    rounded to 8 bits like the target; a pass is kept per target only where it lowers ``loss``. ``encoded``:
    the encoder's ws of these targets when already computed (:func:`encode`'s), else they are. Returns the
    ws [N, num_ws, w_dim] (CPU) and how many passes each target kept."""
    device = next(G.parameters()).device
    target = _targets_tensor(G, targets, device)
    loss = loss.to(device)
    kept = np.zeros(len(target), np.int64)
    with torch.no_grad():
        encoded = encoder_ws(encoder, G, target, batch_size) if encoded is None else encoded.to(device)
        ws = encoded
        if passes <= 0:
            return ws.float().cpu(), kept
        best = _distance(G, loss, target, ws, batch_size)
        for k in range(passes):
            drawn = from_uint8(_render(G, ws, batch_size), device)
            candidate = ws + encoded - encoder_ws(encoder, G, drawn, batch_size)
            dist = _distance(G, loss, target, candidate, batch_size)
            better = dist < best
            if not better.any():
                break
            ws = torch.where(better[:, None, None], candidate, ws)
            best = torch.where(better, dist, best)
            kept[better.cpu().numpy()] = k + 1
    return ws.float().cpu(), kept


def _distance(G: Generator, loss: PerceptualLoss, target: torch.Tensor, ws: torch.Tensor,
              batch_size: int) -> torch.Tensor:
    """The projector's loss between ``target`` and the image of ``ws`` (the model's constant noise): [N]."""
    out = []
    for i in range(0, len(ws), batch_size):
        part = target[i:i + batch_size]
        synth = G.synthesis(ws[i:i + batch_size], noise_mode="const")
        out.append(loss.distance(loss.features(part), loss.features(clip_like_target(synth, part))))
    return torch.cat(out)


def _render(G: Generator, ws: torch.Tensor, batch_size: int) -> np.ndarray:
    return np.concatenate([to_uint8(G.synthesis(ws[i:i + batch_size], noise_mode="const"))
                           for i in range(0, len(ws), batch_size)])

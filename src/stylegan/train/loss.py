"""The StyleGAN2/3 objective: non-saturating logistic loss, lazy R1, path-length regularisation,
style mixing (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", Sec. 2-4,
Appendix B; Mescheder et al. 2018 for R1).

``D`` always sees images through the ADA pipeline (and, for StyleGAN3-R, a fading blur), real and
fake alike, including the R1 pass, so the augmentations never leak into the generator.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ..networks import ops
from .stats import Stats

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


class StyleGAN2Loss:
    def __init__(
        self,
        G,
        D,
        augment_pipe=None,
        r1_gamma: float = 10.0,            # R1 weight
        style_mixing_prob: float = 0.0,    # chance that a sample takes its later ws from a second z
        pl_weight: float = 0.0,            # path-length regularisation weight (0: off)
        pl_batch_shrink: int = 2,          # PL runs on batch / this
        pl_decay: float = 0.01,            # EMA decay of the path-length mean
        blur_init_sigma: float = 0.0,      # D input blur at the start (StyleGAN3-R)
        blur_fade_kimg: float = 0.0,       # over how many kimg the blur fades out
    ):
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.tracker = BufferTracker(G)

    # ---- network runs ---------------------------------------------------------------------------
    def run_G(self, z: torch.Tensor, c: torch.Tensor, track: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and the (style-mixed) ws they came from. ``track``: record w_avg/magnitude statistics."""
        ws = self.G.mapping(z, c)
        if track:
            self.tracker.record_w(ws[:, 0])
        if self.style_mixing_prob > 0:
            n, num_ws = ws.shape[:2]
            cutoff = torch.randint(1, num_ws, [n, 1], device=ws.device)
            mix = torch.rand([n, 1], device=ws.device) < self.style_mixing_prob
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
            ws2 = self.G.mapping(torch.randn_like(z), c)
            later = torch.arange(num_ws, device=ws.device).unsqueeze(0) >= cutoff     # [N, num_ws]
            ws = torch.where(later.unsqueeze(2), ws2, ws)
        with self.tracker.capture_magnitudes() if track else contextlib.nullcontext():
            img = self.G.synthesis(ws, fused_modconv=False)
        return img, ws

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_fade_kimg <= 0 or self.blur_init_sigma <= 0:
            return 0.0
        return max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def run_D(self, img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0.0) -> torch.Tensor:
        blur_size = int(np.floor(blur_sigma * 3))
        if blur_size > 0:
            x = torch.arange(-blur_size, blur_size + 1, device=img.device, dtype=torch.float32)
            f = torch.exp(-0.5 * (x / blur_sigma).square())
            img = ops.filter2d(img, f / f.sum())
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    # ---- one phase on one micro-batch -------------------------------------------------------------
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float, cur_nimg: int, stats: Stats) -> None:
        """Forward + backward of ``phase`` on this micro-batch; gradients are *added*, scaled by ``gain``."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if self.pl_weight == 0:
            phase = {"Greg": "none", "Gboth": "Gmain"}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {"Dreg": "none", "Dboth": "Dmain"}.get(phase, phase)
        blur_sigma = self.blur_sigma(cur_nimg)

        if phase in ("Gmain", "Gboth"):
            gen_img, _ = self.run_G(gen_z, gen_c)
            logits = self.run_D(gen_img, gen_c, blur_sigma)
            stats.report("Loss/scores/fake", logits)
            stats.report("Loss/signs/fake", logits.sign())
            loss_g = F.softplus(-logits)                       # -log(sigmoid(D(G(z))))
            stats.report("Loss/G/loss", loss_g)
            loss_g.mean().mul(gain).backward()

        if phase in ("Greg", "Gboth"):
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (pl_grads,) = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                              create_graph=True)
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            self.pl_sum += pl_lengths.detach().sum().to(torch.float64)
            self.pl_count += pl_lengths.shape[0]
            pl_penalty = (pl_lengths - self.pl_mean).square()
            stats.report("Loss/pl_penalty", pl_penalty)
            loss_pl = pl_penalty * self.pl_weight
            stats.report("Loss/G/reg", loss_pl)
            loss_pl.mean().mul(gain).backward()

        if phase in ("Dmain", "Dboth"):
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, track=True)
            logits = self.run_D(gen_img, gen_c, blur_sigma)
            stats.report("Loss/scores/fake", logits)
            stats.report("Loss/signs/fake", logits.sign())
            loss_dgen = F.softplus(logits)                     # -log(1 - sigmoid(D(G(z))))
            loss_dgen.mean().mul(gain).backward()

        if phase in ("Dmain", "Dreg", "Dboth"):
            do_main = phase in ("Dmain", "Dboth")
            do_r1 = phase in ("Dreg", "Dboth")
            real = real_img.detach().requires_grad_(do_r1)
            logits = self.run_D(real, real_c, blur_sigma)
            loss = torch.zeros_like(logits)
            if do_main:
                stats.report("Loss/scores/real", logits)
                stats.report("Loss/signs/real", logits.sign())
                self.ada_sum += logits.detach().sign().sum()
                self.ada_count += logits.shape[0]
                loss_dreal = F.softplus(-logits)               # -log(sigmoid(D(x)))
                stats.report("Loss/D/loss", loss_dgen + loss_dreal)
                loss = loss + loss_dreal
            if do_r1:
                (r1_grads,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[real], create_graph=True)
                r1_penalty = r1_grads.square().sum(dim=[1, 2, 3])
                stats.report("Loss/r1_penalty", r1_penalty)
                loss_r1 = r1_penalty * (self.r1_gamma / 2)
                stats.report("Loss/D/reg", loss_r1)
                loss = loss + loss_r1.reshape(-1, 1)
            loss.mean().mul(gain).backward()

    # ---- per-step accumulators (summed over micro-batches and processes by the loop) ---------------
    def begin_step(self) -> None:
        dev = self.pl_mean.device
        self.pl_sum = torch.zeros([], device=dev, dtype=torch.float64)
        self.pl_count = 0
        self.ada_sum = torch.zeros([], device=dev, dtype=torch.float64)
        self.ada_count = 0
        self.tracker.reset()

    def update_pl_mean(self, pl_sum: torch.Tensor, pl_count: int) -> None:
        """One EMA update of the path-length mean from the step's global mean length."""
        if pl_count > 0:
            self.pl_mean.copy_(self.pl_mean.lerp((pl_sum / pl_count).to(self.pl_mean.dtype), self.pl_decay))


class BufferTracker:
    """Statistics behind G's running buffers, applied once per step from the global batch.

    NVIDIA updates ``w_avg`` and StyleGAN3's ``magnitude_ema`` inside every tracked forward pass, per
    GPU. We record the batch statistics instead, sum them over micro-batches and processes, and
    update once, so the buffers do not depend on how the batch was split.
    """

    def __init__(self, G):
        self.G = G
        syn = G.synthesis
        names = getattr(syn, "layer_names", [])
        self.layers = [getattr(syn, n) for n in names if hasattr(getattr(syn, n), "magnitude_ema")]
        self.reset()

    def reset(self) -> None:
        dev = next(self.G.parameters()).device
        self.w_sum = torch.zeros([self.G.w_dim], device=dev, dtype=torch.float64)
        self.w_count = 0
        self.mag_sum = torch.zeros([len(self.layers)], device=dev, dtype=torch.float64)
        self.mag_count = 0

    def record_w(self, w: torch.Tensor) -> None:
        self.w_sum += w.detach().to(torch.float32).sum(dim=0).to(torch.float64)
        self.w_count += w.shape[0]

    @contextlib.contextmanager
    def capture_magnitudes(self):
        if not self.layers:
            yield
            return
        values = [None] * len(self.layers)

        def hook_for(i):
            def hook(module, args):
                values[i] = args[0].detach().to(torch.float32).square().mean()
            return hook

        handles = [layer.register_forward_pre_hook(hook_for(i)) for i, layer in enumerate(self.layers)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        if all(v is not None for v in values):
            self.mag_sum += torch.stack(values).to(torch.float64)
            self.mag_count += 1

    def packed(self) -> torch.Tensor:
        """One tensor for a single all-reduce: [w_sum, w_count, mag_sum, mag_count]."""
        dev = self.w_sum.device
        return torch.cat([self.w_sum, torch.tensor([float(self.w_count)], device=dev, dtype=torch.float64),
                          self.mag_sum, torch.tensor([float(self.mag_count)], device=dev, dtype=torch.float64)])

    @torch.no_grad()
    def apply(self, packed: torch.Tensor) -> None:
        w_dim = self.G.w_dim
        w_sum, w_count = packed[:w_dim], float(packed[w_dim])
        mag_sum, mag_count = packed[w_dim + 1:-1], float(packed[-1])
        w_sum, mag_sum = w_sum.to(torch.float32), mag_sum.to(torch.float32)
        mapping = self.G.mapping
        if w_count > 0 and hasattr(mapping, "w_avg") and mapping.w_avg_beta is not None:
            mapping.w_avg.copy_((w_sum / w_count).lerp(mapping.w_avg, mapping.w_avg_beta))
        if mag_count > 0:
            for layer, value in zip(self.layers, (mag_sum / mag_count).unbind()):
                layer.magnitude_ema.copy_(value.lerp(layer.magnitude_ema, layer.magnitude_ema_beta))

"""The StyleGAN2/3 objective: non-saturating logistic loss, lazy R1, path-length regularisation,
style mixing (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", Sec. 2-4,
Appendix B; Mescheder et al. 2018 for R1), step for step as NVIDIA's StyleGAN3 code computes it
(docs/training.md, "Same algorithm as NVIDIA's").

``D`` always sees images through the ADA pipeline (and, for StyleGAN3-R, a fading blur), real and
fake alike, including the R1 pass, so the augmentations never leak into the generator.

Everything a step accumulates across micro-batches (G's running buffers, the path-length mean, the
ADA statistic) is summed by :meth:`StyleGAN2Loss.step_sums` and applied once by
:meth:`StyleGAN2Loss.end_step` after the sums were added over processes, so the result does not depend
on how the global batch was split into micro-batches and processes.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .. import devices
from ..networks import ops
from .stats import Stats

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


def blur_filter(sigma: float) -> torch.Tensor | None:
    """StyleGAN3-R's D-input blur: taps ``x = -floor(3 sigma) .. floor(3 sigma)`` weighted
    ``2^(-(x / sigma)^2)`` (NVIDIA's kernel; a Gaussian of standard deviation ``sigma / sqrt(2 ln 2)``),
    normalised; None when there is nothing to blur."""
    size = int(np.floor(sigma * 3))
    if size <= 0:
        return None
    x = torch.arange(-size, size + 1, dtype=torch.float32)
    f = torch.exp2(-(x / sigma).square())
    return f / f.sum()


class StyleGAN2Loss:
    def __init__(
        self,
        G,
        D,
        augment_pipe=None,
        r1_gamma: float = 10.0,            # R1 weight
        style_mixing_prob: float = 0.0,    # chance that a minibatch takes its later ws from second latents
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
        self.begin_step()

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        """Images and the (style-mixed) ws they came from. Style mixing draws one cutoff per call (per
        micro-batch, as NVIDIA's ``run_G``): with probability ``style_mixing_prob`` the layers from a cutoff
        uniform in ``[1, num_ws)`` on take their w from fresh latents with the same labels.
        ``update_emas``: the pass that moves w_avg and StyleGAN3's magnitude EMAs (see BufferTracker)."""
        with self.tracker.tracking() if update_emas else contextlib.nullcontext():
            ws = self.G.mapping(z, c, update_emas=update_emas)
            if self.style_mixing_prob > 0:
                num_ws = ws.shape[1]
                cutoff = torch.randint(1, num_ws, [], device=ws.device)
                mixing = torch.rand([], device=ws.device) < self.style_mixing_prob
                cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, num_ws))
                ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                later = (torch.arange(num_ws, device=ws.device) >= cutoff).view(1, num_ws, 1)
                ws = torch.where(later, ws2, ws)
            img = self.G.synthesis(ws, update_emas=update_emas, fused_modconv=False)
        return img, ws

    def blur_sigma(self, cur_nimg: int) -> float:
        """The D-input blur: ``blur_init_sigma`` fading linearly to 0 over ``blur_fade_kimg``."""
        if self.blur_fade_kimg <= 0 or self.blur_init_sigma <= 0:
            return 0.0
        return max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def run_D(self, img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0.0) -> torch.Tensor:
        f = blur_filter(blur_sigma)
        if f is not None:
            img = ops.filter2d(img, f.to(img.device))
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

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
            self._path_length(gen_z, gen_c, gain, stats)
        loss_dgen = 0
        if phase in ("Dmain", "Dboth"):
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            logits = self.run_D(gen_img, gen_c, blur_sigma)
            stats.report("Loss/scores/fake", logits)
            stats.report("Loss/signs/fake", logits.sign())
            loss_dgen = F.softplus(logits)                     # -log(1 - sigmoid(D(G(z))))
            loss_dgen.mean().mul(gain).backward()
        if phase in ("Dmain", "Dreg", "Dboth"):
            self._real(phase, real_img, real_c, loss_dgen, blur_sigma, gain, stats)

    def _path_length(self, gen_z, gen_c, gain: float, stats: Stats) -> None:
        """Path-length regularisation (Karras et al. 2020, eq. 4) on ``batch / pl_batch_shrink`` samples.

        As NVIDIA's code: the running mean is first moved toward this micro-batch's mean length, and the
        penalty is taken against that moved mean *with* its gradient (which passes through the batch
        mean, scaled by ``pl_decay``). The value it moved to is accumulated; :meth:`end_step` stores the
        mean over the step's micro-batches (one micro-batch: exactly NVIDIA's value).
        """
        n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        (pl_grads,) = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_sum += pl_mean.detach().to(self.pl_sum.dtype)
        self.pl_count += 1
        pl_penalty = (pl_lengths - pl_mean).square()
        stats.report("Loss/pl_penalty", pl_penalty)
        loss_pl = pl_penalty * self.pl_weight
        stats.report("Loss/G/reg", loss_pl)
        loss_pl.mean().mul(gain).backward()

    def _real(self, phase: str, real_img, real_c, loss_dgen, blur_sigma: float, gain: float, stats: Stats) -> None:
        """D on the real images: the logistic loss (Dmain) and/or R1 (Dreg). R1 is the gradient with
        respect to the images *before* augmentation, through the differentiable pipeline, of D's logits
        on the augmented images. Every real pass counts toward ADA's ``r_t``, the R1 passes too."""
        do_main = phase in ("Dmain", "Dboth")
        do_r1 = phase in ("Dreg", "Dboth")
        real = real_img.detach().requires_grad_(do_r1)
        logits = self.run_D(real, real_c, blur_sigma)
        stats.report("Loss/scores/real", logits)
        stats.report("Loss/signs/real", logits.sign())
        self.ada_sum += logits.detach().sign().sum().to(self.ada_sum.dtype)
        self.ada_count += logits.shape[0]
        loss = torch.zeros_like(logits)
        if do_main:
            loss_dreal = F.softplus(-logits)                   # -log(sigmoid(D(x)))
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

    def begin_step(self) -> None:
        """Zero the step's accumulators and remember the buffers' values at the start of the step."""
        dev = self.pl_mean.device
        self.pl_sum = torch.zeros([], device=dev, dtype=devices.accumulation_dtype(dev))
        self.pl_count = 0
        self.ada_sum = torch.zeros([], device=dev, dtype=devices.accumulation_dtype(dev))
        self.ada_count = 0
        self.tracker.reset()

    def step_sums(self) -> torch.Tensor:
        """Everything the step accumulated, as one float64 vector (MPS: float32) to be summed over processes."""
        dev = self.pl_mean.device
        counts = torch.tensor([self.pl_count, self.ada_count], dtype=devices.accumulation_dtype(dev), device=dev)
        return torch.cat([self.tracker.packed(), self.pl_sum.view(1), counts[:1], self.ada_sum.view(1), counts[1:]])

    @torch.no_grad()
    def end_step(self, sums: torch.Tensor) -> torch.Tensor:
        """Apply the global sums of :meth:`step_sums`: G's buffers and the path-length mean become the
        means over all micro-batches; returns ``[sum of sign(D(real)), count]`` for ADA."""
        self.tracker.apply(sums[:-4])
        pl_sum, pl_count = sums[-4], float(sums[-3])
        if pl_count > 0:
            self.pl_mean.copy_((pl_sum / pl_count).to(self.pl_mean.dtype))
        return sums[-2:].clone()


class BufferTracker:
    """G's running buffers (``mapping.w_avg``, StyleGAN3's ``magnitude_ema``) as NVIDIA updates them.

    NVIDIA's D phase runs G with ``update_emas=True``: each buffer moves toward its micro-batch's
    statistic inside the forward pass, and StyleGAN3's layers use the moved value at once. We run that
    same pass for every micro-batch starting from the values the step began with, add up the values
    each pass leaves, put the starting values back, and at the end of the step set the mean over all
    micro-batches and processes. With one micro-batch per step that is NVIDIA's value exactly; with
    more it does not depend on the split (NVIDIA's GPUs each keep their own, unsynchronised copy).
    """

    def __init__(self, G):
        self.buffers = [b for name, b in G.named_buffers()
                        if name == "mapping.w_avg" or name.endswith(".magnitude_ema")]
        self.device = next(G.parameters()).device
        self.reset()

    def reset(self) -> None:
        self.start = [b.detach().clone() for b in self.buffers]
        numel = sum(b.numel() for b in self.buffers)
        self.sum = torch.zeros([numel], device=self.device, dtype=devices.accumulation_dtype(self.device))
        self.count = 0

    @contextlib.contextmanager
    def tracking(self):
        """Around one ``update_emas=True`` pass: record what it leaves in the buffers, then restore them."""
        with torch.no_grad():
            for b, s in zip(self.buffers, self.start):
                b.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                if self.buffers:
                    self.sum += torch.cat([b.detach().flatten().to(self.sum.dtype) for b in self.buffers])
                self.count += 1
                for b, s in zip(self.buffers, self.start):
                    b.copy_(s)

    def packed(self) -> torch.Tensor:
        """[sum of the buffers' values after each tracked pass..., number of passes]."""
        return torch.cat([self.sum, torch.tensor([float(self.count)], device=self.device, dtype=self.sum.dtype)])

    @torch.no_grad()
    def apply(self, packed: torch.Tensor) -> None:
        count = float(packed[-1])
        if count <= 0 or not self.buffers:
            return
        values = packed[:-1] / count
        offset = 0
        for b in self.buffers:
            b.copy_(values[offset:offset + b.numel()].view_as(b).to(b.dtype))
            offset += b.numel()

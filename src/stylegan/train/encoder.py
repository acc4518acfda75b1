"""Training an image -> W+ encoder for any loadable generator, from the generator's own samples.

No dataset is needed: each step draws z, maps it to w, renders the image (clamped and rounded to 8 bits,
like a real photo), and teaches the encoder to give back w. The loss has three terms:

* **latent**: ``||ws_pred - w||^2`` over the model's samples, in units of the w spread (their true w is
  known, and lies in W: this keeps predictions in W, where edits behave);
* **image**: the projector's perceptual distance between the target and the image of the prediction
  (the no-download loss on the model's own discriminator features, or LPIPS), so the encoder is
  judged by what it draws, also on real images (``--data``) whose w is unknown;
* **delta**: e4e's regulariser ``sum_i ||delta_i||^2`` on the per-layer deltas (Tov et al. 2021,
  Sec. 4), which are unlocked one layer at a time every ``delta_kimg`` (their progressive training).

The run is resumable bit for bit: what a step sees is a pure function of ``(seed, step)`` (z, labels,
which real images), and the training state (encoder, Adam moments, counters) is one atomic safetensors
file beside the output (:func:`state_path`), written every ``snap_kimg`` and when the run stops.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoints.encoder import save_encoder
from ..data import ImageDataset
from ..data.dataset import sample_indices
from ..errors import CheckpointError, UserInputError
from ..latent.inversion import check_square_model
from ..latent.projection import clip_like_target, w_stats
from ..networks import Generator
from ..networks.encoder import Encoder, EncoderConfig, mapping_fingerprint
from ..perception.lpips import PerceptualLoss
from ..progress import progress
from .checkpoint import load_training_state, save_training_state

STATE_SUFFIX = ".training-state.safetensors"


@dataclass(frozen=True)
class EncoderTrainingOptions:
    kimg: float = 100.0                    # training length in thousands of images
    batch: int = 16                        # images per step
    lr: float = 1e-3                       # Adam learning rate
    warmup_steps: int = 50                 # linear learning-rate warm-up over the first steps
    seed: int = 0                          # seeds every step's samples: (seed, step) -> z, labels, real images
    latent_weight: float = 1.0             # weight of ||ws_pred - w||^2 / w_scale^2 on generated targets
    image_weight: float = 1.0              # weight of the perceptual distance to the target
    image_batch: int | None = None         # images per step that get the image loss (None: all; the rest
                                           # only the latent loss, which needs no pass back through G)
    delta_weight: float = 0.1              # weight of the e4e delta regulariser
    delta_kimg: float = 2.0                # unlock one more per-layer delta every this many kimg
    real_fraction: float = 0.5             # share of each batch taken from --data (when given)
    snap_kimg: float = 5.0                 # write the training state every this many kimg

    def __post_init__(self):
        if not self.kimg > 0:
            raise UserInputError(f"--kimg must be positive, got {self.kimg}")
        if self.batch < 1:
            raise UserInputError(f"--batch must be at least 1, got {self.batch}")
        if self.image_batch is not None and not 1 <= self.image_batch <= self.batch:
            raise UserInputError(f"--image-batch must be 1..{self.batch} (--batch), got {self.image_batch}")
        if not self.lr > 0 or self.warmup_steps < 0:
            raise UserInputError("the learning rate must be positive and the warm-up not negative")
        if not 0 <= self.real_fraction < 1:
            raise UserInputError(f"--real-fraction must be in [0, 1), got {self.real_fraction}")
        if min(self.latent_weight, self.image_weight, self.delta_weight) < 0:
            raise UserInputError("loss weights must not be negative")
        if not self.delta_kimg > 0 or not self.snap_kimg > 0:
            raise UserInputError("--delta-kimg and --snap-kimg must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def state_path(out: str | Path) -> Path:
    """Where the training state of the encoder ``out`` lives: ``enc.safetensors`` -> ``enc.training-state.safetensors``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + STATE_SUFFIX)


@dataclass
class EncoderRunResult:
    encoder: Encoder
    out: Path
    cur_nimg: int
    sec_per_kimg: float
    losses: dict[str, float]               # last step's loss terms
    history: list[dict]                    # {kimg, latent, image, delta} every few steps


class EncoderTraining:
    """One encoder training run: ``build`` (or ``resume``), then ``run`` steps until ``kimg``."""

    def __init__(self, G: Generator, loss: PerceptualLoss, out: str | Path,
                 options: EncoderTrainingOptions = EncoderTrainingOptions(), data: ImageDataset | None = None,
                 config: EncoderConfig | None = None, network_name: str = ""):
        check_square_model(G)
        self.G = G.eval().requires_grad_(False)
        self.device = next(G.parameters()).device
        self.loss = loss.to(self.device)
        self.out = Path(out)
        self.opts = options
        self.data = _check_data(data, G) if data is not None else None
        self.network_name = network_name
        self.config = config or EncoderConfig.for_generator(G)
        if self.config.generator_fingerprint != mapping_fingerprint(G):
            raise UserInputError("the encoder config was made for another model (its mapping network differs)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)                 # the same initial weights for the same seed
            self.encoder = Encoder(self.config).to(self.device)
        if self.device.type == "cpu":
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        w_avg, w_std = w_stats(G) if G.c_dim == 0 else _conditional_w_stats(G)
        with torch.no_grad():
            self.encoder.w_avg.copy_(w_avg)
            self.encoder.w_scale.fill_(w_std / np.sqrt(G.w_dim))
        self.optimizer = torch.optim.Adam(self.encoder.parameters(), lr=options.lr, betas=(0.9, 0.99))
        self.cur_nimg = 0
        self.step_count = 0
        self.total_time = 0.0
        self.history: list[dict] = []

    def resume(self) -> bool:
        """Continue from the state file beside ``out`` if there is one (True if resumed)."""
        path = state_path(self.out)
        if not path.exists():
            return False
        state = load_training_state(path)
        header = state.header
        if header.get("kind") != "encoder":
            raise CheckpointError(f"{path.name} is not an encoder training state")
        if header["encoder_config"] != self.config.to_dict():
            raise UserInputError(f"{path.name} belongs to another model or encoder size; remove it to start afresh")
        # Options added since the state was written take their defaults, which reproduce the older behaviour.
        saved = {**EncoderTrainingOptions().to_dict(), **header["options"]}
        if {k: v for k, v in saved.items() if k not in ("kimg", "snap_kimg")} != \
                {k: v for k, v in self.opts.to_dict().items() if k not in ("kimg", "snap_kimg")}:
            raise UserInputError(f"{path.name} was trained with other options ({_diff(saved, self.opts.to_dict())}); "
                                 f"resume with the same ones, or remove it to start afresh")
        self.encoder.load_state_dict(state.networks["E"])
        self.optimizer.load_state_dict(state.optimizers["E"])
        c = header["counters"]
        self.cur_nimg, self.step_count, self.total_time = int(c["cur_nimg"]), int(c["step"]), float(c["total_time"])
        self.history = list(header.get("history", []))
        return True

    def save_state(self) -> Path:
        header = {"kind": "encoder", "options": self.opts.to_dict(), "encoder_config": self.config.to_dict(),
                  "network": self.network_name, "history": self.history[-200:],
                  "counters": {"cur_nimg": self.cur_nimg, "step": self.step_count, "total_time": self.total_time}}
        return save_training_state(state_path(self.out), networks={"E": self.encoder},
                                   optimizers={"E": self.optimizer}, tensors={}, header=header)

    def _targets(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's targets [B, C, H, W] (8-bit values in [-1, 1]) and the true ws of the generated ones."""
        opts, G = self.opts, self.G
        rng = np.random.default_rng([opts.seed, step])
        n_real = int(round(opts.batch * opts.real_fraction)) if self.data is not None else 0
        n_fake = opts.batch - n_real
        z = torch.from_numpy(rng.standard_normal([n_fake, G.z_dim]).astype(np.float32)).to(self.device)
        c = None
        if G.c_dim:
            c = torch.eye(G.c_dim, device=self.device)[torch.from_numpy(rng.integers(0, G.c_dim, n_fake))]
        with torch.no_grad():
            ws = G.mapping(z, c)
            # Unfused modulated convolutions: at training batch sizes on a CPU 3-4x faster than the
            # per-sample inference path no_grad() picks (same images to 1e-5).
            fake = _quantize(G.synthesis(ws, noise_mode="const", fused_modconv=False))
        if not n_real:
            return fake, ws
        idx = sample_indices(opts.seed, step * n_real, n_real, len(self.data))
        real, _ = self.data.get_batch(idx, self.device)
        return torch.cat([fake, real[:, :G.img_channels]]), ws

    def num_deltas(self) -> int:
        return min(self.G.num_ws - 1, int(self.cur_nimg / 1000 / self.opts.delta_kimg))

    def step(self) -> dict[str, float]:
        """One optimisation step over one batch; returns its loss terms."""
        opts = self.opts
        for group in self.optimizer.param_groups:
            group["lr"] = opts.lr * min(1.0, (self.step_count + 1) / max(opts.warmup_steps, 1))
        target, ws_true = self._targets(self.step_count)
        x = target.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else target
        ws, deltas = self.encoder(x, num_deltas=self.num_deltas())
        n_fake = ws_true.shape[0]
        scale = self.encoder.w_scale
        latent = ((ws[:n_fake] - ws_true) / scale).square().mean()
        delta = deltas.square().mean() if deltas.numel() else ws.new_zeros([])
        image = ws.new_zeros([])
        if opts.image_weight > 0:
            k = self._image_rows(n_fake)
            synth = self.G.synthesis(ws[k], noise_mode="const")
            image = self.loss.distance(self.loss.features(target[k]),
                                       self.loss.features(clip_like_target(synth, target[k]))).mean()
        total = opts.latent_weight * latent + opts.image_weight * image + opts.delta_weight * delta
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step_count += 1
        self.cur_nimg += opts.batch
        return {"latent": float(latent.detach()), "image": float(image.detach()), "delta": float(delta.detach())}

    def _image_rows(self, n_fake: int) -> torch.Tensor:
        """Rows that get the image loss: every real image, then generated ones up to ``image_batch``."""
        batch = self.opts.batch
        count = batch if self.opts.image_batch is None else self.opts.image_batch
        real = list(range(n_fake, batch))
        fake = list(range(max(0, min(n_fake, count - len(real)))))
        return torch.tensor(fake + real, dtype=torch.int64, device=self.device)

    def run(self, show_progress: bool = False) -> EncoderRunResult:
        """Train until ``kimg``; writes the state every ``snap_kimg`` and on any stop, the encoder at the end."""
        total_nimg = round(self.opts.kimg * 1000)
        snap_nimg = round(self.opts.snap_kimg * 1000)
        next_snap = (self.cur_nimg // snap_nimg + 1) * snap_nimg
        bar = progress(total=total_nimg / 1000, initial=min(self.cur_nimg, total_nimg) / 1000, unit="kimg",
                       desc="encoder", disable=not show_progress,
                       bar_format="{l_bar}{bar}| {n:.2f}/{total:g} kimg [{elapsed}<{remaining}]{postfix}")
        losses: dict[str, float] = {}
        session_nimg = self.cur_nimg
        try:
            while self.cur_nimg < total_nimg:
                t0 = time.perf_counter()
                losses = self.step()
                self.total_time += time.perf_counter() - t0
                bar.update(self.opts.batch / 1000)
                if self.step_count % 10 == 0 or self.cur_nimg >= total_nimg:
                    self.history.append({"kimg": self.cur_nimg / 1000, **{k: round(v, 6) for k, v in losses.items()}})
                    bar.set_postfix(loss=f"{losses['image']:.4f}", latent=f"{losses['latent']:.3f}",
                                    s_kimg=f"{self.sec_per_kimg():.1f}", refresh=False)
                if self.cur_nimg >= next_snap:
                    self.save_state()
                    next_snap += snap_nimg
        finally:
            bar.close()
            if self.cur_nimg > session_nimg:
                self.save_state()
        sec_per_kimg = self.sec_per_kimg()
        save_encoder(self.encoder, self.out, self.metadata(sec_per_kimg))
        return EncoderRunResult(self.encoder.eval(), self.out, self.cur_nimg, sec_per_kimg, losses, self.history)

    def sec_per_kimg(self) -> float:
        return self.total_time / max(self.cur_nimg / 1000, 1e-9)

    def metadata(self, sec_per_kimg: float) -> dict:
        return {"network": self.network_name, "kimg": self.cur_nimg / 1000, "sec_per_kimg": round(sec_per_kimg, 3),
                "device": str(self.device), "options": self.opts.to_dict(), "loss": self.loss.name,
                "data": str(self.data.path) if self.data is not None else None,
                "final_losses": self.history[-1] if self.history else {}}


def _quantize(img: torch.Tensor) -> torch.Tensor:
    """What a generated image becomes as an 8-bit file, back in [-1, 1] (the encoder sees real files)."""
    return (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).floor() / 127.5 - 1


def _conditional_w_stats(G: Generator) -> tuple[torch.Tensor, float]:
    """Mean w and spread over every class of a conditional model (the encoder is given no label)."""
    device = next(G.parameters()).device
    stats = [w_stats(G, torch.eye(G.c_dim, device=device)[k], max(2, 10000 // G.c_dim)) for k in range(G.c_dim)]
    return torch.stack([m for m, _ in stats]).mean(0), max(s for _, s in stats)


def _check_data(data: ImageDataset, G: Generator) -> ImageDataset:
    c, h, w = data.image_shape
    if (h, w) != (G.img_resolution,) * 2:
        raise UserInputError(f"--data images are {w}x{h}, the model draws {G.img_resolution}x{G.img_resolution}; "
                             f"convert them with `stylegan dataset --resolution {G.img_resolution}`")
    if c < G.img_channels:
        raise UserInputError(f"--data images have {c} channel(s), the model draws {G.img_channels}")
    return data


def _diff(a: dict, b: dict) -> str:
    return ", ".join(f"{k} {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k) and k not in ("kimg", "snap_kimg"))

"""Training options: one JSON-serialisable dataclass, the presets, and the networks they build.

Defaults follow NVIDIA's StyleGAN3 ``train.py`` (which also trains ``--cfg stylegan2``): Adam(0, 0.99),
lazy R1 every 16 minibatches, lazy path-length regularisation every 4 (StyleGAN2 only), EMA half-life
``batch*10/32`` kimg with a 5 % ramp-up, ADA target 0.6 over 500 kimg, ``bgc`` augmentations. The
options are frozen: resuming or transfer learning derives a new object (:mod:`stylegan.train.resume`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import UserInputError
from ..networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    MappingConfig,
    StyleGAN2SynthesisConfig,
    StyleGAN3SynthesisConfig,
)
from .augment import PRESETS

CFGS = ("stylegan2", "stylegan3-t", "stylegan3-r")
AUG_MODES = ("ada", "fixed", "noaug")


@dataclass(frozen=True)
class TrainingOptions:
    cfg: str = "stylegan2"                 # stylegan2 | stylegan3-t | stylegan3-r
    batch: int = 32                        # global batch (all processes together)
    batch_gpu: int | None = None           # per-process micro-batch (None: batch / processes)
    gamma: float | None = None             # R1 weight (None: 0.0002 * res^2 / batch, NVIDIA's heuristic)
    kimg: float = 25000                    # train until this many thousand real images were shown
    tick: float = 4                        # progress line every this many kimg
    snap: int = 50                         # snapshot, images, metrics and training state every N ticks
    seed: int = 0
    # Data
    mirror: bool = False                   # add x-flipped copies of the dataset
    cond: bool = False                     # condition on the dataset labels
    subset: int | None = None              # train on a random subset of N images (chosen by seed)
    # Networks
    cbase: int = 32768                     # channel base (channels at res r = min(cbase / r, cmax))
    cmax: int = 512                        # channel maximum
    map_depth: int | None = None           # mapping layers (None: 8 for stylegan2, 2 for stylegan3)
    z_dim: int = 512
    w_dim: int = 512
    mbstd_group: int = 4                   # minibatch-std group size (within a micro-batch)
    glr: float | None = None               # G learning rate (None: 0.002 stylegan2, 0.0025 stylegan3)
    dlr: float = 0.002                     # D learning rate
    fp32: bool = False                     # no mixed precision on GPUs
    freezed: int = 0                       # frozen D layers (transfer learning)
    allow_tf32: bool = False               # GPUs: TF32 matrix products and convolutions (NVIDIA: off)
    cudnn_benchmark: bool = True           # GPUs: cuDNN autotuning (NVIDIA's --nobench turns it off)
    # Regularisation and EMA
    style_mixing: float | None = None      # style-mixing probability (None: 0.9 stylegan2, 0 stylegan3)
    pl_weight: float | None = None         # path-length weight (None: 2 stylegan2, 0 stylegan3)
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    g_reg_interval: int = 4                # lazy path-length interval (stylegan2 only; StyleGAN3 has none)
    d_reg_interval: int = 16               # lazy R1 interval
    ema_kimg: float | None = None          # G_ema half-life (None: batch * 10 / 32)
    ema_rampup: float | None = 0.05        # EMA half-life ramp-up (None: off)
    blur_sigma: float | None = None        # D input blur at the start (None: 10 for stylegan3-r, else 0)
    blur_fade_kimg: float | None = None    # blur fade-out (None: batch * 200 / 32)
    # Augmentation
    aug: str = "ada"                       # ada | fixed | noaug
    p: float = 0.2                         # augmentation probability for --aug fixed
    target: float = 0.6                    # ADA target r_t
    ada_kimg: float = 500                  # ADA: kimg for p to go from 0 to 1
    ada_interval: int = 4                  # ADA: adjust p every N minibatches
    augpipe: str = "bgc"
    # Transfer learning (filled in by the loop)
    resume_from: str | None = None

    @property
    def generation(self) -> str:
        return "stylegan2" if self.cfg == "stylegan2" else "stylegan3"

    @property
    def lazy_intervals(self) -> tuple[int | None, int | None]:
        """(G, D) lazy-regularisation intervals, NVIDIA's rule: the config, not the weights, decides.
        ``--cfg stylegan2`` regularises G every ``g_reg_interval`` minibatches, StyleGAN3 configs have no
        separate G regularisation phase; D always has its R1 phase (a no-op with ``--gamma 0``, but the
        learning rate and betas are still scaled for it)."""
        return (self.g_reg_interval if self.cfg == "stylegan2" else None), self.d_reg_interval

    def resolved(self, resolution: int) -> TrainingOptions:
        """A copy with every ``None`` default filled in for this dataset resolution."""
        sg2 = self.cfg == "stylegan2"
        changes = {}
        if self.gamma is None:
            changes["gamma"] = round(0.0002 * resolution**2 / self.batch, 6)
        if self.map_depth is None:
            changes["map_depth"] = 8 if sg2 else 2
        if self.glr is None:
            changes["glr"] = 0.002 if sg2 else 0.0025
        if self.style_mixing is None:
            changes["style_mixing"] = 0.9 if sg2 else 0.0
        if self.pl_weight is None:
            changes["pl_weight"] = 2.0 if sg2 else 0.0
        if self.ema_kimg is None:
            changes["ema_kimg"] = self.batch * 10 / 32
        if self.blur_sigma is None:
            changes["blur_sigma"] = 10.0 if self.cfg == "stylegan3-r" else 0.0
        if self.blur_fade_kimg is None:
            changes["blur_fade_kimg"] = self.batch * 200 / 32
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        if self.cfg not in CFGS:
            raise UserInputError(f"unknown --cfg {self.cfg!r}; use one of {', '.join(CFGS)}")
        if self.aug not in AUG_MODES:
            raise UserInputError(f"unknown --aug {self.aug!r}; use one of {', '.join(AUG_MODES)}")
        if self.augpipe not in PRESETS:
            raise UserInputError(f"unknown --augpipe {self.augpipe!r}; use one of {', '.join(PRESETS)}")
        if self.batch < 1:
            raise UserInputError("--batch must be at least 1")
        if self.batch_gpu is not None and (self.batch_gpu < 1 or self.batch % self.batch_gpu):
            raise UserInputError(f"--batch {self.batch} must be a multiple of --batch-gpu {self.batch_gpu}")
        if self.gamma is not None and self.gamma < 0:
            raise UserInputError("--gamma must be >= 0")
        if self.kimg <= 0 or self.tick <= 0 or self.snap < 1:
            raise UserInputError("--kimg and --tick must be positive and --snap at least 1")
        if self.aug == "fixed" and not 0 <= self.p <= 1:
            raise UserInputError("--p must be in [0, 1]")
        if self.cbase < 1 or self.cmax < 1 or self.z_dim < 1 or self.w_dim < 1:
            raise UserInputError("--cbase, --cmax, --z-dim and --w-dim must be positive")
        if self.mbstd_group < 1:
            raise UserInputError("--mbstd-group must be at least 1")
        if self.subset is not None and self.subset < 1:
            raise UserInputError("--subset must be at least 1")
        if self.freezed < 0:
            raise UserInputError("--freezed must be >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainingOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def generator_config(opts: TrainingOptions, resolution: int, channels: int, c_dim: int,
                     img_shape: tuple[int, int] | None = None) -> GeneratorConfig:
    """The generator NVIDIA's ``train.py`` builds for this cfg (with our size options); ``img_shape``
    ``(H, W)``: a non-square model (docs/canvas.md)."""
    mapping = MappingConfig(num_layers=opts.map_depth)
    fp16_res = 0 if opts.fp32 else 4
    clamp = None if opts.fp32 else 256
    if opts.cfg == "stylegan2":
        syn = StyleGAN2SynthesisConfig(channel_base=opts.cbase, channel_max=opts.cmax, num_fp16_res=fp16_res,
                                       conv_clamp=clamp)
    else:
        radial = opts.cfg == "stylegan3-r"
        syn = StyleGAN3SynthesisConfig(channel_base=opts.cbase * (2 if radial else 1),
                                       channel_max=opts.cmax * (2 if radial else 1),
                                       conv_kernel=1 if radial else 3, use_radial_filters=radial,
                                       num_fp16_res=fp16_res, conv_clamp=clamp,
                                       magnitude_ema_beta=0.5 ** (opts.batch / 20000))
    return GeneratorConfig(opts.generation, z_dim=opts.z_dim, c_dim=c_dim, w_dim=opts.w_dim,
                           img_resolution=resolution, img_channels=channels, mapping=mapping, synthesis=syn,
                           img_shape=img_shape)


def discriminator_config(opts: TrainingOptions, resolution: int, channels: int, c_dim: int,
                         img_shape: tuple[int, int] | None = None) -> DiscriminatorConfig:
    return DiscriminatorConfig(c_dim=c_dim, img_resolution=resolution, img_channels=channels, img_shape=img_shape,
                               channel_base=opts.cbase, channel_max=opts.cmax,
                               num_fp16_res=0 if opts.fp32 else 4, conv_clamp=None if opts.fp32 else 256,
                               mbstd_group_size=opts.mbstd_group)


def build_networks(g_cfg: GeneratorConfig, d_cfg: DiscriminatorConfig, freezed: int = 0):
    """Fresh (G, D, G_ema) with NVIDIA's initialisation (G_ema starts as a copy of G)."""
    G = Generator(g_cfg).train().requires_grad_(False)
    D = Discriminator(d_cfg, freeze_layers=freezed).train().requires_grad_(False)
    G_ema = Generator(g_cfg).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    return G, D, G_ema

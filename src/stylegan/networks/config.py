"""Frozen configuration dataclasses: everything needed to rebuild a network from its weights.

A config is stored as JSON beside the weights (see ``stylegan.checkpoints.native``); a network is
``build_generator(config)`` plus ``load_state_dict``. Field names follow the official constructor
arguments so that a user of NVIDIA's code recognises them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MappingConfig:
    num_layers: int = 8                    # number of fully connected layers z -> w
    embed_features: int | None = None      # label embedding width (None: w_dim; unused when c_dim == 0)
    layer_features: int | None = None      # hidden width (None: w_dim)
    activation: str = "lrelu"              # activation of every layer
    lr_multiplier: float = 0.01            # learning-rate multiplier (equalized lr)
    w_avg_beta: float | None = 0.998       # decay of the tracked w average (None: no w_avg)


@dataclass(frozen=True)
class StyleGAN1SynthesisConfig:
    channel_base: int = 16384              # channels at res r = min(channel_base // r, channel_max); 2 x TF fmap_base
    channel_max: int = 512
    use_noise: bool = True
    blur_filter: tuple[float, ...] = (1.0, 2.0, 1.0)
    fused_threshold: int = 128             # informational: TF fused its up-convs at resolutions >= this (the TF
                                           # converter flips those kernels; our layers all run unfused)
    num_fp16_res: int = 0                  # always 0: StyleGAN1 runs in fp32


@dataclass(frozen=True)
class StyleGAN2SynthesisConfig:
    architecture: str = "skip"             # 'orig' | 'skip' | 'resnet'
    channel_base: int = 32768              # channels at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512
    num_fp16_res: int = 4                  # number of highest resolutions that run in fp16 on GPUs
    conv_clamp: float | None = 256         # clamp of conv outputs (None: off)
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
    use_noise: bool = True
    activation: str = "lrelu"
    kernel_size: int = 3


@dataclass(frozen=True)
class StyleGAN3SynthesisConfig:
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14                   # layers excluding ToRGB
    num_critical: int = 2                  # critically sampled layers at the end
    first_cutoff: float = 2.0              # cutoff frequency of the first layer
    first_stopband: float = 2 ** 2.1       # stopband of the first layer
    last_stopband_rel: float = 2 ** 0.3    # last stopband relative to the last cutoff
    margin_size: int = 10                  # extra pixels around each feature map
    output_scale: float = 0.25             # scale of the ToRGB output
    num_fp16_res: int = 4
    conv_kernel: int = 3                   # 3 for StyleGAN3-T, 1 for StyleGAN3-R
    filter_size: int = 6                   # taps per resampling factor
    lrelu_upsampling: int = 2              # oversampling of the nonlinearity
    use_radial_filters: bool = False       # radial downsampling filters (StyleGAN3-R)
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999


SYNTHESIS_CONFIGS = {
    "stylegan1": StyleGAN1SynthesisConfig,
    "stylegan2": StyleGAN2SynthesisConfig,
    "stylegan3": StyleGAN3SynthesisConfig,
}


@dataclass(frozen=True)
class GeneratorConfig:
    generation: str                        # 'stylegan1' | 'stylegan2' | 'stylegan3'
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping: MappingConfig = field(default_factory=MappingConfig)
    synthesis: Any = None                  # one of the *SynthesisConfig classes above

    def __post_init__(self):
        if self.generation not in SYNTHESIS_CONFIGS:
            raise ValueError(f"unknown generation {self.generation!r}; expected one of {sorted(SYNTHESIS_CONFIGS)}")
        if self.synthesis is None:
            object.__setattr__(self, "synthesis", SYNTHESIS_CONFIGS[self.generation]())
        if not isinstance(self.synthesis, SYNTHESIS_CONFIGS[self.generation]):
            raise ValueError(f"{self.generation} generator needs a {SYNTHESIS_CONFIGS[self.generation].__name__}")

    @property
    def variant(self) -> str:
        """Human name: 'stylegan2', 'stylegan3-t', 'stylegan3-r', 'stylegan1'."""
        if self.generation == "stylegan3":
            return "stylegan3-r" if self.synthesis.use_radial_filters or self.synthesis.conv_kernel == 1 else "stylegan3-t"
        return self.generation

    def to_dict(self) -> dict:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(d)
        gen = d["generation"]
        mapping = MappingConfig(**_tuples(MappingConfig, d.pop("mapping", {})))
        syn_cls = SYNTHESIS_CONFIGS[gen]
        synthesis = syn_cls(**_tuples(syn_cls, d.pop("synthesis", {}) or {}))
        return cls(mapping=mapping, synthesis=synthesis, **_known(cls, d))

    def replace(self, **changes) -> "GeneratorConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DiscriminatorConfig:
    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"           # 'orig' | 'skip' | 'resnet'
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    cmap_dim: int | None = None            # conditioning projection width (None: channels at 4x4)
    activation: str = "lrelu"
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
    mbstd_group_size: int | None = 4       # minibatch-std group (None: whole batch)
    mbstd_num_channels: int = 1
    mapping: MappingConfig = field(default_factory=lambda: MappingConfig(num_layers=8, w_avg_beta=None))
    generation: str = "stylegan2"          # 'stylegan2' (also used with StyleGAN3 G) or 'stylegan1'

    def to_dict(self) -> dict:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "DiscriminatorConfig":
        d = dict(d)
        mapping = MappingConfig(**_tuples(MappingConfig, d.pop("mapping", {})))
        return cls(mapping=mapping, **_tuples(cls, _known(cls, d)))

    def replace(self, **changes) -> "DiscriminatorConfig":
        return dataclasses.replace(self, **changes)


def _known(cls, d: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return {k: v for k, v in d.items() if k in names}


def _tuples(cls, d: dict) -> dict:
    """JSON turns tuples into lists; turn them back so configs stay hashable and comparable."""
    d = _known(cls, dict(d))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {k: _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    return obj


def config_to_json(cfg) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)

"""Frozen configuration dataclasses: everything needed to rebuild a network from its weights.

A config is stored as JSON beside the weights (see ``stylegan.checkpoints.native``); a network is
``build_generator(config)`` plus ``load_state_dict``. Field names follow the official constructor
arguments so that a user of NVIDIA's code recognises them.

``from_dict`` reads configs from files, which may be hostile: every field is checked for its type and
a sane range (:data:`LIMITS`) and a bad one raises ``ValueError`` naming it, so that no network is ever
built from a string, a negative size or a resolution of 2**30.

``img_shape`` ``(H, W)`` makes a non-square (StyleGAN2/3) model: both sides powers of two, the longer
one ``img_resolution``, at most 4:1 either way (docs/canvas.md, "Non-square models"). ``None`` is the
square; a square written out as ``[R, R]`` reads as ``None``, and ``to_dict`` leaves a ``None`` out, so
that square configs and files stay exactly as they were.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    img_shape: tuple[int, int] | None = None   # (H, W) of a non-square model; None: img_resolution square

    def __post_init__(self):
        _settle_shape(self)
        if self.img_shape is not None and self.generation == "stylegan1":
            raise ValueError("GeneratorConfig.img_shape: non-square models are StyleGAN2 or StyleGAN3, not stylegan1")
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

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the images: :attr:`img_shape`, or the ``img_resolution`` square."""
        return shape_of(self)

    def to_dict(self) -> dict:
        return _dict_of(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(_mapping_of(d, "generator config"))
        gen = d.get("generation")
        if gen not in SYNTHESIS_CONFIGS:
            raise ValueError(f"generation is {_shown(gen)}; expected one of {sorted(SYNTHESIS_CONFIGS)}")
        _require(d, ("z_dim", "w_dim", "img_resolution"), "generator config")
        mapping = MappingConfig(**_tuples(MappingConfig, _mapping_of(d.pop("mapping", {}), "mapping")))
        syn_cls = SYNTHESIS_CONFIGS[gen]
        synthesis = syn_cls(**_tuples(syn_cls, _mapping_of(d.pop("synthesis", {}) or {}, "synthesis")))
        cfg = cls(mapping=mapping, synthesis=synthesis, **_tuples(cls, d))
        _check_generator(cfg)
        return cfg

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
    img_shape: tuple[int, int] | None = None   # (H, W) of a non-square model; None: img_resolution square

    def __post_init__(self):
        _settle_shape(self)
        if self.img_shape is not None and self.generation == "stylegan1":
            raise ValueError("DiscriminatorConfig.img_shape: non-square models are StyleGAN2 or StyleGAN3, "
                             "not stylegan1")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the images: :attr:`img_shape`, or the ``img_resolution`` square."""
        return shape_of(self)

    def to_dict(self) -> dict:
        return _dict_of(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiscriminatorConfig":
        d = dict(_mapping_of(d, "discriminator config"))
        _require(d, ("img_resolution",), "discriminator config")
        mapping = MappingConfig(**_tuples(MappingConfig, _mapping_of(d.pop("mapping", {}), "mapping")))
        cfg = cls(mapping=mapping, **_tuples(cls, d))
        if cfg.generation not in ("stylegan1", "stylegan2"):
            raise ValueError(f"DiscriminatorConfig.generation is {_shown(cfg.generation)}; expected 'stylegan1' "
                             f"or 'stylegan2'")
        return cfg

    def replace(self, **changes) -> "DiscriminatorConfig":
        return dataclasses.replace(self, **changes)


#: Longest side over shortest of a non-square model (and dataset): the StyleGAN2 constant keeps a cell.
MAX_ASPECT = 4


def shape_problem(h: int, w: int) -> str | None:
    """Why ``(h, w)`` cannot be a model's image shape (sides powers of two, at most :data:`MAX_ASPECT`:1
    either way), or None. The one check of it: configs, synthesis networks and datasets use it."""
    if min(h, w) < 1 or (h & (h - 1)) or (w & (w - 1)):
        return "both sides must be powers of two"
    if max(h, w) > MAX_ASPECT * min(h, w):
        return f"the aspect must lie between 1:{MAX_ASPECT} and {MAX_ASPECT}:1"
    return None


def _settle_shape(cfg) -> None:
    """Check ``cfg.img_shape`` against ``img_resolution`` (ValueError naming it); a square becomes None."""
    shape, res = cfg.img_shape, cfg.img_resolution
    if shape is None:
        return
    where = f"{type(cfg).__name__}.img_shape"
    if (not isinstance(shape, (list, tuple)) or len(shape) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)):
        raise ValueError(f"{where} must be two integers [height, width], not {_shown(shape)}")
    h, w = shape
    problem = shape_problem(h, w)
    if problem is None and max(h, w) != res:
        problem = f"its longer side must be img_resolution ({res})"
    if problem is not None:
        raise ValueError(f"{where} is {list(shape)}; {problem}")
    object.__setattr__(cfg, "img_shape", None if h == w else (h, w))


def shape_of(cfg) -> tuple[int, int]:
    return tuple(cfg.img_shape) if cfg.img_shape is not None else (cfg.img_resolution, cfg.img_resolution)


def _dict_of(cfg) -> dict:
    d = _to_jsonable(dataclasses.asdict(cfg))
    if d.get("img_shape") is None:
        d.pop("img_shape", None)
    return d


def _known(cls, d: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return {k: v for k, v in d.items() if k in names}


def _tuples(cls, d: dict) -> dict:
    """Checked fields of ``cls`` from JSON data; JSON turns tuples into lists, turned back here so that
    configs stay hashable and comparable."""
    d = _known(cls, dict(d))
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    return {k: _checked(cls, k, types[k], v) for k, v in d.items()}


#: Sane ranges (inclusive) of the numeric fields read from files: far beyond any published network,
#: small enough that building one never loops for hours or overflows. Memory is bounded separately
#: (stylegan.checkpoints.architecture checks every network against the tensors its file holds).
LIMITS: dict[str, tuple[float, float]] = {
    "z_dim": (1, 1 << 16), "w_dim": (1, 1 << 16), "c_dim": (0, 1 << 16), "img_resolution": (4, 1 << 14),
    "img_channels": (1, 16), "num_layers": (0, 64), "embed_features": (1, 1 << 16),
    "layer_features": (1, 1 << 16), "lr_multiplier": (1e-8, 1e4), "w_avg_beta": (0, 1),
    "channel_base": (1, 1 << 32), "channel_max": (1, 1 << 16), "num_fp16_res": (0, 32),
    "conv_clamp": (1e-8, 1e8), "kernel_size": (1, 15), "num_critical": (0, 64), "first_cutoff": (1e-6, 1e6),
    "first_stopband": (1e-6, 1e6), "last_stopband_rel": (1e-6, 1e6), "margin_size": (0, 1024),
    "output_scale": (-1e6, 1e6), "conv_kernel": (1, 15), "filter_size": (1, 64), "lrelu_upsampling": (1, 16),
    "magnitude_ema_beta": (0, 1), "fused_threshold": (1, 1 << 20), "cmap_dim": (1, 1 << 16),
    "mbstd_group_size": (1, 1 << 12), "mbstd_num_channels": (0, 64),
}
_CHOICES = {"architecture": ("orig", "skip", "resnet"), "generation": ("stylegan1", "stylegan2", "stylegan3")}
_MAX_TAPS = 32


def _checked(cls, name: str, kind: str, value: Any) -> Any:
    """``value`` of field ``name`` (annotation ``kind``) if it has the right type and range, else ValueError."""
    where = f"{cls.__name__}.{name}"
    if value is None:
        if "None" in kind:
            return None
        raise ValueError(f"{where} is missing (null)")
    if name == "img_shape":
        if isinstance(value, list):
            value = tuple(value)
        return value            # checked against img_resolution by _settle_shape
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= _MAX_TAPS or not all(
                _is_number(v) and math.isfinite(v) for v in value) or abs(sum(value)) < 1e-8:
            raise ValueError(f"{where} must be a list of 1 to {_MAX_TAPS} finite numbers with a non-zero sum, "
                             f"not {_shown(value)}")
        return tuple(float(v) for v in value)
    base = kind.split("|")[0].strip()
    if base == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, not {_shown(value)}")
        return value
    if base == "str":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, not {_shown(value)}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"{where} is {_shown(value)}; expected one of {list(_CHOICES[name])}")
        if name == "activation":
            from .ops import ACTIVATIONS
            if value not in ACTIVATIONS:
                raise ValueError(f"{where} is {_shown(value)}; expected one of {sorted(ACTIVATIONS)}")
        return value
    if base in ("int", "float"):
        if not _is_number(value) or (base == "int" and not isinstance(value, int)) or not math.isfinite(value):
            raise ValueError(f"{where} must be {'an integer' if base == 'int' else 'a number'}, not {_shown(value)}")
        lo, hi = LIMITS.get(name, (-math.inf, math.inf))
        if not lo <= value <= hi:
            raise ValueError(f"{where} is {value}; it must lie between {lo:g} and {hi:g}")
        return value if base == "int" else float(value)
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mapping_of(d: Any, what: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"the {what} must be a JSON object, not {_shown(d)}")
    return d


def _require(d: dict, names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in d]
    if missing:
        raise ValueError(f"the {what} lacks {', '.join(missing)}")


def _check_generator(cfg: "GeneratorConfig") -> None:
    syn = cfg.synthesis
    if cfg.generation != "stylegan3" and cfg.img_resolution & (cfg.img_resolution - 1):
        raise ValueError(f"GeneratorConfig.img_resolution is {cfg.img_resolution}; {cfg.generation} needs a "
                         f"power of two")
    if cfg.generation == "stylegan3" and syn.num_critical >= syn.num_layers:
        raise ValueError(f"StyleGAN3SynthesisConfig.num_critical ({syn.num_critical}) must be below num_layers "
                         f"({syn.num_layers})")


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {k: _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    return obj


def config_to_json(cfg) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)

"""NVIDIA's PyTorch network pickles (StyleGAN2-ADA-pytorch and StyleGAN3) -> our networks.

The pickle is read by :mod:`.safe_pickle` into inert records (no code runs). The architecture is
rebuilt from the attributes each official object stores and from the tensor shapes, never from
``module_src`` and only as a fallback from ``_init_kwargs`` (whose defaults differ between the
two official code bases). Every attribute is read through a typed accessor (a string, a negative
size or a missing field is one error naming it), and :func:`.architecture.build_network` only builds
a network whose tensors the file really holds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                        StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)
from ..networks.stylegan3 import layer_schedule
from .architecture import (NetworkBudget, as_bool, as_float, as_int, as_ints, as_str, build_network,
                           channel_base_max)
from .safe_pickle import PersistentRecord
from .types import Checkpoint

DEFAULT_FILTER = (1.0, 3.0, 3.0, 1.0)
_MISSING = object()
#: Plain values kept from ``training_set_kwargs`` and ``progress`` (they end up in our JSON metadata).
MAX_PLAIN_VALUES = 100_000


def _attr(rec: PersistentRecord, name: str, default: Any = _MISSING) -> Any:
    value = rec.attrs.get(name, default)
    if value is _MISSING:
        raise CheckpointError(f"official {rec.class_name} has no attribute {name!r}; the file is not a "
                              f"StyleGAN network we understand")
    return value


def _int(rec: PersistentRecord, name: str, default: Any = _MISSING, lo: int | None = 0,
         hi: int | None = 1 << 20) -> int:
    return as_int(_attr(rec, name, default), f"official {rec.class_name}.{name}", lo, hi)


def _float(rec: PersistentRecord, name: str, default: Any = _MISSING) -> float:
    return as_float(_attr(rec, name, default), f"official {rec.class_name}.{name}")


def _optional_float(rec: PersistentRecord, name: str) -> float | None:
    value = rec.attrs.get(name)
    return None if value is None else _float(rec, name)


def _bool(rec: PersistentRecord, name: str, default: Any = _MISSING) -> bool:
    return as_bool(_attr(rec, name, default), f"official {rec.class_name}.{name}")


def _str(rec: PersistentRecord, name: str, default: Any = _MISSING) -> str:
    return as_str(_attr(rec, name, default), f"official {rec.class_name}.{name}")


def _child(rec: PersistentRecord, name: str) -> PersistentRecord:
    child = rec.modules.get(name)
    if child is None:
        raise CheckpointError(f"official {rec.class_name} has no sub-module {name!r}; the file is not a "
                              f"StyleGAN network we understand")
    return child


def _shape(rec: PersistentRecord, name: str, ndim: int) -> tuple[int, ...]:
    t = rec.parameters.get(name)
    if t is None:
        t = rec.buffers.get(name)
    if t is None:
        raise CheckpointError(f"official {rec.class_name} lacks tensor {name!r}")
    if t.ndim != ndim or not all(t.shape):
        raise CheckpointError(f"official {rec.class_name}.{name} has shape {tuple(t.shape)}; expected {ndim} "
                              f"non-zero dimensions")
    return tuple(t.shape)


def _filter_taps(rec: PersistentRecord) -> tuple[float, ...]:
    """Recover the 1-D resampling taps from a stored 2-D ``resample_filter`` (outer product)."""
    f = rec.buffers.get("resample_filter")
    if f is None:
        return DEFAULT_FILTER
    if f.ndim not in (1, 2) or not 1 <= f.shape[-1] <= 32 or not f.is_floating_point():
        raise CheckpointError(f"official {rec.class_name}.resample_filter has shape {tuple(f.shape)}")
    f = f.to(torch.float64)
    taps = f.sum(dim=0) if f.ndim == 2 else f
    total = taps.sum()
    if not torch.isfinite(total) or abs(float(total)) < 1e-8:
        raise CheckpointError(f"official {rec.class_name}.resample_filter does not sum to a finite, "
                              f"non-zero value")
    taps = taps / total
    default = torch.tensor(DEFAULT_FILTER, dtype=torch.float64)
    if taps.shape == default.shape and torch.allclose(taps, default / default.sum(), atol=1e-6):
        return DEFAULT_FILTER
    return tuple(float(v) for v in taps)


def _mapping_config(rec: PersistentRecord) -> MappingConfig:
    n = _int(rec, "num_layers", hi=64)
    fc0 = _child(rec, "fc0")
    w_dim = _int(rec, "w_dim", lo=1)
    layer_features = _shape(fc0, "weight", 2)[0] if n > 1 else None
    embed_features = _shape(_child(rec, "embed"), "weight", 2)[0] if "embed" in rec.modules else None
    return MappingConfig(
        num_layers=n,
        embed_features=None if embed_features in (None, w_dim) else embed_features,
        layer_features=None if layer_features in (None, w_dim) else layer_features,
        activation=_str(fc0, "activation", "lrelu"),
        lr_multiplier=_float(fc0, "bias_gain", 0.01),
        w_avg_beta=_optional_float(rec, "w_avg_beta"),
    )


def _sg2_synthesis_config(syn: PersistentRecord) -> StyleGAN2SynthesisConfig:
    resolutions = as_ints(_attr(syn, "block_resolutions"), "official SynthesisNetwork.block_resolutions", 4, 1 << 14)
    blocks = {r: _child(syn, f"b{r}") for r in resolutions}
    channels = {r: _shape(_child(b, "conv1"), "weight", 4)[0] for r, b in blocks.items()}
    channel_base, channel_max = channel_base_max(channels, "official SynthesisNetwork")
    if "num_fp16_res" in syn.attrs:
        num_fp16_res = _int(syn, "num_fp16_res", hi=32)
    else:  # ADA files do not store it; count fp16 blocks from the top
        num_fp16_res = sum(_bool(b, "use_fp16", False) for b in blocks.values())
    first_layer = _child(blocks[resolutions[0]], "conv1")
    return StyleGAN2SynthesisConfig(
        architecture=_str(blocks[resolutions[-1]], "architecture", "skip"),
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=num_fp16_res,
        conv_clamp=_optional_float(first_layer, "conv_clamp"),
        resample_filter=_filter_taps(blocks[resolutions[0]]),
        use_noise=_bool(first_layer, "use_noise", True),
        activation=_str(first_layer, "activation", "lrelu"),
        kernel_size=_shape(first_layer, "weight", 4)[-1],
    )


def _sg3_synthesis_config(syn: PersistentRecord, init_kwargs: dict) -> StyleGAN3SynthesisConfig:
    names = _attr(syn, "layer_names", [])
    if not isinstance(names, (list, tuple)) or not 2 <= len(names) <= 65 or not all(isinstance(n, str) for n in names):
        raise CheckpointError("official StyleGAN3 SynthesisNetwork.layer_names must list 2 to 65 layer names")
    layers = [_child(syn, n) for n in names]
    first = layers[0]
    up0 = _int(first, "up_factor", 2, lo=1, hi=64)
    kw = {k: init_kwargs[k] for k in ("channel_base", "channel_max", "first_cutoff", "first_stopband",
                                      "last_stopband_rel") if k in init_kwargs}
    rate = max(_float(first, "in_sampling_rate"), _float(first, "out_sampling_rate"))
    if rate <= 0:
        raise CheckpointError("official StyleGAN3 SynthesisLayer sampling rates must be positive")
    cfg = StyleGAN3SynthesisConfig(
        channel_base=as_int(kw.get("channel_base", 32768), "official StyleGAN3 init kwarg channel_base", 1),
        channel_max=as_int(kw.get("channel_max", 512), "official StyleGAN3 init kwarg channel_max", 1),
        num_layers=_int(syn, "num_layers", len(names) - 1, lo=1, hi=64),
        num_critical=_int(syn, "num_critical", 2, hi=64),
        first_cutoff=as_float(kw["first_cutoff"], "official init kwarg first_cutoff") if "first_cutoff" in kw
        else _float(_child(syn, "input"), "bandwidth", 2),
        first_stopband=as_float(kw.get("first_stopband", 2 ** 2.1), "official init kwarg first_stopband"),
        last_stopband_rel=as_float(kw.get("last_stopband_rel", 2 ** 0.3), "official init kwarg last_stopband_rel"),
        margin_size=_int(syn, "margin_size", 10, hi=1024),
        output_scale=_float(syn, "output_scale", 0.25),
        num_fp16_res=_int(syn, "num_fp16_res", 4, hi=32),
        conv_kernel=_shape(first, "weight", 4)[-1],
        filter_size=_int(first, "up_taps", 12, lo=1, hi=1 << 12) // up0,
        lrelu_upsampling=round(_float(first, "tmp_sampling_rate") / rate),
        use_radial_filters=any(_bool(layer, "down_radial", False) for layer in layers),
        conv_clamp=_optional_float(first, "conv_clamp"),
        magnitude_ema_beta=_float(first, "magnitude_ema_beta", 0.999),
    )
    if "channel_base" not in kw or "channel_max" not in kw:
        cfg = _fit_sg3_channels(cfg, syn, layers)
    return cfg


def _fit_sg3_channels(cfg: StyleGAN3SynthesisConfig, syn: PersistentRecord, layers) -> StyleGAN3SynthesisConfig:
    """Recover channel_base/channel_max from the stored layer widths when init kwargs lack them."""
    stored = [_int(layer, "out_channels", lo=1) for layer in layers[:-1]]
    cutoffs = [_float(layer, "out_cutoff") for layer in layers[:-1]]
    channel_max = max(stored)
    res = _int(syn, "img_resolution", lo=4, hi=1 << 14)
    if cfg.num_critical >= cfg.num_layers:
        raise CheckpointError("official StyleGAN3 SynthesisNetwork: num_critical must be below num_layers")
    for base in sorted({int(round(ch * 2 * cutoff)) for ch, cutoff in zip(stored, cutoffs)}):
        if not 1 <= base <= 1 << 32:
            continue
        trial = StyleGAN3SynthesisConfig(**{**cfg.__dict__, "channel_base": base, "channel_max": channel_max})
        with np.errstate(all="ignore"):
            widths = layer_schedule(res, 3, trial)["channels"][:-1]
        if np.isfinite(widths).all() and [int(w) for w in widths] == stored:
            return trial
    raise CheckpointError("could not recover the StyleGAN3 channel schedule from the stored layers")


def generator_config_from_record(rec: PersistentRecord) -> GeneratorConfig:
    if rec.class_name != "Generator":
        raise CheckpointError(f"expected an official Generator, found {rec.class_name}")
    syn = _child(rec, "synthesis")
    common = dict(z_dim=_int(rec, "z_dim", lo=1), c_dim=_int(rec, "c_dim"), w_dim=_int(rec, "w_dim", lo=1),
                  img_resolution=_int(rec, "img_resolution", lo=4, hi=1 << 14),
                  img_channels=_int(rec, "img_channels", lo=1, hi=16), mapping=_mapping_config(_child(rec, "mapping")))
    if "input" in syn.modules:
        return GeneratorConfig("stylegan3", synthesis=_sg3_synthesis_config(syn, _flat_kwargs(rec.init_kwargs)),
                               **common)
    return GeneratorConfig("stylegan2", synthesis=_sg2_synthesis_config(syn), **common)


def _flat_kwargs(kwargs: dict) -> dict:
    """SG3 passes synthesis kwargs flat, ADA nests them under synthesis_kwargs."""
    out = dict(kwargs or {})
    nested = out.pop("synthesis_kwargs", None) or {}
    if isinstance(nested, dict):
        out.update(nested)
    return out


def discriminator_config_from_record(rec: PersistentRecord) -> DiscriminatorConfig:
    if rec.class_name != "Discriminator":
        raise CheckpointError(f"expected an official Discriminator, found {rec.class_name}")
    res = _int(rec, "img_resolution", lo=8, hi=1 << 14)
    block_res = as_ints(_attr(rec, "block_resolutions"), "official Discriminator.block_resolutions", 8, 1 << 14)
    if res not in block_res:
        raise CheckpointError(f"official Discriminator.block_resolutions {block_res} lack img_resolution {res}")
    blocks = {r: _child(rec, f"b{r}") for r in block_res}
    epi = _child(rec, "b4")
    channels = {r: _shape(_child(b, "conv0"), "weight", 4)[0] for r, b in blocks.items()}
    channels[4] = _shape(_child(epi, "conv"), "weight", 4)[0]
    channel_base, channel_max = channel_base_max(channels, "official Discriminator")
    top = blocks[res]
    conv0 = _child(top, "conv0")
    mbstd = epi.modules.get("mbstd")
    c_dim = _int(rec, "c_dim")
    mapping = _mapping_config(_child(rec, "mapping")) if c_dim > 0 else MappingConfig(num_layers=8, w_avg_beta=None)
    fp16_blocks = sum(_bool(b, "use_fp16", False) for b in blocks.values())
    cmap_dim = _int(epi, "cmap_dim", 0)
    group = None if mbstd is None else mbstd.attrs.get("group_size")
    return DiscriminatorConfig(
        c_dim=c_dim, img_resolution=res, img_channels=_int(rec, "img_channels", lo=1, hi=16),
        architecture=_str(top, "architecture", "resnet"),
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=_int(rec, "num_fp16_res", hi=32) if "num_fp16_res" in rec.attrs else fp16_blocks,
        conv_clamp=_optional_float(conv0, "conv_clamp"),
        cmap_dim=(cmap_dim if cmap_dim > 0 else None) if c_dim > 0 else None,
        activation=_str(conv0, "activation", "lrelu"),
        resample_filter=_filter_taps(top),
        mbstd_group_size=None if group is None else _int(mbstd, "group_size", lo=1),
        mbstd_num_channels=0 if mbstd is None else _int(mbstd, "num_channels", 1, hi=64),
        mapping=mapping,
    )


def generator_from_record(rec: PersistentRecord, what: str, budget: NetworkBudget) -> Generator:
    return _network_from_record(Generator, generator_config_from_record, rec, what, budget)


def discriminator_from_record(rec: PersistentRecord, what: str, budget: NetworkBudget) -> Discriminator:
    return _network_from_record(Discriminator, discriminator_config_from_record, rec, what, budget)


def _network_from_record(build, config_of, rec: PersistentRecord, what: str, budget: NetworkBudget):
    try:
        cfg = config_of(rec)
    except CheckpointError as exc:
        raise CheckpointError(f"{what}: {exc}") from None
    return build_network(build, cfg, rec.named_tensors(), what, budget)


def _augment_from_record(rec: PersistentRecord | None) -> dict | None:
    if rec is None:
        return None
    p = rec.buffers.get("p")
    if p is not None and (p.numel() != 1 or not p.is_floating_point() or not torch.isfinite(p).all()):
        raise CheckpointError("official AugmentPipe.p must be one finite number")
    settings = {}
    for k, v in rec.attrs.items():
        if isinstance(v, np.ndarray) and v.size == 1:
            v = v.reshape(()).item()
        v = v.item() if isinstance(v, np.generic) else v
        if _json_number(v):
            settings[k] = v
    return {"p": float(p) if p is not None else 0.0, "settings": settings}


def _json_number(v: Any) -> bool:
    """A bool, an int within 64 bits or a finite float: what JSON metadata can hold and print."""
    return (isinstance(v, bool) or (isinstance(v, int) and abs(v) < 2**63)
            or (isinstance(v, float) and math.isfinite(v)))


def plain_data(value: Any, what: str) -> Any:
    """JSON-like copy of ``training_set_kwargs`` / ``progress`` (class_name stays a string, never imported);
    at most :data:`MAX_PLAIN_VALUES` values, so that a small file cannot expand into a huge metadata block."""
    left = [MAX_PLAIN_VALUES]

    def take(n: int) -> None:
        left[0] -= n
        if left[0] < 0:
            raise CheckpointError(f"{what} holds more than {MAX_PLAIN_VALUES} values; the file is corrupt "
                                  f"or malicious")

    def copy(v: Any) -> Any:
        take(1)
        if isinstance(v, dict):
            return {str(k) if isinstance(k, (str, int, float, bool)) or k is None else f"<{type(k).__name__}>":
                    copy(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [copy(x) for x in v]
        if isinstance(v, (int, float)) and not _json_number(v):
            return f"<{type(v).__name__} out of range>"
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if isinstance(v, (np.generic, np.ndarray)):
            take(int(np.size(v)))
            return copy(v.item() if np.size(v) == 1 else np.asarray(v).tolist())
        return f"<{type(v).__name__}>"

    return copy(value)


def checkpoint_from_records(data: dict, path: Path, which: tuple[str, ...]) -> Checkpoint:
    """Our networks from the top-level dict of an official PyTorch pickle (as read by ``read_pickle``)."""
    if not isinstance(data, dict) or not any(k in data for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path.name} is a pickle but not a StyleGAN network pickle "
                              f"(expected a dict with G, D and G_ema)")
    budget = NetworkBudget(path.name, path.stat().st_size)
    out = Checkpoint(source_format="official-pytorch", path=str(path))
    for key in which:
        rec = data.get(key)
        if rec is None:
            continue
        if not isinstance(rec, PersistentRecord):
            raise CheckpointError(f"{path.name}: {key} is not a network object")
        if key == "D":
            out.D = discriminator_from_record(rec, f"{path.name}: D", budget)
        else:
            setattr(out, key, generator_from_record(rec, f"{path.name}: {key}", budget))
    if out.G_ema is None and out.G is not None and "G_ema" in which:
        out.G_ema = out.G
    aug = data.get("augment_pipe")
    out.augment = _augment_from_record(aug if isinstance(aug, PersistentRecord) else None)
    tsk = data.get("training_set_kwargs")
    out.training_set_kwargs = plain_data(tsk, f"{path.name}: training_set_kwargs") if isinstance(tsk, dict) else None
    if isinstance(data.get("progress"), dict):
        out.metadata["progress"] = plain_data(data["progress"], f"{path.name}: progress")
    return out

"""NVIDIA's PyTorch network pickles (StyleGAN2-ADA-pytorch and StyleGAN3) -> our networks.

The pickle is read by :mod:`.safe_pickle` into inert records (no code runs). The architecture is
rebuilt from the attributes each official object stores and from the tensor shapes, never from
``module_src`` and only as a fallback from ``_init_kwargs`` (whose defaults differ between the
two official code bases). The rebuilt network must then accept the file's tensors exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                        StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)
from ..networks.stylegan3 import layer_schedule
from .safe_pickle import PersistentRecord, TFNetworkRecord, read_pickle
from .types import Checkpoint, load_tensors

DEFAULT_FILTER = (1.0, 3.0, 3.0, 1.0)


def _scalar(v, default=None):
    if v is None:
        return default
    if isinstance(v, np.ndarray):
        return v.item() if v.size == 1 else v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attr(rec: PersistentRecord, name: str, default=None):
    return _scalar(rec.attrs.get(name, default), default)


def _child(rec: PersistentRecord, name: str) -> PersistentRecord:
    child = rec.modules.get(name)
    if child is None:
        raise CheckpointError(f"official {rec.class_name} has no sub-module {name!r}; the file is not a "
                              f"StyleGAN network we understand")
    return child


def _tensor(rec: PersistentRecord, name: str) -> torch.Tensor:
    t = rec.parameters.get(name)
    if t is None:
        t = rec.buffers.get(name)
    if t is None:
        raise CheckpointError(f"official {rec.class_name} lacks tensor {name!r}")
    return t


def _filter_taps(rec: PersistentRecord) -> tuple[float, ...]:
    """Recover the 1-D resampling taps from a stored 2-D ``resample_filter`` (outer product)."""
    f = rec.buffers.get("resample_filter")
    if f is None:
        return DEFAULT_FILTER
    f = f.to(torch.float64)
    taps = f.sum(dim=0) if f.ndim == 2 else f
    taps = taps / taps.sum()
    default = torch.tensor(DEFAULT_FILTER, dtype=torch.float64)
    if taps.shape == default.shape and torch.allclose(taps, default / default.sum(), atol=1e-6):
        return DEFAULT_FILTER
    return tuple(float(v) for v in taps)


def _mapping_config(rec: PersistentRecord, num_layers: int | None = None) -> MappingConfig:
    n = int(_attr(rec, "num_layers", num_layers or 0))
    fc0 = _child(rec, "fc0")
    lr = float(_attr(fc0, "bias_gain", 0.01))
    w_dim = int(_attr(rec, "w_dim"))
    layer_features = int(_tensor(fc0, "weight").shape[0]) if n > 1 else None
    embed_features = None
    if "embed" in rec.modules:
        embed_features = int(_tensor(_child(rec, "embed"), "weight").shape[0])
    beta = _attr(rec, "w_avg_beta", None)
    return MappingConfig(
        num_layers=n,
        embed_features=None if embed_features in (None, w_dim) else embed_features,
        layer_features=None if layer_features in (None, w_dim) else layer_features,
        activation=str(_attr(fc0, "activation", "lrelu")),
        lr_multiplier=lr,
        w_avg_beta=None if beta is None else float(beta),
    )


def _channel_base_max(channels: dict[int, int]) -> tuple[int, int]:
    """Find (channel_base, channel_max) with ``min(base // res, max) == channels[res]`` for all res."""
    channel_max = max(channels.values())
    lo, hi = 1, 1 << 40
    for res, ch in channels.items():
        if ch < channel_max:
            lo = max(lo, ch * res)
            hi = min(hi, (ch + 1) * res - 1)
        else:
            lo = max(lo, channel_max * res)
    if lo > hi:
        raise CheckpointError(f"channel counts {channels} do not follow min(channel_base // res, channel_max)")
    return lo, channel_max


def _sg2_synthesis_config(syn: PersistentRecord) -> StyleGAN2SynthesisConfig:
    resolutions = [int(r) for r in _attr(syn, "block_resolutions")]
    blocks = {r: _child(syn, f"b{r}") for r in resolutions}
    channels = {}
    for r, b in blocks.items():
        channels[r] = int(_tensor(_child(b, "conv1"), "weight").shape[0])
    channel_base, channel_max = _channel_base_max(channels)
    num_fp16_res = _attr(syn, "num_fp16_res", None)
    if num_fp16_res is None:  # ADA files do not store it; count fp16 blocks from the top
        fp16_blocks = sum(bool(_attr(b, "use_fp16", False)) for b in blocks.values())
        num_fp16_res = fp16_blocks
    first_layer = _child(blocks[resolutions[0]], "conv1")
    clamp = _attr(first_layer, "conv_clamp", None)
    return StyleGAN2SynthesisConfig(
        architecture=str(_attr(blocks[resolutions[-1]], "architecture", "skip")),
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=int(num_fp16_res),
        conv_clamp=None if clamp is None else float(clamp),
        resample_filter=_filter_taps(blocks[resolutions[0]]),
        use_noise=bool(_attr(first_layer, "use_noise", True)),
        activation=str(_attr(first_layer, "activation", "lrelu")),
        kernel_size=int(_tensor(first_layer, "weight").shape[-1]),
    )


def _sg3_synthesis_config(syn: PersistentRecord, init_kwargs: dict) -> StyleGAN3SynthesisConfig:
    names = [str(n) for n in syn.attrs.get("layer_names", [])]
    if not names:
        raise CheckpointError("official StyleGAN3 synthesis network lists no layers")
    layers = [_child(syn, n) for n in names]
    first = layers[0]
    up0 = int(_attr(first, "up_factor", 2))
    kwargs = {k: init_kwargs[k] for k in ("channel_base", "channel_max", "first_cutoff", "first_stopband",
                                          "last_stopband_rel") if k in init_kwargs}
    cfg = StyleGAN3SynthesisConfig(
        channel_base=int(kwargs.get("channel_base", 32768)),
        channel_max=int(kwargs.get("channel_max", 512)),
        num_layers=int(_attr(syn, "num_layers", len(names) - 1)),
        num_critical=int(_attr(syn, "num_critical", 2)),
        first_cutoff=float(kwargs.get("first_cutoff", _attr(_child(syn, "input"), "bandwidth", 2))),
        first_stopband=float(kwargs.get("first_stopband", 2 ** 2.1)),
        last_stopband_rel=float(kwargs.get("last_stopband_rel", 2 ** 0.3)),
        margin_size=int(_attr(syn, "margin_size", 10)),
        output_scale=float(_attr(syn, "output_scale", 0.25)),
        num_fp16_res=int(_attr(syn, "num_fp16_res", 4)),
        conv_kernel=int(_tensor(first, "weight").shape[-1]),
        filter_size=int(_attr(first, "up_taps", 12)) // max(up0, 1),
        lrelu_upsampling=int(round(float(_attr(first, "tmp_sampling_rate")) /
                                   max(float(_attr(first, "in_sampling_rate")), float(_attr(first, "out_sampling_rate"))))),
        use_radial_filters=any(bool(_attr(layer, "down_radial", False)) for layer in layers),
        conv_clamp=_scalar(first.attrs.get("conv_clamp")),
        magnitude_ema_beta=float(_attr(first, "magnitude_ema_beta", 0.999)),
    )
    if "channel_base" not in kwargs or "channel_max" not in kwargs:
        cfg = _fit_sg3_channels(cfg, syn, layers)
    return cfg


def _fit_sg3_channels(cfg: StyleGAN3SynthesisConfig, syn: PersistentRecord, layers) -> StyleGAN3SynthesisConfig:
    """Recover channel_base/channel_max from the stored layer widths when init kwargs lack them."""
    stored = [int(_attr(layer, "out_channels")) for layer in layers[:-1]]
    channel_max = max(stored)
    res = int(_attr(syn, "img_resolution"))
    for base in sorted({int(round(ch * 2 * cutoff)) for ch, cutoff in
                        zip(stored, [float(_attr(layer, "out_cutoff")) for layer in layers[:-1]])}):
        trial = StyleGAN3SynthesisConfig(**{**cfg.__dict__, "channel_base": base, "channel_max": channel_max})
        widths = layer_schedule(res, 3, trial)["channels"][:-1]
        if [int(w) for w in widths] == stored:
            return trial
    raise CheckpointError("could not recover the StyleGAN3 channel schedule from the stored layers")


def generator_config_from_record(rec: PersistentRecord) -> GeneratorConfig:
    if rec.class_name != "Generator":
        raise CheckpointError(f"expected an official Generator, found {rec.class_name}")
    syn = _child(rec, "synthesis")
    mapping = _child(rec, "mapping")
    common = dict(z_dim=int(_attr(rec, "z_dim")), c_dim=int(_attr(rec, "c_dim")), w_dim=int(_attr(rec, "w_dim")),
                  img_resolution=int(_attr(rec, "img_resolution")), img_channels=int(_attr(rec, "img_channels")),
                  mapping=_mapping_config(mapping))
    if "input" in syn.modules:
        return GeneratorConfig("stylegan3", synthesis=_sg3_synthesis_config(syn, _flat_kwargs(rec.init_kwargs)),
                               **common)
    return GeneratorConfig("stylegan2", synthesis=_sg2_synthesis_config(syn), **common)


def _flat_kwargs(kwargs: dict) -> dict:
    """SG3 passes synthesis kwargs flat, ADA nests them under synthesis_kwargs."""
    out = dict(kwargs or {})
    out.update(out.pop("synthesis_kwargs", None) or {})
    return out


def discriminator_config_from_record(rec: PersistentRecord) -> DiscriminatorConfig:
    if rec.class_name != "Discriminator":
        raise CheckpointError(f"expected an official Discriminator, found {rec.class_name}")
    res = int(_attr(rec, "img_resolution"))
    block_res = [int(r) for r in _attr(rec, "block_resolutions")]
    blocks = {r: _child(rec, f"b{r}") for r in block_res}
    epi = _child(rec, "b4")
    channels = {r: int(_tensor(_child(b, "conv0"), "weight").shape[0]) for r, b in blocks.items()}
    channels[4] = int(_tensor(_child(epi, "conv"), "weight").shape[0])
    channel_base, channel_max = _channel_base_max(channels)
    top = blocks[res]
    conv0 = _child(top, "conv0")
    mbstd = epi.modules.get("mbstd")
    c_dim = int(_attr(rec, "c_dim"))
    mapping = _mapping_config(_child(rec, "mapping")) if c_dim > 0 else MappingConfig(num_layers=8, w_avg_beta=None)
    clamp = _attr(conv0, "conv_clamp", None)
    fp16_blocks = sum(bool(_attr(b, "use_fp16", False)) for b in blocks.values())
    cmap_dim = int(_attr(epi, "cmap_dim", 0))
    return DiscriminatorConfig(
        c_dim=c_dim, img_resolution=res, img_channels=int(_attr(rec, "img_channels")),
        architecture=str(_attr(top, "architecture", "resnet")),
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=int(_attr(rec, "num_fp16_res", fp16_blocks) if "num_fp16_res" in rec.attrs else fp16_blocks),
        conv_clamp=None if clamp is None else float(clamp),
        cmap_dim=(cmap_dim if cmap_dim > 0 else None) if c_dim > 0 else None,
        activation=str(_attr(conv0, "activation", "lrelu")),
        resample_filter=_filter_taps(top),
        mbstd_group_size=None if mbstd is None else _attr(mbstd, "group_size", None),
        mbstd_num_channels=0 if mbstd is None else int(_attr(mbstd, "num_channels", 1)),
        mapping=mapping,
    )


def generator_from_record(rec: PersistentRecord, what: str = "G_ema") -> Generator:
    cfg = generator_config_from_record(rec)
    G = Generator(cfg)
    load_tensors(G, rec.named_tensors(), what)
    return G.eval().requires_grad_(False)


def discriminator_from_record(rec: PersistentRecord, what: str = "D") -> Discriminator:
    cfg = discriminator_config_from_record(rec)
    D = Discriminator(cfg)
    tensors = rec.named_tensors()
    load_tensors(D, tensors, what)
    return D.eval().requires_grad_(False)


def _augment_from_record(rec: PersistentRecord | None) -> dict | None:
    if rec is None:
        return None
    p = rec.buffers.get("p")
    settings = {k: _scalar(v) for k, v in rec.attrs.items() if isinstance(_scalar(v), (int, float, bool))}
    return {"p": float(p) if p is not None else 0.0, "settings": settings}


def _data_only(value):
    """Keep plain data from ``training_set_kwargs``; its class_name stays a string, never imported."""
    if isinstance(value, dict):
        return {str(k): _data_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_data_only(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return _scalar(value) if np.size(value) == 1 else np.asarray(value).tolist()
    return repr(value)


def load_official_pickle(path: str | Path, which: tuple[str, ...] = ("G_ema", "G", "D")) -> Checkpoint:
    """Read an official PyTorch network pickle (or hand TF pickles on to the TF converter)."""
    path = Path(path)
    data = read_pickle(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, TFNetworkRecord) for x in data):
        try:
            from .tf import checkpoint_from_tf
        except ImportError as exc:  # pragma: no cover - tf converter ships with the package
            raise CheckpointError(f"{path.name} is a TensorFlow pickle and TensorFlow support is missing") from exc
        return checkpoint_from_tf(data, path=path, which=which)
    if not isinstance(data, dict) or not any(k in data for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path.name} is a pickle but not a StyleGAN network pickle "
                              f"(expected a dict with G, D and G_ema)")
    out = Checkpoint(source_format="official-pytorch", path=str(path))
    for key in which:
        rec = data.get(key)
        if rec is None:
            continue
        if not isinstance(rec, PersistentRecord):
            raise CheckpointError(f"{path.name}: {key} is not a network object")
        if key == "D":
            out.D = discriminator_from_record(rec, f"{path.name}: D")
        else:
            setattr(out, key, generator_from_record(rec, f"{path.name}: {key}"))
    if out.G_ema is None and out.G is not None and "G_ema" in which:
        out.G_ema = out.G
    aug = data.get("augment_pipe")
    out.augment = _augment_from_record(aug if isinstance(aug, PersistentRecord) else None)
    tsk = data.get("training_set_kwargs")
    out.training_set_kwargs = _data_only(tsk) if isinstance(tsk, dict) else None
    if isinstance(data.get("progress"), dict):
        out.metadata["progress"] = _data_only(data["progress"])
    return out


"""NVIDIA's TensorFlow network pickles -> our networks, without TensorFlow.

Handles every published generation (format notes §4):

- StyleGAN1 (NVlabs/stylegan, ``karras2019stylegan-*.pkl``, TF network version 2/3, and StyleGAN2's
  config A which is the same network): ``G_style`` / ``D_basic`` with ``ToRGB_lod*`` /
  ``FromRGB_lod*`` names -> :mod:`stylegan.networks.stylegan1`.
- StyleGAN2 TF (NVlabs/stylegan2, version 4) configs E/F (``skip``/``resnet``) and the progressive
  configs B-D (``G_synthesis_stylegan_revised`` / ``D_stylegan``, which NVIDIA's own converter
  crashes on) -> our StyleGAN2 networks with the ``orig`` architecture.
- StyleGAN2-ADA TF (NVlabs/stylegan2-ada, version 5), including conditional networks
  (``LabelEmbed`` + projection discriminator), ``num_fp16_res`` and ``conv_clamp``.

The pickle is read by :mod:`.safe_pickle` (no code runs). Architecture comes from the variable
names and shapes; TensorFlow ``static_kwargs`` supply what shapes cannot tell (learning-rate
multipliers, clamping, filters) and are checked: an option we cannot honour is named in a
:class:`CheckpointError`, never silently dropped. Every variable must be used or be one we
know is irrelevant (``lod`` = 0, lower level-of-detail ToRGB/FromRGB layers of a fully grown
progressive network).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                        StyleGAN1Discriminator, StyleGAN1SynthesisConfig, StyleGAN2SynthesisConfig)
from ..networks.ops import ACTIVATIONS
from .safe_pickle import TFNetworkRecord, short_repr
from .architecture import NetworkBudget, as_float, as_int, build_network, channel_base_max
from .types import Checkpoint

SQRT2 = math.sqrt(2)

#: Keys that only steer training or graph construction; they do not change what a network computes.
IGNORED_KWARGS = frozenset({
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob",
    "structure", "conditioning", "fused_modconv", "fused_scale", "dtype", "is_training", "is_validation",
    "is_template_graph", "force_clean_graph", "return_dlatents", "randomize_noise", "dlatent_avg_beta",
    "w_avg_beta", "components", "mapping_func", "synthesis_func", "func_name", "num_fp16_res",
})


def checkpoint_from_tf(data: tuple, path: str | Path | None = None,
                       which: tuple[str, ...] = ("G_ema", "G", "D")) -> Checkpoint:
    """Convert the ``(G, D, Gs)`` tuple of :class:`TFNetworkRecord` read from a TF pickle."""
    name = Path(path).name if path is not None else "TensorFlow pickle"
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkRecord) for n in data)):
        raise CheckpointError(f"{name}: not a TensorFlow (G, D, Gs) network tuple")
    budget = NetworkBudget(name, Path(path).stat().st_size if path is not None else 0)
    tf_G, tf_D, tf_Gs = data
    for net in data:
        version = net.version
        if not isinstance(version, int) or isinstance(version, bool) or not 2 <= version <= 5:
            raise CheckpointError(f"{name}: TensorFlow network {_short(net.name)} has pickle version "
                                  f"{_short(version)}; versions 2-5 (StyleGAN1, StyleGAN2, StyleGAN2-ADA) are "
                                  f"supported")
    generation = _generation(tf_Gs, name)
    out = Checkpoint(source_format="official-tensorflow", path=str(path) if path is not None else None)
    out.metadata["tensorflow"] = {"generation": generation, "version": int(tf_Gs.version),
                                  **_truncation_defaults(tf_Gs.static_kwargs, generation, name)}
    for key, net in (("G_ema", tf_Gs), ("G", tf_G), ("D", tf_D)):
        if key not in which:
            continue
        what = f"{name}: {key}"
        if key == "D":
            build = _sg1_discriminator if generation == "stylegan1" else _sg2_discriminator
        else:
            build = _sg1_generator if generation == "stylegan1" else _sg2_generator
        try:
            setattr(out, key, build(net, what, budget))
        except CheckpointError as exc:                     # the converters' own messages do not name the file
            raise exc if str(exc).startswith(name) else CheckpointError(f"{what}: {exc}") from None
    return out


def _generation(tf_Gs: TFNetworkRecord, name: str) -> str:
    comps = tf_Gs.components
    if "synthesis" not in comps or "mapping" not in comps:
        raise CheckpointError(f"{name}: the TensorFlow generator has no mapping/synthesis components "
                              f"(found {_short(sorted(map(str, comps)))}); it is not a StyleGAN network")
    names = list(_flatten(comps["synthesis"], name))
    if any(n.endswith("/StyleMod/weight") for n in names):
        return "stylegan1"
    if any(n.endswith("/mod_weight") for n in names):
        return "stylegan2"
    raise CheckpointError(f"{name}: unrecognised TensorFlow synthesis network (no StyleMod or mod_weight "
                          f"variables); only NVIDIA's StyleGAN1/StyleGAN2/StyleGAN2-ADA networks convert")


def _truncation_defaults(kwargs: dict, generation: str, name: str) -> dict:
    """The truncation TF's ``Gs.run`` applied by default (StyleGAN1: psi 0.7, cutoff 8); ours is psi 1."""
    defaults = {"truncation_psi": 0.7, "truncation_cutoff": 8} if generation == "stylegan1" else {}
    out = {}
    for key in ("truncation_psi", "truncation_cutoff"):
        value = kwargs.get(key, defaults.get(key))
        if value is None and key in kwargs:
            out[key] = None
        elif value is not None:
            what = f"{name}: TensorFlow option {key}"
            out[key] = as_float(value, what, -100, 100) if key == "truncation_psi" else as_int(value, what, 0, 1024)
    return out


#: Most variables (and components) one TensorFlow network may hold.
MAX_VARIABLES = 100_000
_NUMERIC = (np.ndarray, np.generic, int, float, bool)


def _flatten(net: TFNetworkRecord, what: str) -> dict[str, np.ndarray]:
    """``{'component/.../name': array}`` of a network and its components; each component at most once."""
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    todo = [("", net)]
    while todo:
        prefix, rec = todo.pop()
        if id(rec) in seen:
            raise CheckpointError(f"{what}: a TensorFlow component appears twice; the file is corrupt")
        seen.add(id(rec))
        for item in rec.variables:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], (*_NUMERIC, torch.Tensor))):
                raise CheckpointError(f"{what}: TensorFlow network {_short(rec.name)} has a malformed variable "
                                      f"entry")
            name, value = item
            arr = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if arr.dtype.kind not in "fiub":
                raise CheckpointError(f"{what}: TensorFlow variable {_short(prefix + name)} is not numeric "
                                      f"({arr.dtype})")
            out[prefix + name] = arr
        for cname, comp in rec.components.items():
            if not isinstance(cname, str):
                raise CheckpointError(f"{what}: a TensorFlow component name is not a string")
            todo.append((prefix + cname + "/", comp))
        if len(out) + len(todo) > MAX_VARIABLES:
            raise CheckpointError(f"{what}: more than {MAX_VARIABLES} TensorFlow variables")
    return out


class _Vars:
    """The flat ``{path: array}`` of one TF network; records which variables were used."""

    def __init__(self, net: TFNetworkRecord, what: str):
        self.what = what
        self.vars = _flatten(net, what)
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.vars

    def take(self, name: str, ndim: int | None = None) -> np.ndarray:
        """The variable as float32; ``ndim``: it must have that many dimensions (0: one value)."""
        self.shape(name, ndim)
        self.used.add(name)
        a = np.asarray(self.vars[name], dtype=np.float32)
        return a.reshape(()) if ndim == 0 else a

    def shape(self, name: str, ndim: int | None = None) -> tuple:
        """The variable's shape; ``ndim``: it must have that many non-zero dimensions (0: one value)."""
        if name not in self.vars:
            raise CheckpointError(f"{self.what}: TensorFlow variable {name!r} is missing")
        shape = tuple(int(d) for d in self.vars[name].shape)
        if ndim == 0 and math.prod(shape) != 1:
            raise CheckpointError(f"{self.what}: TensorFlow variable {name!r} has shape {shape}, expected one value")
        if ndim and (len(shape) != ndim or not all(shape)):
            raise CheckpointError(f"{self.what}: TensorFlow variable {name!r} has shape {shape}, expected "
                                  f"{ndim} non-zero dimensions")
        return shape

    def matching(self, pattern: str) -> list[re.Match]:
        rx = re.compile(pattern)
        return [m for m in (rx.fullmatch(n) for n in self.vars) if m]

    def ignore_lod(self) -> None:
        """Fully grown progressive networks keep ``lod`` variables; anything but 0 is a mid-growth snapshot."""
        for n in list(self.vars):
            if n == "lod" or n.endswith("/lod"):
                value = float(np.asarray(self.vars[n], dtype=np.float64).reshape(-1)[0]) if np.size(self.vars[n]) else 0.0
                if value != 0:
                    raise CheckpointError(f"{self.what}: snapshot taken during progressive growing (lod={value:g}); "
                                          f"only fully grown networks (lod=0) can be converted")
                self.used.add(n)

    def ignore(self, pattern: str) -> None:
        rx = re.compile(pattern)
        self.used.update(n for n in self.vars if rx.fullmatch(n))

    def finish(self) -> None:
        left = sorted(set(self.vars) - self.used)
        if left:
            raise CheckpointError(f"{self.what}: TensorFlow variables we do not know how to convert: "
                                  f"{left[:6]}{' …' if len(left) > 6 else ''}")


class _Kwargs:
    """TF ``static_kwargs`` with use tracking (a key nobody read is one we cannot honour) and typed reads."""

    def __init__(self, kwargs: dict, what: str):
        self.kw = dict(kwargs or {})
        self.what = what
        if not all(isinstance(k, str) for k in self.kw):
            raise CheckpointError(f"{what}: TensorFlow static_kwargs have a key that is not a string")
        self.used: set[str] = {k for k in self.kw if k in IGNORED_KWARGS}

    def get(self, key: str, default=None):
        self.used.add(key)
        return _plain(self.kw.get(key, default))

    def get_int(self, key: str, default, lo: int = 0, hi: int = 1 << 20) -> int:
        return as_int(self.get(key, default), f"{self.what}: TensorFlow option {key}", lo, hi)

    def get_float(self, key: str, default) -> float:
        return as_float(self.get(key, default), f"{self.what}: TensorFlow option {key}")

    def get_optional_float(self, key: str) -> float | None:
        return None if self.get(key) is None else self.get_float(key, None)

    def accept(self, *keys: str) -> None:
        """Keys whose values the variable shapes already determine (checked there)."""
        self.used.update(keys)

    def expect(self, key: str, allowed: tuple, default) -> object:
        v = self.get(key, default)
        if not isinstance(v, (str, int, float, bool, type(None))) or v not in allowed:
            raise CheckpointError(f"{self.what}: TensorFlow option {key}={_short(v)} cannot be honoured "
                                  f"(supported: {', '.join(repr(a) for a in allowed)})")
        return v

    def finish(self) -> None:
        unknown = sorted(set(self.kw) - self.used)
        if unknown:
            shown = ", ".join(f"{k[:40]}={_short(self.kw[k])}" for k in unknown[:4])
            raise CheckpointError(f"{self.what}: unknown TensorFlow option(s) {shown}; this converter cannot "
                                  f"honour them (it may be a fork's network with different math)")


def _plain(v):
    if isinstance(v, np.ndarray) and v.size == 1 and v.ndim <= 1:
        return v.reshape(()).item()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _short(v) -> str:
    return short_repr(_plain(v), 40)


def _conv(a: np.ndarray) -> torch.Tensor:
    """TF conv weight ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``."""
    if a.ndim != 4:
        raise CheckpointError(f"a TensorFlow convolution weight has shape {a.shape}, expected [kh, kw, in, out]")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1)))


def _conv_flip(a: np.ndarray) -> torch.Tensor:
    """Up-sampling convs: TF runs a transposed conv of the flipped kernel; ours a true convolution."""
    return _conv(a[::-1, ::-1] if a.ndim == 4 else a)


def _dense(a: np.ndarray) -> torch.Tensor:
    if a.ndim != 2:
        raise CheckpointError(f"a TensorFlow dense weight has shape {a.shape}, expected [in, out]")
    return torch.from_numpy(np.ascontiguousarray(a.T))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))


def _filter(kw: _Kwargs, key: str, default: tuple) -> tuple[float, ...]:
    f = kw.get(key, None)
    if f is None:
        return default if key not in kw.kw else (1.0,)
    try:
        f = np.asarray(f, dtype=np.float64) if isinstance(f, (list, tuple, np.ndarray)) else None
    except (TypeError, ValueError):
        f = None
    if f is None or f.ndim != 1 or not 1 <= f.size <= 32 or not np.isfinite(f).all():
        raise CheckpointError(f"{kw.what}: TensorFlow option {key}={_short(kw.kw[key])} cannot be honoured "
                              f"(expected a list of 1 to 32 filter taps)")
    return tuple(float(x) for x in f)


def _resolutions(v: _Vars, pattern: str) -> list[int]:
    """Block resolutions named by the variables (``pattern``'s group 1 is up to 5 digits)."""
    return sorted({int(m.group(1)) for m in v.matching(pattern)})


def _doubling(resolutions: list[int], first: int) -> bool:
    """``resolutions`` is ``[first, 2*first, 4*first, ...]`` up to at most 16384."""
    return bool(resolutions) and resolutions == [first << i for i in range(len(resolutions))] \
        and resolutions[-1] <= 1 << 14


def _mapping_layers(v: _Vars, prefix: str) -> int:
    n = 0
    while v.has(f"{prefix}{n}/weight"):
        n += 1
    return n



def _sg2_generator(net: TFNetworkRecord, what: str, budget: NetworkBudget) -> Generator:
    v = _Vars(net, what)
    kw = _Kwargs(net.static_kwargs, what)
    v.ignore_lod()
    if v.has("mapping/LabelConcat/weight"):
        raise CheckpointError(f"{what}: conditional StyleGAN2-TF generator (LabelConcat: labels concatenated to z "
                              f"before normalisation) cannot be converted; only StyleGAN2-ADA's LabelEmbed "
                              f"is supported")
    n_map = _mapping_layers(v, "mapping/Dense")
    if n_map == 0:
        raise CheckpointError(f"{what}: the mapping network has no Dense layers")
    c_dim = v.shape("mapping/LabelEmbed/weight", 2)[0] if v.has("mapping/LabelEmbed/weight") else 0
    embed = v.shape("mapping/LabelEmbed/weight", 2)[1] if c_dim else 0
    fan_in0, hidden = v.shape("mapping/Dense0/weight", 2)
    z_dim = fan_in0 - embed
    w_dim = v.shape(f"mapping/Dense{n_map - 1}/weight", 2)[1]
    if kw.get_int("latent_size", z_dim) != z_dim or kw.get_int("dlatent_size", w_dim) != w_dim:
        raise CheckpointError(f"{what}: latent sizes in the kwargs do not match the mapping weights")
    label_size = kw.get_int("label_size", c_dim) if kw.get("label_size") is not None else c_dim
    if label_size != c_dim:
        raise CheckpointError(f"{what}: label_size={label_size} but the mapping network embeds {c_dim} labels")
    kw.accept("mapping_layers", "mapping_fmaps", "label_fmaps", "fmap_base", "fmap_max", "fmap_min")
    kw.expect("normalize_latents", (True, 1), True)
    kw.expect("use_wscale", (True, 1), True)
    kw.expect("fmap_decay", (1, 1.0), 1.0)
    activation = kw.expect("nonlinearity", tuple(ACTIVATIONS), "lrelu")
    map_activation = kw.expect("mapping_nonlinearity", tuple(ACTIVATIONS), "lrelu")
    lr = kw.get_float("mapping_lrmul", 0.01)
    beta = _beta(kw, ("dlatent_avg_beta", "w_avg_beta"))
    mapping = MappingConfig(num_layers=n_map, embed_features=(embed if c_dim and embed != w_dim else None),
                            layer_features=(hidden if n_map > 1 and hidden != w_dim else None),
                            activation=map_activation, lr_multiplier=lr,
                            w_avg_beta=beta)

    progressive = bool(v.matching(r"synthesis/ToRGB_lod\d+/weight"))
    resolutions = _resolutions(v, r"synthesis/(\d{1,5})x\d+/Conv(?:0_up|1)?/weight")
    if not resolutions or resolutions[0] != 4:
        raise CheckpointError(f"{what}: the synthesis network has no 4x4 block")
    R = resolutions[-1]
    if kw.get_int("resolution", R) != R or not _doubling(resolutions, 4):
        raise CheckpointError(f"{what}: synthesis blocks {resolutions} do not match resolution "
                              f"{_short(kw.kw.get('resolution', R))}")
    if progressive:
        architecture = "orig"
        torgb = {R: "synthesis/ToRGB_lod0"}
        v.ignore(r"synthesis/ToRGB_lod[1-9]\d*/.*")
        v.ignore(r"synthesis/(Upsample|Grow)_lod\d+/.*")
    elif v.matching(r"synthesis/\d+x\d+/Skip/weight"):
        architecture = "resnet"
        torgb = {R: f"synthesis/{R}x{R}/ToRGB"}
    elif v.has("synthesis/4x4/ToRGB/weight"):
        architecture = "skip"
        torgb = {r: f"synthesis/{r}x{r}/ToRGB" for r in resolutions}
    else:
        architecture = "orig"
        torgb = {R: f"synthesis/{R}x{R}/ToRGB"}
    declared = kw.get("architecture", architecture)
    if not isinstance(declared, str) or declared != architecture:
        raise CheckpointError(f"{what}: architecture={_short(declared)} but the variables describe {architecture!r}")
    img_channels = v.shape(f"{torgb[R]}/weight", 4)[-1]
    if kw.get_int("num_channels", img_channels) != img_channels:
        raise CheckpointError(f"{what}: num_channels does not match the ToRGB weights")
    channels = {4: v.shape("synthesis/4x4/Conv/weight", 4)[-1]}
    channels.update({r: v.shape(f"synthesis/{r}x{r}/Conv1/weight", 4)[-1] for r in resolutions[1:]})
    channel_base, channel_max = channel_base_max(channels, what)
    use_noise = v.has("synthesis/4x4/Conv/noise_strength")
    if not kw.expect("use_noise", (True, False, 0, 1), True) and use_noise:
        raise CheckpointError(f"{what}: use_noise=False but the network has noise strengths")
    synthesis = StyleGAN2SynthesisConfig(
        architecture=architecture, channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=_fp16_res(kw), conv_clamp=kw.get_optional_float("conv_clamp"),
        resample_filter=_filter(kw, "resample_kernel", (1.0, 3.0, 3.0, 1.0)), use_noise=use_noise,
        activation=activation, kernel_size=3)
    kw.finish()
    cfg = GeneratorConfig("stylegan2", z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=R,
                          img_channels=img_channels, mapping=mapping, synthesis=synthesis)

    t: dict[str, torch.Tensor] = {"mapping.w_avg": _t(v.take("dlatent_avg"))}
    if c_dim:
        t["mapping.embed.weight"] = _dense(v.take("mapping/LabelEmbed/weight"))
        t["mapping.embed.bias"] = _t(v.take("mapping/LabelEmbed/bias"))
    for i in range(n_map):
        t[f"mapping.fc{i}.weight"] = _dense(v.take(f"mapping/Dense{i}/weight"))
        t[f"mapping.fc{i}.bias"] = _t(v.take(f"mapping/Dense{i}/bias"))

    def modconv(pt: str, tf: str, flip: bool = False, noise_index: int | None = None, torgb_layer: bool = False):
        w = v.take(f"{tf}/weight")
        t[f"{pt}.weight"] = _conv_flip(w) if flip else _conv(w)
        t[f"{pt}.bias"] = _t(v.take(f"{tf}/bias"))
        t[f"{pt}.affine.weight"] = _dense(v.take(f"{tf}/mod_weight"))
        t[f"{pt}.affine.bias"] = _t(v.take(f"{tf}/mod_bias") + 1)
        if use_noise and not torgb_layer:
            t[f"{pt}.noise_strength"] = _t(v.take(f"{tf}/noise_strength", 0))
            t[f"{pt}.noise_const"] = _t(v.take(f"synthesis/noise{noise_index}", 4)[0, 0])

    t["synthesis.b4.const"] = _t(v.take("synthesis/4x4/Const/const", 4)[0])
    modconv("synthesis.b4.conv1", "synthesis/4x4/Conv", noise_index=0)
    for r in resolutions[1:]:
        k = int(math.log2(r))
        modconv(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", flip=True, noise_index=2 * k - 5)
        modconv(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", noise_index=2 * k - 4)
        if architecture == "resnet":
            t[f"synthesis.b{r}.skip.weight"] = _conv_flip(v.take(f"synthesis/{r}x{r}/Skip/weight"))
    for r, tf_name in torgb.items():
        modconv(f"synthesis.b{r}.torgb", tf_name, torgb_layer=True)
    v.finish()
    return build_network(Generator, cfg, t, what, budget, defaults=("resample_filter",))


def _sg2_discriminator(net: TFNetworkRecord, what: str, budget: NetworkBudget) -> Discriminator:
    v = _Vars(net, what)
    kw = _Kwargs(net.static_kwargs, what)
    v.ignore_lod()
    resolutions = _resolutions(v, r"(\d{1,5})x\d+/Conv0/weight")
    if not resolutions:
        raise CheckpointError(f"{what}: the discriminator has no convolution blocks")
    R = resolutions[-1]
    if not _doubling(resolutions, 8) or kw.get_int("resolution", R) != R:
        raise CheckpointError(f"{what}: discriminator blocks {resolutions} do not match resolution "
                              f"{_short(kw.kw.get('resolution', R))}")
    progressive = bool(v.matching(r"FromRGB_lod\d+/weight"))
    if progressive:
        architecture, fromrgb = "orig", {R: "FromRGB_lod0"}
        v.ignore(r"FromRGB_lod[1-9]\d*/.*")
        v.ignore(r"(Downsample|Grow)_lod\d+/.*")
    elif v.matching(r"\d+x\d+/Skip/weight"):
        architecture, fromrgb = "resnet", {R: f"{R}x{R}/FromRGB"}
    elif v.has("4x4/FromRGB/weight"):
        architecture, fromrgb = "skip", {r: f"{r}x{r}/FromRGB" for r in [4] + resolutions}
    else:
        architecture, fromrgb = "orig", {R: f"{R}x{R}/FromRGB"}
    declared = kw.get("architecture", architecture)
    if not isinstance(declared, str) or declared != architecture:
        raise CheckpointError(f"{what}: architecture={_short(declared)} but the variables describe {architecture!r}")
    img_channels = v.shape(f"{fromrgb[R]}/weight", 4)[2]
    if kw.get_int("num_channels", img_channels) != img_channels:
        raise CheckpointError(f"{what}: num_channels does not match the FromRGB weights")
    channels = {r: v.shape(f"{r}x{r}/Conv0/weight", 4)[-1] for r in resolutions}
    channels[4] = v.shape("4x4/Conv/weight", 4)[-1]
    channel_base, channel_max = channel_base_max(channels, what)
    mbstd_channels, group = _mbstd(v, kw, channels[4], what)
    c_dim = kw.get_int("label_size", 0) if kw.get("label_size") is not None else 0
    has_embed = v.has("LabelEmbed/weight")
    if c_dim and not has_embed:
        raise CheckpointError(f"{what}: conditional StyleGAN2-TF discriminator (Output layer with one score per "
                              f"class) cannot be converted; only StyleGAN2-ADA's projection discriminator is supported")
    out_dim = v.shape("Output/weight", 2)[1]
    n_map = _mapping_layers(v, "Mapping")
    mapping = MappingConfig(num_layers=8, w_avg_beta=None)
    cmap_dim = None
    if c_dim:
        embed = v.shape("LabelEmbed/weight", 2)[1]
        hidden = v.shape("Mapping0/weight", 2)[1] if n_map > 0 else embed
        cmap_dim = out_dim
        mapping = MappingConfig(num_layers=n_map, embed_features=None if embed == cmap_dim else embed,
                                layer_features=None if hidden == cmap_dim else hidden,
                                activation=kw.expect("mapping_nonlinearity", tuple(ACTIVATIONS),
                                                     _plain(kw.kw.get("nonlinearity", "lrelu"))),
                                lr_multiplier=kw.get_float("mapping_lrmul", 0.1), w_avg_beta=None)
    kw.accept("mapping_layers", "mapping_fmaps", "mapping_lrmul", "mapping_nonlinearity", "mbstd_num_features",
              "fmap_base", "fmap_max", "fmap_min")
    kw.expect("use_wscale", (True, 1), True)
    kw.expect("fmap_decay", (1, 1.0), 1.0)
    cfg = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=R, img_channels=img_channels, architecture=architecture,
        channel_base=channel_base, channel_max=channel_max, num_fp16_res=_fp16_res(kw),
        conv_clamp=kw.get_optional_float("conv_clamp"), cmap_dim=cmap_dim,
        activation=kw.expect("nonlinearity", tuple(ACTIVATIONS), "lrelu"),
        resample_filter=_filter(kw, "resample_kernel", (1.0, 3.0, 3.0, 1.0)),
        mbstd_group_size=group if mbstd_channels else None, mbstd_num_channels=mbstd_channels,
        mapping=mapping, generation="stylegan2")
    kw.finish()

    t: dict[str, torch.Tensor] = {}

    def conv(pt: str, tf: str, bias: bool = True):
        t[f"{pt}.weight"] = _conv(v.take(f"{tf}/weight"))
        if bias:
            t[f"{pt}.bias"] = _t(v.take(f"{tf}/bias"))

    for r, tf_name in fromrgb.items():
        conv(f"b{r}.fromrgb", tf_name)
    for r in resolutions:
        conv(f"b{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"b{r}.conv1", f"{r}x{r}/Conv1_down")
        if architecture == "resnet":
            conv(f"b{r}.skip", f"{r}x{r}/Skip", bias=False)
    conv("b4.conv", "4x4/Conv")
    t["b4.fc.weight"] = _dense(v.take("4x4/Dense0/weight"))
    t["b4.fc.bias"] = _t(v.take("4x4/Dense0/bias"))
    t["b4.out.weight"] = _dense(v.take("Output/weight"))
    t["b4.out.bias"] = _t(v.take("Output/bias"))
    if c_dim:
        t["mapping.embed.weight"] = _dense(v.take("LabelEmbed/weight"))
        t["mapping.embed.bias"] = _t(v.take("LabelEmbed/bias"))
        for i in range(n_map):
            t[f"mapping.fc{i}.weight"] = _dense(v.take(f"Mapping{i}/weight"))
            t[f"mapping.fc{i}.bias"] = _t(v.take(f"Mapping{i}/bias"))
    v.finish()
    return build_network(Discriminator, cfg, t, what, budget, defaults=("resample_filter",))


def _mbstd(v: _Vars, kw: _Kwargs, channels: int, what: str) -> tuple[int, int | None]:
    """(minibatch-stddev channels, group size): the 4x4 conv's extra inputs and ``mbstd_group_size``."""
    mbstd_channels = v.shape("4x4/Conv/weight", 4)[2] - channels
    group = None if kw.get("mbstd_group_size", 4) is None else kw.get_int("mbstd_group_size", 4)
    if mbstd_channels < 0 or (mbstd_channels and (group is None or group <= 1)):
        raise CheckpointError(f"{what}: mbstd_group_size={group!r} disagrees with the minibatch-stddev channels")
    return mbstd_channels, group


def _beta(kw: _Kwargs, keys: tuple[str, ...]) -> float | None:
    """The w_avg decay (``dlatent_avg_beta``; None: no average), read but not required to be honoured."""
    for key in keys:
        if key in kw.kw:
            value = _plain(kw.kw[key])
            return None if value is None else as_float(value, f"{kw.what}: TensorFlow option {key}", 0, 1)
    return 0.995


def _fp16_res(kw: _Kwargs) -> int:
    value = _plain(kw.kw.get("num_fp16_res", 0))
    return 0 if value is None else as_int(value, f"{kw.what}: TensorFlow option num_fp16_res", 0, 32)



def _sg1_common_kwargs(kw: _Kwargs) -> None:
    kw.expect("use_wscale", (True, 1), True)
    kw.expect("fmap_decay", (1, 1.0), 1.0)
    kw.accept("fmap_base", "fmap_max", "fmap_min")
    kw.expect("nonlinearity", ("lrelu",), "lrelu")


def _sg1_generator(net: TFNetworkRecord, what: str, budget: NetworkBudget) -> Generator:
    v = _Vars(net, what)
    kw = _Kwargs(net.static_kwargs, what)
    v.ignore_lod()
    if v.has("mapping/LabelConcat/weight"):
        raise CheckpointError(f"{what}: conditional StyleGAN1 generator (LabelConcat) cannot be converted: labels "
                              f"are normalised together with z, which our mapping network does not do")
    _sg1_common_kwargs(kw)
    kw.expect("mapping_nonlinearity", ("lrelu", "relu"), "lrelu")
    kw.expect("normalize_latents", (True, 1), True)
    kw.expect("use_styles", (True, 1), True)
    kw.expect("const_input_layer", (True, 1), True)
    kw.expect("use_pixel_norm", (False, 0), False)
    kw.expect("use_instance_norm", (True, 1), True)
    kw.expect("label_size", (0, None), 0)
    kw.accept("latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps", "dlatent_broadcast")
    n_map = _mapping_layers(v, "mapping/Dense")
    if n_map == 0:
        raise CheckpointError(f"{what}: the mapping network has no Dense layers")
    z_dim, hidden = v.shape("mapping/Dense0/weight", 2)
    w_dim = v.shape(f"mapping/Dense{n_map - 1}/weight", 2)[1]
    beta = _beta(kw, ("dlatent_avg_beta",))
    mapping = MappingConfig(num_layers=n_map, layer_features=(hidden if n_map > 1 and hidden != w_dim else None),
                            activation=kw.expect("mapping_nonlinearity", ("lrelu", "relu"), "lrelu"),
                            lr_multiplier=kw.get_float("mapping_lrmul", 0.01), w_avg_beta=beta)
    resolutions = _resolutions(v, r"synthesis/(\d{1,5})x\d+/(?:Const/const|Conv0_up/weight)")
    R = resolutions[-1] if resolutions else 0
    if not _doubling(resolutions, 4):
        raise CheckpointError(f"{what}: StyleGAN1 synthesis blocks {resolutions} are incomplete")
    if kw.get_int("resolution", R) != R:
        raise CheckpointError(f"{what}: resolution={_short(kw.kw['resolution'])} but the blocks go up to {R}")
    img_channels = v.shape("synthesis/ToRGB_lod0/weight", 4)[-1]
    if kw.get_int("num_channels", img_channels) != img_channels:
        raise CheckpointError(f"{what}: num_channels does not match the ToRGB weights")
    v.ignore(r"synthesis/ToRGB_lod[1-9]\d*/.*")
    channels = {4: v.shape("synthesis/4x4/Conv/weight", 4)[-1]}
    channels.update({r: v.shape(f"synthesis/{r}x{r}/Conv1/weight", 4)[-1] for r in resolutions[1:]})
    channel_base, channel_max = channel_base_max(channels, what)
    use_noise = v.has("synthesis/4x4/Const/Noise/weight")
    if not kw.expect("use_noise", (True, False), True) and use_noise:
        raise CheckpointError(f"{what}: use_noise=False but the network has noise weights")
    fused_scale = kw.expect("fused_scale", (True, False, "auto"), "auto")
    synthesis = StyleGAN1SynthesisConfig(channel_base=channel_base, channel_max=channel_max, use_noise=use_noise,
                                         blur_filter=_filter(kw, "blur_filter", (1.0, 2.0, 1.0)),
                                         fused_threshold={True: 8, False: 2 * R}.get(fused_scale, 128))
    kw.finish()
    cfg = GeneratorConfig("stylegan1", z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=R,
                          img_channels=img_channels, mapping=mapping, synthesis=synthesis)

    t: dict[str, torch.Tensor] = {"mapping.w_avg": _t(v.take("dlatent_avg"))}
    for i in range(n_map):
        t[f"mapping.fc{i}.weight"] = _dense(v.take(f"mapping/Dense{i}/weight"))
        # TF puts the sqrt(2) activation gain in the weight; ours multiplies after the leaky ReLU,
        # which is positively homogeneous: lrelu(a*x + b) = a * lrelu(x + b/a).
        t[f"mapping.fc{i}.bias"] = _t(v.take(f"mapping/Dense{i}/bias") / SQRT2)

    def epilogue(pt: str, tf: str, layer_idx: int, res: int):
        C = v.shape(f"{tf}/bias", 1)[0]
        t[f"{pt}.bias"] = _t(v.take(f"{tf}/bias"))
        style_b = v.take(f"{tf}/StyleMod/bias", 1).copy()
        style_b[:C] += 1
        t[f"{pt}.affine.weight"] = _dense(v.take(f"{tf}/StyleMod/weight"))
        t[f"{pt}.affine.bias"] = _t(style_b)
        if use_noise:
            t[f"{pt}.noise_strength"] = _t(v.take(f"{tf}/Noise/weight", 1))
            noise = v.take(f"synthesis/noise{layer_idx}")
            if noise.shape != (1, 1, res, res):
                raise CheckpointError(f"{what}: synthesis/noise{layer_idx} has shape {noise.shape}, "
                                      f"expected (1, 1, {res}, {res})")
            t[f"{pt}.noise_const"] = _t(noise[0, 0])

    t["synthesis.b4.const"] = _t(v.take("synthesis/4x4/Const/const", 4)[0])
    epilogue("synthesis.b4.conv0", "synthesis/4x4/Const", 0, 4)
    t["synthesis.b4.conv1.weight"] = _conv(v.take("synthesis/4x4/Conv/weight"))
    epilogue("synthesis.b4.conv1", "synthesis/4x4/Conv", 1, 4)
    for r in resolutions[1:]:
        k = int(math.log2(r))
        # Conv0_up is nearest-neighbour x2 then a 3x3 correlation (ours, and TF's unfused path). TF's
        # fused path (output resolution >= 128 by default) runs a transposed convolution with the
        # 2x2-box-summed kernel, which equals nearest x2 followed by a *true* convolution: those
        # kernels are flipped once here so that every layer runs as a correlation.
        fused = r >= synthesis.fused_threshold
        w_up = v.take(f"synthesis/{r}x{r}/Conv0_up/weight")
        t[f"synthesis.b{r}.conv0.weight"] = _conv_flip(w_up) if fused else _conv(w_up)
        epilogue(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * k - 4, r)
        t[f"synthesis.b{r}.conv1.weight"] = _conv(v.take(f"synthesis/{r}x{r}/Conv1/weight"))
        epilogue(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * k - 3, r)
    t[f"synthesis.b{R}.torgb.weight"] = _conv(v.take("synthesis/ToRGB_lod0/weight"))
    t[f"synthesis.b{R}.torgb.bias"] = _t(v.take("synthesis/ToRGB_lod0/bias"))
    v.finish()
    return build_network(Generator, cfg, t, what, budget)


def _sg1_discriminator(net: TFNetworkRecord, what: str, budget: NetworkBudget) -> StyleGAN1Discriminator:
    v = _Vars(net, what)
    kw = _Kwargs(net.static_kwargs, what)
    v.ignore_lod()
    _sg1_common_kwargs(kw)
    resolutions = _resolutions(v, r"(\d{1,5})x\d+/Conv0/weight")
    R = resolutions[-1] if resolutions else 0
    if not _doubling(resolutions, 8):
        raise CheckpointError(f"{what}: StyleGAN1 discriminator blocks {resolutions} are incomplete")
    if kw.get_int("resolution", R) != R:
        raise CheckpointError(f"{what}: resolution={_short(kw.kw['resolution'])} but the blocks go up to {R}")
    img_channels = v.shape("FromRGB_lod0/weight", 4)[2]
    if kw.get_int("num_channels", img_channels) != img_channels:
        raise CheckpointError(f"{what}: num_channels does not match the FromRGB weights")
    v.ignore(r"FromRGB_lod[1-9]\d*/.*")
    channels = {r: v.shape(f"{r}x{r}/Conv0/weight", 4)[-1] for r in resolutions}
    channels[4] = v.shape("4x4/Conv/weight", 4)[-1]
    channels[2] = v.shape("4x4/Dense0/weight", 2)[-1]
    channel_base, channel_max = channel_base_max(channels, what)
    mbstd_channels, group = _mbstd(v, kw, channels[4], what)
    kw.accept("mbstd_num_features")
    c_dim = kw.get_int("label_size", 0) if kw.get("label_size") is not None else 0
    if v.shape("4x4/Dense1/weight", 2)[1] != max(c_dim, 1):
        raise CheckpointError(f"{what}: label_size={c_dim} does not match the output layer")
    cfg = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=R, img_channels=img_channels, architecture="orig", channel_base=channel_base,
        channel_max=channel_max, num_fp16_res=0, conv_clamp=None, activation="lrelu",
        resample_filter=_filter(kw, "blur_filter", (1.0, 2.0, 1.0)),
        mbstd_group_size=group if mbstd_channels else None, mbstd_num_channels=mbstd_channels,
        generation="stylegan1")
    kw.finish()
    t: dict[str, torch.Tensor] = {}

    def conv(pt: str, tf: str):
        t[f"{pt}.weight"] = _conv(v.take(f"{tf}/weight"))
        t[f"{pt}.bias"] = _t(v.take(f"{tf}/bias"))

    def dense(pt: str, tf: str):
        t[f"{pt}.weight"] = _dense(v.take(f"{tf}/weight"))
        t[f"{pt}.bias"] = _t(v.take(f"{tf}/bias"))

    conv(f"b{R}.fromrgb", "FromRGB_lod0")
    for r in resolutions:
        conv(f"b{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"b{r}.conv1", f"{r}x{r}/Conv1_down")
    conv("b4.conv", "4x4/Conv")
    dense("b4.fc", "4x4/Dense0")
    dense("b4.out", "4x4/Dense1")
    v.finish()
    return build_network(StyleGAN1Discriminator, cfg, t, what, budget)

"""Write network pickles laid out like NVIDIA's training loop writes them, without NVIDIA's code.

Format facts come from ``shared/docs/official-format.md`` §1–§3 (stream layout), §6–§7 (per-object
attributes). The stream is produced by the pure-Python pickler with two hooks: ``reducer_override``
turns our descriptions (:class:`Record`, tensors, storages) into the reduce tuples NVIDIA's files
contain, and ``save_global`` writes the official global names (``torch_utils.persistence``,
``dnnlib.util.EasyDict``, ``numpy.core.multiarray``) without importing or faking those modules.

Also here: legacy TensorFlow pickles (:func:`write_tf_pickle`), records of a whole official network
built from a flat state dict (:func:`official_records_from_flat`), and hostile or broken files
(:func:`hostile_pickles`). Test tooling only.
"""

from __future__ import annotations

import collections
import copyreg
import io
import json
import pickle
import random
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
HOSTILE_MARKER = "PWNED"

STORAGE_NAMES = {
    torch.float32: "FloatStorage", torch.float64: "DoubleStorage", torch.float16: "HalfStorage",
    torch.bfloat16: "BFloat16Storage", torch.int64: "LongStorage", torch.int32: "IntStorage",
    torch.int16: "ShortStorage", torch.int8: "CharStorage", torch.uint8: "ByteStorage",
    torch.bool: "BoolStorage", torch.complex64: "ComplexFloatStorage", torch.complex128: "ComplexDoubleStorage",
}

# Stand-ins for the `module_src` text of each official file. They carry the text markers of format
# notes §2.2 that tell the variants apart; a safe reader must never run them.
MODULE_SRC = {
    "stylegan2-ada": "# stand-in for stylegan2-ada-pytorch training/networks.py\n"
                     "# (ADA mapping skips the w_avg update via skip_w_avg_update)\n",
    "stylegan3-sg2": "# stand-in for stylegan3 training/networks_stylegan2.py\n"
                     "# (update_emas argument, fused_modconv_default attribute)\n",
    "stylegan3": "# stand-in for stylegan3 training/networks_stylegan3.py\n"
                 "# (class SynthesisInput, filtered_lrelu, update_emas)\n",
    "augment": "# stand-in for training/augment.py\n",
}

BUFFER_NAMES = frozenset({"w_avg", "noise_const", "resample_filter", "magnitude_ema", "up_filter",
                          "down_filter", "transform", "freqs", "phases", "p", "Hz_geom", "Hz_fbank"})


class Global:
    """A global name to write into a pickle (``GLOBAL module name``); never callable for real."""

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.module}.{self.name} is only a name to write into a pickle")

    def __repr__(self) -> str:
        return f"Global({self.module!r}, {self.name!r})"


RECONSTRUCT = Global("torch_utils.persistence", "_reconstruct_persistent_obj")
REBUILD_TENSOR_V2 = Global("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = Global("torch._utils", "_rebuild_parameter")
LOAD_FROM_BYTES = Global("torch.storage", "_load_from_bytes")


@dataclass
class Call:
    """Writes ``GLOBAL func; args; REDUCE`` (optionally ``state; BUILD``): a call the reader must refuse or run."""

    func: Global
    args: tuple = ()
    state: Any = None


@dataclass(eq=False)
class Record:
    """Description of one persistent network object: what its pickled ``__dict__`` holds.

    ``parameters``/``buffers`` values are tensors or numpy arrays (``None`` = a registered ``None``);
    ``attrs`` are the class's plain attributes in constructor order; ``module_src`` is the text stored
    in the file (use :data:`MODULE_SRC`).
    """

    class_name: str
    attrs: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    init_kwargs: dict = field(default_factory=dict)
    module_src: str = ""
    non_persistent_buffers: set = field(default_factory=set)
    init_args: tuple = ()
    training: bool = False

    def walk(self, prefix: str = ""):
        yield prefix, self
        for key, child in self.modules.items():
            if child is not None:
                yield from child.walk(f"{prefix}.{key}" if prefix else key)

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """What ``nn.Module.named_parameters()`` + ``named_buffers()`` of the real object would list."""
        out = {}
        for kind in ("parameters", "buffers"):
            for prefix, rec in self.walk():
                for key, value in getattr(rec, kind).items():
                    if value is not None:
                        out[f"{prefix}.{key}" if prefix else key] = _as_tensor(value)
        return out


class EasyDict(dict):
    """Written as ``dnnlib.util.EasyDict`` (NEWOBJ + SETITEMS, as the official class pickles)."""


class TFNetwork:
    """Written as a legacy ``dnnlib.tflib.network.Network``: NEWOBJ then BUILD of its state dict (§4.1)."""

    def __init__(self, name: str, static_kwargs: dict | None = None, components: dict | None = None,
                 variables: list | None = None, version: int = 4, build_module_src: str = "",
                 build_func_name: str = "", **extra: Any):
        self.name = name
        self.static_kwargs = dict(static_kwargs or {})
        self.components = dict(components or {})
        self.variables = list(variables or [])
        self.version = version
        self.build_module_src = build_module_src
        self.build_func_name = build_func_name
        self.extra = extra

    def state(self) -> dict:
        return {"version": self.version, "name": self.name, "static_kwargs": dict(self.static_kwargs),
                "components": dict(self.components), "build_module_src": self.build_module_src,
                "build_func_name": self.build_func_name, "variables": list(self.variables), **self.extra}


class _Param:
    __slots__ = ("data",)

    def __init__(self, data: torch.Tensor):
        self.data = data


class _Blob:
    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.from_numpy(np.array(value, copy=True))


def _easydicts(value: Any) -> Any:
    """Nested dicts of constructor kwargs are EasyDicts in official files (format notes §2.1)."""
    if isinstance(value, dict):
        return EasyDict({k: _easydicts(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_easydicts(v) for v in value)
    return value


_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_SCALAR = np.float32(0).__reduce__()[0]


class OfficialPickler(pickle._Pickler):
    """Pickler whose globals carry the official module names (see module docstring)."""

    def __init__(self, file: Any, protocol: int = 4, numpy_core: str = "numpy.core", newer_torch: bool = False,
                 persistent_ids: dict | None = None):
        super().__init__(file, protocol=protocol)
        self.newer_torch = newer_torch
        self._persistent_ids = persistent_ids or {}
        self._names = {
            id(EasyDict): ("dnnlib.util", "EasyDict"),
            id(TFNetwork): ("dnnlib.tflib.network", "Network"),
            id(_NP_RECONSTRUCT): (f"{numpy_core}.multiarray", "_reconstruct"),
            id(_NP_SCALAR): (f"{numpy_core}.multiarray", "scalar"),
        }
        self._sources: dict[str, str] = {}

    def persistent_id(self, obj: Any) -> Any:
        return self._persistent_ids.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is Global:
            return obj.name
        if id(obj) in self._names:
            return self._names[id(obj)][1]
        if kind is Record:
            return RECONSTRUCT, (self._meta(obj),)
        if kind is Call:
            return (obj.func, tuple(obj.args)) if obj.state is None else (obj.func, tuple(obj.args), obj.state)
        if kind is _Param:
            return REBUILD_PARAMETER, (obj.data, False, collections.OrderedDict())
        if isinstance(obj, torch.Tensor):
            return self._reduce_tensor(obj)
        if kind is _Blob:
            return LOAD_FROM_BYTES, (obj.data,)
        if kind is TFNetwork:
            return copyreg.__newobj__, (TFNetwork,), obj.state()
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        key = (obj.module, obj.name) if type(obj) is Global else self._names.get(id(obj))
        if key is None:
            return super().save_global(obj, name)
        module, qualname = key
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode() + b"\n" + qualname.encode() + b"\n")
        self.memoize(obj)

    def _reduce_tensor(self, t: torch.Tensor) -> tuple:
        """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` over the whole storage."""
        t = t.detach().cpu()
        raw = torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).numpy().tobytes()
        blob = legacy_storage_blob(raw, t.dtype, key=str(94_000_000_000_000 + 64 * len(self.memo)))
        return REBUILD_TENSOR_V2, (_Blob(blob), t.storage_offset(), tuple(t.size()), tuple(t.stride()),
                                   False, collections.OrderedDict())

    def _meta(self, rec: Record) -> dict:
        src = self._sources.setdefault(rec.module_src, rec.module_src)  # one string object per module
        return {"type": "class", "version": 6, "module_src": src, "class_name": rec.class_name,
                "state": self._module_state(rec)}

    def _module_state(self, rec: Record) -> dict:
        """An ``nn.Module.__dict__`` as torch 1.8-1.9 lays it out (``newer_torch``: torch 2.x extras)."""
        od = collections.OrderedDict
        state: dict[str, Any] = {
            "training": rec.training,
            "_parameters": od((k, None if v is None else _Param(_as_tensor(v))) for k, v in rec.parameters.items()),
            "_buffers": od((k, None if v is None else _as_tensor(v)) for k, v in rec.buffers.items()),
            "_non_persistent_buffers_set": set(rec.non_persistent_buffers),
        }
        if self.newer_torch:
            state["_backward_pre_hooks"] = od()
        state.update({"_backward_hooks": od(), "_is_full_backward_hook": None, "_forward_hooks": od()})
        if self.newer_torch:
            state.update({"_forward_hooks_with_kwargs": od(), "_forward_hooks_always_called": od()})
        state["_forward_pre_hooks"] = od()
        if self.newer_torch:
            state["_forward_pre_hooks_with_kwargs"] = od()
        state["_state_dict_hooks"] = od()
        if self.newer_torch:
            state["_state_dict_pre_hooks"] = od()
        state["_load_state_dict_pre_hooks"] = od()
        if self.newer_torch:
            state["_load_state_dict_post_hooks"] = od()
        state["_modules"] = od(rec.modules)
        state.update(rec.attrs)
        state["_init_args"] = tuple(rec.init_args)
        state["_init_kwargs"] = {k: _easydicts(v) for k, v in rec.init_kwargs.items()}
        return state


def dumps_official(obj: Any, protocol: int = 4, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    OfficialPickler(buf, protocol=protocol, **kwargs).dump(obj)
    return buf.getvalue()


def legacy_storage_blob(raw: bytes, dtype: torch.dtype, key: str = "94529150648320", *,
                        numel: int | None = None, count: int | None = None) -> bytes:
    """A legacy (non-zip) ``torch.save`` of one storage (format notes §3.2), as ``Storage.__reduce__`` makes it.

    ``numel``/``count`` override the header's and the data block's element counts (for lying files).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    true_numel = len(raw) // itemsize
    numel = true_numel if numel is None else numel
    count = numel if count is None else count
    buf = io.BytesIO()
    for obj in (LEGACY_MAGIC, LEGACY_PROTOCOL,
                {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        OfficialPickler(buf, protocol=2).dump(obj)
    storage = object()
    pid = ("storage", Global("torch", STORAGE_NAMES[dtype]), key, "cpu", numel, None)
    OfficialPickler(buf, protocol=2, persistent_ids={id(storage): pid}).dump(storage)
    OfficialPickler(buf, protocol=2).dump([key])
    buf.write(struct.pack("<q", count))
    buf.write(raw)
    return buf.getvalue()


def write_official_pickle(path: str | Path, top: dict, protocol: int = 4, *, numpy_core: str = "numpy.core",
                          newer_torch: bool = False) -> Path:
    """Write ``top`` (e.g. ``{'G': Record, 'D': Record, 'G_ema': Record, 'augment_pipe': None,
    'training_set_kwargs': {...}}``) the way ``training_loop.py``'s ``pickle.dump`` does (§1, §2)."""
    path = Path(path)
    with open(path, "wb") as f:
        OfficialPickler(f, protocol=protocol, numpy_core=numpy_core, newer_torch=newer_torch).dump(dict(top))
    return path


def write_tf_pickle(path: str | Path, nets: tuple, protocol: int = 3) -> Path:
    """Write a legacy TensorFlow ``(G, D, Gs)`` pickle of :class:`TFNetwork` objects (§4)."""
    path = Path(path)
    with open(path, "wb") as f:
        OfficialPickler(f, protocol=protocol).dump(tuple(nets))
    return path


# ----------------------------------------------------------------------------------------------
# Whole official networks from a flat state dict.

_DEFAULTS = {  # class defaults of each official source file that matter for stored attributes (§6.1, §7.1)
    "stylegan2-ada": dict(w_avg_beta=0.995, num_fp16_res=0, conv_clamp=None, mapping_layers=8),
    "stylegan3-sg2": dict(w_avg_beta=0.998, num_fp16_res=4, conv_clamp=256, mapping_layers=8),
    "stylegan3": dict(w_avg_beta=0.998, num_fp16_res=4, conv_clamp=256, mapping_layers=2),
}
_SG3_SYNTHESIS_DEFAULTS = dict(channel_base=32768, channel_max=512, num_layers=14, num_critical=2, first_cutoff=2,
                               first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3, margin_size=10,
                               output_scale=0.25, num_fp16_res=4, conv_kernel=3, filter_size=6,
                               lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256,
                               magnitude_ema_beta=0.999)
_G_TOP_KWARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
SQRT2 = np.float64(np.sqrt(2))


class _Node:
    def __init__(self):
        self.tensors: dict[str, Any] = {}
        self.children: dict[str, _Node] = {}

    def child(self, name: str) -> "_Node":
        if name not in self.children:
            raise ValueError(f"flat state dict has no tensors under {name!r}")
        return self.children[name]


def _tree(flat: dict) -> _Node:
    root = _Node()
    for name, value in flat.items():
        *path, leaf = name.split(".")
        node = root
        for part in path:
            node = node.children.setdefault(part, _Node())
        node.tensors[leaf] = value
    return root


def _record(class_name: str, node: _Node, src: str, attrs: dict, init_kwargs: dict | None = None,
            modules: dict | None = None, none_buffers: tuple = ()) -> Record:
    params = {k: v for k, v in node.tensors.items() if k not in BUFFER_NAMES}
    buffers = {k: v for k, v in node.tensors.items() if k in BUFFER_NAMES}
    buffers.update({k: None for k in none_buffers})
    return Record(class_name, attrs=attrs, parameters=params, buffers=buffers, modules=modules or {},
                  init_kwargs=init_kwargs or {}, module_src=src)


def _fc(node: _Node, src: str, kind: str, activation: str = "linear", lr_multiplier: float = 1) -> Record:
    out_f, in_f = node.tensors["weight"].shape
    attrs = {"in_features": int(in_f), "out_features": int(out_f)} if kind != "stylegan2-ada" else {}
    attrs.update(activation=activation, weight_gain=np.float64(lr_multiplier / np.sqrt(in_f)),
                 bias_gain=lr_multiplier)
    return _record("FullyConnectedLayer", node, src, attrs,
                   {"in_features": int(in_f), "out_features": int(out_f), "activation": activation,
                    "lr_multiplier": lr_multiplier})


def _conv(node: _Node, src: str, kind: str, activation: str, up: int = 1, down: int = 1, conv_clamp=None,
          frozen: bool = False) -> Record:
    out_ch, in_ch, k, _ = node.tensors["weight"].shape
    attrs = {"in_channels": int(in_ch), "out_channels": int(out_ch)} if kind != "stylegan2-ada" else {}
    attrs.update(activation=activation, up=up, down=down, conv_clamp=conv_clamp, padding=int(k) // 2,
                 weight_gain=np.float64(1 / np.sqrt(in_ch * k * k)), act_gain=SQRT2 if activation == "lrelu" else 1)
    rec = _record("Conv2dLayer", node, src, attrs,
                  {"in_channels": int(in_ch), "out_channels": int(out_ch), "kernel_size": int(k),
                   "activation": activation, "up": up, "down": down, "conv_clamp": conv_clamp})
    if frozen:  # freeze-D: weight and bias are registered as buffers, after resample_filter (§2.1)
        for name in ("weight", "bias"):
            if name in rec.parameters:
                rec.buffers[name] = rec.parameters.pop(name)
    if "bias" not in node.tensors:
        rec.attrs["bias"] = None
    return rec


def _mapping(node: _Node, src: str, kind: str, dims: dict, w_avg_beta: float | None, lr: float = 0.01) -> Record:
    """``dims`` = z_dim, c_dim, w_dim, num_ws (the constructor order of the stored attributes)."""
    modules = {}
    for name, child in node.children.items():
        modules[name] = _fc(child, src, kind) if name == "embed" else _fc(child, src, kind, "lrelu", lr)
    num_layers = sum(1 for n in node.children if re.fullmatch(r"fc\d+", n))
    attrs = {**dims, "num_layers": num_layers, "w_avg_beta": w_avg_beta}
    if kind == "stylegan3" and "embed" not in modules:
        attrs["embed"] = None
    return _record("MappingNetwork", node, src, attrs, dict(dims), modules)


def _sg2_synthesis(node: _Node, src: str, kind: str, top: dict, syn_kw: dict) -> Record:
    res_log2 = int(np.log2(top["img_resolution"]))
    block_res = [2 ** i for i in range(2, res_log2 + 1)]
    num_fp16_res = syn_kw.get("num_fp16_res", _DEFAULTS[kind]["num_fp16_res"])
    conv_clamp = syn_kw.get("conv_clamp", _DEFAULTS[kind]["conv_clamp"])
    fp16_resolution = max(2 ** (res_log2 + 1 - num_fp16_res), 8)
    architecture = syn_kw.get("architecture", "skip")
    w_dim = top["w_dim"]
    blocks, num_ws = {}, 0
    for res in block_res:
        b = node.child(f"b{res}")
        is_last = res == top["img_resolution"]
        use_fp16 = res >= fp16_resolution
        modules = {}
        for name, child in b.children.items():
            if name in ("conv0", "conv1"):
                out_ch, in_ch = child.tensors["weight"].shape[:2]
                up = 2 if name == "conv0" else 1
                attrs = {"in_channels": int(in_ch), "out_channels": int(out_ch), "w_dim": w_dim} \
                    if kind != "stylegan2-ada" else {}
                attrs.update(resolution=res, up=up, use_noise="noise_const" in child.tensors, activation="lrelu",
                             conv_clamp=conv_clamp, padding=int(child.tensors["weight"].shape[-1]) // 2,
                             act_gain=SQRT2)
                modules[name] = _record("SynthesisLayer", child, src, attrs,
                                        {"in_channels": int(in_ch), "out_channels": int(out_ch), "w_dim": w_dim,
                                         "resolution": res, "up": up, "conv_clamp": conv_clamp},
                                        {"affine": _fc(child.child("affine"), src, kind)})
            elif name == "torgb":
                out_ch, in_ch, k, _ = child.tensors["weight"].shape
                modules[name] = _record("ToRGBLayer", child, src,
                                        {"conv_clamp": conv_clamp, "weight_gain": np.float64(1 / np.sqrt(in_ch * k * k))},
                                        {"in_channels": int(in_ch), "out_channels": int(out_ch), "w_dim": w_dim,
                                         "conv_clamp": conv_clamp},
                                        {"affine": _fc(child.child("affine"), src, kind)})
            elif name == "skip":
                modules[name] = _conv(child, src, kind, "linear", up=2)
            else:
                raise ValueError(f"unexpected generator module synthesis.b{res}.{name}")
        num_conv = sum(1 for n in modules if n in ("conv0", "conv1"))
        num_torgb = int("torgb" in modules)
        in_channels = int(b.children["conv0"].tensors["weight"].shape[1]) if "conv0" in b.children else 0
        attrs = {"in_channels": in_channels, "w_dim": w_dim, "resolution": res, "img_channels": top["img_channels"],
                 "is_last": is_last, "architecture": architecture, "use_fp16": use_fp16, "channels_last": False}
        if kind != "stylegan2-ada":
            attrs["fused_modconv_default"] = True
        attrs.update(num_conv=num_conv, num_torgb=num_torgb)
        blocks[f"b{res}"] = _record("SynthesisBlock", b, src, attrs,
                                    {"in_channels": in_channels, "w_dim": w_dim, "resolution": res,
                                     "img_channels": top["img_channels"], "is_last": is_last,
                                     "use_fp16": use_fp16, "conv_clamp": conv_clamp}, modules)
        num_ws += num_conv + (num_torgb if is_last else 0)
    attrs = {"w_dim": w_dim, "img_resolution": top["img_resolution"], "img_resolution_log2": res_log2,
             "img_channels": top["img_channels"]}
    if kind != "stylegan2-ada":
        attrs["num_fp16_res"] = num_fp16_res
    attrs.update(block_resolutions=block_res, num_ws=num_ws)
    init = {"w_dim": w_dim, "img_resolution": top["img_resolution"], "img_channels": top["img_channels"], **syn_kw}
    return _record("SynthesisNetwork", node, src, attrs, init, blocks)


def sg3_layer_schedule(img_resolution: int, img_channels: int, kw: dict) -> dict:
    """The StyleGAN3 layer schedule of format notes §7.2 (numpy float64, like the official code)."""
    p = dict(_SG3_SYNTHESIS_DEFAULTS, **kw)
    L, R = p["num_layers"], img_resolution
    last_cutoff = R / 2
    last_stopband = last_cutoff * p["last_stopband_rel"]
    exponents = np.minimum(np.arange(L + 1) / (L - p["num_critical"]), 1)
    cutoffs = p["first_cutoff"] * (last_cutoff / p["first_cutoff"]) ** exponents
    stopbands = p["first_stopband"] * (last_stopband / p["first_stopband"]) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, R))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + p["margin_size"] * 2
    sizes[-2:] = R
    channels = np.rint(np.minimum((p["channel_base"] / 2) / cutoffs, p["channel_max"]))
    channels[-1] = img_channels
    return dict(params=p, cutoffs=cutoffs, sampling_rates=sampling_rates, half_widths=half_widths,
                sizes=sizes, channels=channels)


def _sg3_synthesis(node: _Node, src: str, top: dict, syn_kw: dict) -> Record:
    R, w_dim = top["img_resolution"], top["w_dim"]
    s = sg3_layer_schedule(R, top["img_channels"], syn_kw)
    p = s["params"]
    L = p["num_layers"]
    cut, sr, hw, sizes, ch = s["cutoffs"], s["sampling_rates"], s["half_widths"], s["sizes"], s["channels"]
    inp = node.child("input")
    modules = {"input": _record(
        "SynthesisInput", inp, src,
        {"w_dim": w_dim, "channels": int(ch[0]), "size": np.full(2, int(sizes[0]), dtype=np.int64),
         "sampling_rate": sr[0], "bandwidth": cut[0]},
        {"w_dim": w_dim, "channels": int(ch[0]), "size": int(sizes[0]), "sampling_rate": sr[0],
         "bandwidth": cut[0]},
        {"affine": _fc(inp.child("affine"), src, "stylegan3")})}
    layer_names = []
    for i in range(L + 1):
        prev = max(i - 1, 0)
        is_torgb = i == L
        critical = i >= L - p["num_critical"]
        name = f"L{i}_{int(sizes[i])}_{int(ch[i])}"
        layer = node.child(name)
        tmp_sr = max(sr[prev], sr[i]) * (1 if is_torgb else p["lrelu_upsampling"])
        up = int(np.rint(tmp_sr / sr[prev]))
        down = int(np.rint(tmp_sr / sr[i]))
        k = 1 if is_torgb else p["conv_kernel"]
        up_taps = p["filter_size"] * up if up > 1 and not is_torgb else 1
        down_taps = p["filter_size"] * down if down > 1 and not is_torgb else 1
        radial = bool(p["use_radial_filters"]) and not critical
        total = (int(sizes[i]) - 1) * down + 1 - (int(sizes[prev]) + k - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2
        attrs = {
            "w_dim": w_dim, "is_torgb": is_torgb, "is_critically_sampled": critical,
            "use_fp16": np.bool_(sr[i] * (2 ** p["num_fp16_res"]) > R),
            "in_channels": int(ch[prev]), "out_channels": int(ch[i]),
            "in_size": np.full(2, int(sizes[prev]), dtype=np.int64), "out_size": np.full(2, int(sizes[i]), dtype=np.int64),
            "in_sampling_rate": sr[prev], "out_sampling_rate": sr[i], "tmp_sampling_rate": tmp_sr,
            "in_cutoff": cut[prev], "out_cutoff": cut[i], "in_half_width": hw[prev], "out_half_width": hw[i],
            "conv_kernel": k, "conv_clamp": p["conv_clamp"], "magnitude_ema_beta": p["magnitude_ema_beta"],
            "up_factor": up, "up_taps": up_taps, "down_factor": down, "down_taps": down_taps,
            "down_radial": radial, "padding": [lo, total - lo, lo, total - lo],
        }
        _check(layer.tensors["weight"].shape == (int(ch[i]), int(ch[prev]), k, k), f"{name}.weight shape")
        _check(_shape(layer.tensors.get("up_filter")) == ((up_taps,) if up_taps > 1 else None), f"{name}.up_filter")
        want_down = None if down_taps == 1 else (down_taps, down_taps) if radial else (down_taps,)
        _check(_shape(layer.tensors.get("down_filter")) == want_down, f"{name}.down_filter")
        nones = tuple(n for n, taps in (("up_filter", up_taps), ("down_filter", down_taps)) if taps == 1)
        modules[name] = _record("SynthesisLayer", layer, src, attrs,
                                {"w_dim": w_dim, "is_torgb": is_torgb, "is_critically_sampled": critical,
                                 "in_channels": int(ch[prev]), "out_channels": int(ch[i])},
                                {"affine": _fc(layer.child("affine"), src, "stylegan3")}, none_buffers=nones)
        layer_names.append(name)
    attrs = {"w_dim": w_dim, "num_ws": L + 2, "img_resolution": R, "img_channels": top["img_channels"],
             "num_layers": L, "num_critical": p["num_critical"], "margin_size": p["margin_size"],
             "output_scale": p["output_scale"], "num_fp16_res": p["num_fp16_res"], "layer_names": layer_names}
    init = {"w_dim": w_dim, "img_resolution": R, "img_channels": top["img_channels"], **syn_kw}
    return _record("SynthesisNetwork", node, src, attrs, init, modules)


def _shape(value: Any) -> tuple | None:
    return None if value is None else tuple(value.shape)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"flat state dict does not match the official layout: {what}")


def _discriminator(root: _Node, kind: str, init_kwargs: dict, freeze_layers: int) -> Record:
    src = MODULE_SRC[kind]
    R, C, c_dim = init_kwargs["img_resolution"], init_kwargs["img_channels"], init_kwargs.get("c_dim", 0)
    res_log2 = int(np.log2(R))
    block_res = [2 ** i for i in range(res_log2, 2, -1)]
    num_fp16_res = init_kwargs.get("num_fp16_res", _DEFAULTS[kind]["num_fp16_res"])
    conv_clamp = init_kwargs.get("conv_clamp", _DEFAULTS[kind]["conv_clamp"])
    architecture = init_kwargs.get("architecture", "resnet")
    fp16_resolution = max(2 ** (res_log2 + 1 - num_fp16_res), 8)
    modules, layer_idx = {}, 0
    for res in block_res:
        b = root.child(f"b{res}")
        in_channels = 0 if res == R else int(b.child("conv0").tensors["weight"].shape[1])
        children, first = {}, layer_idx
        for name, child in b.children.items():
            lrelu = name != "skip"
            children[name] = _conv(child, src, kind, "lrelu" if lrelu else "linear",
                                   down=2 if name in ("conv1", "skip") else 1,
                                   conv_clamp=conv_clamp if lrelu else None, frozen=layer_idx < freeze_layers)
            layer_idx += 1
        use_fp16 = res >= fp16_resolution
        attrs = {"in_channels": in_channels, "resolution": res, "img_channels": C, "first_layer_idx": first,
                 "architecture": architecture, "use_fp16": use_fp16, "channels_last": False,
                 "num_layers": layer_idx - first}
        modules[f"b{res}"] = _record("DiscriminatorBlock", b, src, attrs,
                                     {"in_channels": in_channels, "resolution": res, "img_channels": C,
                                      "first_layer_idx": first, "use_fp16": use_fp16,
                                      "conv_clamp": conv_clamp, "freeze_layers": freeze_layers}, children)
    cmap_dim = 0
    if "mapping" in root.children:
        mapping_node = root.child("mapping")
        last = max((n for n in mapping_node.children if n.startswith("fc")), key=lambda n: int(n[2:]))
        cmap_dim = int(mapping_node.child(last).tensors["weight"].shape[0])
        lr = init_kwargs.get("mapping_kwargs", {}).get("lr_multiplier", 0.01)
        modules["mapping"] = _mapping(mapping_node, src, kind,
                                      {"z_dim": 0, "c_dim": c_dim, "w_dim": cmap_dim, "num_ws": None}, None, lr)
    epi = root.child("b4")
    ch4 = int(epi.child("conv").tensors["weight"].shape[0])
    mbstd_channels = int(epi.child("conv").tensors["weight"].shape[1]) - ch4
    epilogue_kwargs = init_kwargs.get("epilogue_kwargs", {})
    children = {}
    if "fromrgb" in epi.children:
        children["fromrgb"] = _conv(epi.child("fromrgb"), src, kind, "lrelu", conv_clamp=conv_clamp)
    if mbstd_channels > 0:
        group = epilogue_kwargs.get("mbstd_group_size", 4)
        children["mbstd"] = Record("MinibatchStdLayer", attrs={"group_size": group, "num_channels": mbstd_channels},
                                   init_kwargs={"group_size": group, "num_channels": mbstd_channels}, module_src=src)
    children["conv"] = _conv(epi.child("conv"), src, kind, "lrelu", conv_clamp=conv_clamp)
    children["fc"] = _fc(epi.child("fc"), src, kind, "lrelu")
    children["out"] = _fc(epi.child("out"), src, kind)
    attrs = {"in_channels": ch4, "cmap_dim": cmap_dim, "resolution": 4, "img_channels": C,
             "architecture": architecture}
    if mbstd_channels == 0:
        attrs["mbstd"] = None
    modules["b4"] = _record("DiscriminatorEpilogue", epi, src, attrs,
                            {"in_channels": ch4, "cmap_dim": cmap_dim, "resolution": 4, "img_channels": C,
                             "conv_clamp": conv_clamp, **epilogue_kwargs}, children)
    attrs = {"c_dim": c_dim, "img_resolution": R, "img_resolution_log2": res_log2, "img_channels": C,
             "block_resolutions": block_res}
    return _record("Discriminator", root, src, attrs, dict(init_kwargs), modules)


def official_records_from_flat(flat: dict, class_name: str, init_kwargs: dict, generation: str, *,
                               freeze_layers: int = 0) -> Record:
    """The full persistent-object tree of an official ``Generator`` or ``Discriminator``.

    ``flat`` maps official ``state_dict`` names (``mapping.fc0.weight``, ``synthesis.L3_52_512.up_filter``,
    ``b64.fromrgb.weight``) to arrays; ``init_kwargs`` is what the official pickle stores for the top
    object; ``generation`` is the source file: ``'stylegan2-ada'`` (ADA ``networks.py``; synthesis kwargs
    nested under ``synthesis_kwargs``), ``'stylegan3-sg2'`` (SG3 ``networks_stylegan2.py``) or
    ``'stylegan3'`` (SG3 ``networks_stylegan3.py``; its D comes from ``networks_stylegan2.py``).
    ``freeze_layers`` (D only) stores the first layers' weights as buffers, as freeze-D does.
    """
    if generation not in _DEFAULTS:
        raise ValueError(f"generation must be one of {sorted(_DEFAULTS)}, not {generation!r}")
    root = _tree(flat)
    if class_name == "Discriminator":
        return _discriminator(root, "stylegan2-ada" if generation == "stylegan2-ada" else "stylegan3-sg2",
                              init_kwargs, freeze_layers)
    if class_name != "Generator":
        raise ValueError(f"class_name must be 'Generator' or 'Discriminator', not {class_name!r}")
    src = MODULE_SRC[generation]
    top = {k: init_kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    if generation == "stylegan2-ada":
        syn_kw = dict(init_kwargs.get("synthesis_kwargs", {}))
    else:
        syn_kw = {k: v for k, v in init_kwargs.items() if k not in _G_TOP_KWARGS}
    mapping_kw = dict(init_kwargs.get("mapping_kwargs", {}))
    if generation == "stylegan3":
        synthesis = _sg3_synthesis(root.child("synthesis"), src, top, syn_kw)
    else:
        synthesis = _sg2_synthesis(root.child("synthesis"), src, generation, top, syn_kw)
    num_ws = synthesis.attrs["num_ws"]
    mapping = _mapping(root.child("mapping"), src, generation,
                       {"z_dim": top["z_dim"], "c_dim": top["c_dim"], "w_dim": top["w_dim"], "num_ws": num_ws},
                       mapping_kw.get("w_avg_beta", _DEFAULTS[generation]["w_avg_beta"]),
                       lr=mapping_kw.get("lr_multiplier", 0.01))
    _check(mapping.attrs["num_layers"] == mapping_kw.get("num_layers", _DEFAULTS[generation]["mapping_layers"]),
           "number of mapping layers")
    modules = {name: {"synthesis": synthesis, "mapping": mapping}[name] for name in root.children}
    return _record("Generator", root, src, {**top, "num_ws": num_ws}, dict(init_kwargs), modules)


def augment_pipe_record(p: float = 0.25) -> Record:
    """An ``AugmentPipe`` as §8 describes it (the bgc preset; filter banks are placeholder numbers)."""
    rng = np.random.default_rng(0)
    settings = dict(xflip=1.0, rotate90=1.0, xint=1.0, xint_max=0.125, scale=1.0, rotate=1.0, aniso=1.0,
                    xfrac=1.0, scale_std=0.2, rotate_max=1.0, aniso_std=0.2, xfrac_std=0.125, brightness=1.0,
                    contrast=1.0, lumaflip=1.0, hue=1.0, saturation=1.0, brightness_std=0.2, contrast_std=0.5,
                    hue_max=1.0, saturation_std=1.0, imgfilter=0.0, imgfilter_bands=[1, 1, 1, 1],
                    imgfilter_std=1.0, noise=0.0, cutout=0.0, noise_std=0.1, cutout_size=0.5)
    return Record("AugmentPipe", attrs=settings,
                  buffers={"p": torch.tensor(float(p)), "Hz_geom": rng.standard_normal(12).astype(np.float32),
                           "Hz_fbank": rng.standard_normal((4, 43)).astype(np.float32)},
                  init_kwargs={k: v for k, v in settings.items() if k in ("xflip", "rotate90", "xint", "scale")},
                  module_src=MODULE_SRC["augment"])


def reference_records(npz_path: str | Path, generation: str | None = None) -> dict[str, Any]:
    """``G``, ``D``, ``G_ema`` records (and flat tensors) from a ``shared/reference/official-*.npz`` file.

    ``generation`` defaults to the file's own module; ``'stylegan2-ada'`` re-homes a StyleGAN2 net to
    ADA's layout (synthesis kwargs nested under ``synthesis_kwargs``).
    """
    data = np.load(npz_path)
    meta = json.loads(str(data["meta_json"]))
    module = meta["G_ema"]["module"]
    own = "stylegan3" if module.endswith("networks_stylegan3") else "stylegan3-sg2"
    generation = generation or own
    g_kwargs = dict(meta["G_ema"]["init_kwargs"])
    if generation == "stylegan2-ada":
        if own != "stylegan3-sg2":
            raise ValueError("only a StyleGAN2 reference can be written in ADA's layout")
        g_kwargs = {k: v for k, v in g_kwargs.items() if k in _G_TOP_KWARGS}
        g_kwargs["synthesis_kwargs"] = {k: v for k, v in meta["G_ema"]["init_kwargs"].items()
                                        if k not in _G_TOP_KWARGS}
    flats = {key: {k[len(key) + 1:]: data[k] for k in data.files if k.startswith(key + "/")} for key in ("G_ema", "D")}
    return {
        "G": official_records_from_flat(flats["G_ema"], "Generator", g_kwargs, generation),
        "D": official_records_from_flat(flats["D"], "Discriminator", meta["D"]["init_kwargs"], generation),
        "G_ema": official_records_from_flat(flats["G_ema"], "Generator", g_kwargs, generation),
        "flat": flats,
    }


def write_reference_pickle(npz_path: str | Path, path: str | Path, generation: str | None = None,
                           protocol: int | None = None, augment_p: float | None = None) -> Path:
    """An official-layout network pickle of a reference network, in that code base's key order and protocol."""
    recs = reference_records(npz_path, generation)
    tsk = {"class_name": "training.dataset.ImageFolderDataset", "path": "datasets/reference.zip",
           "use_labels": False, "max_size": 1000, "xflip": False, "resolution": 64, "random_seed": 0}
    aug = augment_pipe_record(augment_p) if augment_p is not None else None
    ada = generation == "stylegan2-ada"
    if ada:
        top = {"training_set_kwargs": tsk, "G": recs["G"], "D": recs["D"], "G_ema": recs["G_ema"], "augment_pipe": aug}
    else:
        top = {"G": recs["G"], "D": recs["D"], "G_ema": recs["G_ema"], "augment_pipe": aug, "training_set_kwargs": tsk}
    return write_official_pickle(path, top, protocol=protocol or (3 if ada else 4))


# ----------------------------------------------------------------------------------------------
# Hostile and broken files.

def _small_generator(module_src: str = MODULE_SRC["stylegan3-sg2"], class_name: str = "Generator", **extra) -> Record:
    return Record(class_name, attrs={"z_dim": 4, "w_dim": 4, **extra.pop("attrs", {})},
                  parameters={"weight": torch.ones(2, 2)}, module_src=module_src, **extra)


def hostile_pickles(tmpdir: str | Path) -> dict[str, Path]:
    """Malicious or broken files in ``tmpdir``. Payloads would create ``tmpdir / HOSTILE_MARKER``.

    Must be refused: ``os_system``, ``builtins_eval``, ``subprocess_popen``, ``builtins_getattr``,
    ``copyreg_reconstructor``, ``unknown_class``, ``bad_persistence_version``, ``hostile_in_state``,
    ``easydict_reduce``, ``lying_numel``, ``lying_count``, ``tensor_out_of_bounds``, ``zero_stride_bomb``,
    ``zip_storage_blob``, ``numpy_object_dtype``, ``state_on_dict``, ``huge_length_field``, ``truncated``,
    ``empty``, ``random_bytes``, ``zip_file``, ``outer_persistent_id``, ``not_a_network``, ``mixed_tf_torch``.
    Must load as inert data: ``module_src_exec``, ``training_set_class_name``.
    """
    tmpdir = Path(tmpdir)
    marker = str(tmpdir / HOSTILE_MARKER)
    system = Global("posix", "system")
    touch = f"touch {marker}"
    od = collections.OrderedDict
    files: dict[str, bytes] = {
        "os_system": dumps_official({"G": Call(system, (touch,))}),
        "builtins_eval": dumps_official({"G": Call(Global("builtins", "eval"), (f"open({marker!r}, 'w').close()",))}),
        "subprocess_popen": dumps_official({"G": Call(Global("subprocess", "Popen"), (["touch", marker],))}),
        "builtins_getattr": dumps_official({"G": Call(Global("builtins", "getattr"), (od(), "__init__"))}),
        "copyreg_reconstructor": dumps_official(
            {"G": Call(Global("copyreg", "_reconstructor"), (Global("os", "_wrap_close"), object, None))}),
        "module_src_exec": dumps_official({"G_ema": _small_generator(f"import os\nos.system({touch!r})\n")}),
        "unknown_class": dumps_official({"G_ema": _small_generator(class_name="StyleGANXLGenerator")}),
        "bad_persistence_version": dumps_official({"G_ema": Call(RECONSTRUCT, ({
            "type": "class", "version": 7, "module_src": "", "class_name": "Generator", "state": {}},))}),
        "hostile_in_state": dumps_official({"G_ema": _small_generator(attrs={"evil": Call(system, (touch,))})}),
        "easydict_reduce": dumps_official({"G_ema": _small_generator(
            init_kwargs={"z_dim": 4, "mapping_kwargs": {"num_layers": Call(system, (touch,))}})}),
        "training_set_class_name": dumps_official({
            "G_ema": _small_generator(),
            "training_set_kwargs": {"class_name": "os.system", "path": touch, "use_labels": False}}),
        "state_on_dict": dumps_official({"G": Call(Global("collections", "OrderedDict"), (), {"__class__": 1})}),
        "numpy_object_dtype": dumps_official({"G": Call(Global("numpy", "dtype"), ("O", False, True))}),
        "outer_persistent_id": _persistent_id_pickle(),
        "not_a_network": dumps_official([1, 2, 3]),
        "huge_length_field": b"\x80\x04" + pickle.BINBYTES8 + struct.pack("<Q", 1 << 50) + b"abc",
        "empty": b"",
        "random_bytes": random.Random(1234).randbytes(4096),
        "mixed_tf_torch": dumps_official((TFNetwork("G", variables=[("w", torch.ones(2))]),
                                          TFNetwork("D"), TFNetwork("Gs")), protocol=3),
    }
    raw = np.arange(6, dtype=np.float32).tobytes()

    def tensor_file(blob: bytes, size: tuple = (6,), stride: tuple = (1,), offset: int = 0) -> bytes:
        return dumps_official({"G": Call(REBUILD_TENSOR_V2, (_Blob(blob), offset, size, stride, False, od()))})

    files["lying_numel"] = tensor_file(legacy_storage_blob(raw, torch.float32, numel=1 << 40, count=6))
    files["lying_count"] = tensor_file(legacy_storage_blob(raw, torch.float32, numel=1 << 30, count=1 << 30))
    files["tensor_out_of_bounds"] = tensor_file(legacy_storage_blob(raw, torch.float32), (100, 100), (100, 1))
    files["zero_stride_bomb"] = tensor_file(legacy_storage_blob(raw, torch.float32), (1 << 20, 1 << 20), (0, 0))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("archive/data.pkl", dumps_official({"G": None}))
    files["zip_storage_blob"] = tensor_file(zbuf.getvalue())
    files["zip_file"] = zbuf.getvalue()
    good = dumps_official({"G_ema": _small_generator(), "D": None})
    files["truncated"] = good[: len(good) * 2 // 3]
    out = {}
    for name, data in files.items():
        path = tmpdir / f"{name}.pkl"
        path.write_bytes(data)
        out[name] = path
    return out


def _persistent_id_pickle() -> bytes:
    target = object()
    return dumps_official({"G": target}, persistent_ids={id(target): "storage-0"})

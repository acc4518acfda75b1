"""Architecture inference shared by every reader, and the one way a network is built from a file.

Readers (native, NVIDIA PyTorch pickle, TensorFlow pickle, rosinality) each turn their file into a
config and a ``{name: tensor}`` table; :func:`build_network` then builds the network so that a file
can never make us build more than it holds:

1. the config is checked field by field (``from_dict`` of its dict form: types and sane ranges);
2. the network is first built as a shape probe (:func:`probe_shapes`: its large tensors on the ``meta``
   device, no memory), and its tensor names and shapes must equal the file's tensors, so a network is
   never larger than the tensors the file really holds;
3. its size must fit the file's :class:`NetworkBudget` (:data:`NETWORK_FACTOR` x the file's bytes +
   :data:`NETWORK_SLACK`: fp16 files become fp32 networks);
4. only then is it built for real, allocation failures becoming :class:`CheckpointError`.

Also here: typed reading of attributes and options (:func:`as_int` and friends), so that a wrongly typed
or absurd field in a file is one error line naming the field, and :func:`channel_base_max`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ..errors import CheckpointError
from ..networks import DiscriminatorConfig, GeneratorConfig
from .safe_pickle import short_repr

__all__ = ["NETWORK_FACTOR", "NETWORK_SLACK", "NetworkBudget", "build_network", "channel_base_max", "as_int",
           "as_float", "as_bool", "as_str", "as_ints"]

#: Network bytes (fp32) a file may make per byte of file ...
NETWORK_FACTOR = 2
#: ... plus this much (buffers a format does not store, e.g. TF's resampling filters).
NETWORK_SLACK = 64 << 20


class NetworkBudget:
    """Bytes of networks one file may build: ``NETWORK_FACTOR`` x its size + ``NETWORK_SLACK``."""

    def __init__(self, name: str, file_bytes: int):
        self.name = name
        self.limit = NETWORK_FACTOR * int(file_bytes) + NETWORK_SLACK
        self.spent = 0

    def charge(self, nbytes: int, what: str) -> None:
        self.spent += nbytes
        if self.spent > self.limit:
            raise CheckpointError(f"{what}: the networks would need {self.spent / 2**20:.1f} MB, more than "
                                  f"{self.name}'s {self.limit / 2**20:.1f} MB allowance ({NETWORK_FACTOR}x the "
                                  f"file + {NETWORK_SLACK >> 20} MB); the file is corrupt or malicious")


def checked_config(cfg: Any, what: str) -> Any:
    """``cfg`` after the field checks of its ``from_dict`` (types, ranges)."""
    try:
        return type(cfg).from_dict(cfg.to_dict())
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{what}: invalid architecture: {exc}") from None


def build_network(build: Callable[[Any], torch.nn.Module], cfg: GeneratorConfig | DiscriminatorConfig,
                  tensors: dict[str, torch.Tensor], what: str, budget: NetworkBudget,
                  defaults: tuple[str, ...] = ()) -> torch.nn.Module:
    """``build(cfg)`` loaded with exactly ``tensors`` (eval mode, no gradients), checked before any memory is
    spent. Tensors whose names end with one of ``defaults`` may be absent: the built network's own
    values are kept (formats that do not store resampling filters)."""
    cfg = checked_config(cfg, what)
    try:
        shapes = probe_shapes(build, cfg)
    except ValueError as exc:
        raise CheckpointError(f"{what}: invalid architecture: {exc}") from None
    kept = {k for k in shapes if k not in tensors and k.endswith(defaults)} if defaults else set()
    _check_names_and_shapes(shapes, tensors, kept, what)
    budget.charge(sum(math.prod(s) * (4 if dt.is_floating_point else torch.empty((), dtype=dt).element_size())
                      for s, dt in shapes.values()), what)
    try:
        net = build(cfg)
    except (MemoryError, RuntimeError) as exc:
        raise CheckpointError(f"{what}: not enough memory to build the network ({str(exc)[:100]})") from None
    if kept:
        own = net.state_dict()
        tensors = {**tensors, **{k: own[k] for k in kept}}
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{what}: tensor {name} contains NaN or infinite values")
    net.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()})
    return net.eval().requires_grad_(False)


_SIZED = (torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint)
_ARITHMETIC = {torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.__truediv__, torch.Tensor.__neg__,
               torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__sub__, torch.Tensor.mul, torch.Tensor.div,
               torch.Tensor.add, torch.Tensor.sub, torch.mul, torch.div, torch.Tensor.mul_, torch.Tensor.div_}
_PROBE_NUMEL = 4096


class _LargeTensorsOnMeta(TorchFunctionMode):
    """Constructors run as usual, except that tensors of at least ``_PROBE_NUMEL`` elements are made (and
    scaled) on the ``meta`` device: the shapes come out right, no memory is spent. (``torch.device('meta')``
    would do it for every tensor, but its Python kernels cost seconds of imports on first use.)"""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _SIZED and kwargs.get("device") is None:
            size = _requested_size(func, args, kwargs)
            if size is not None and math.prod(size) >= _PROBE_NUMEL:
                return torch.empty(size, dtype=kwargs.get("dtype"), device="meta")
        if func in _ARITHMETIC:
            metas = [a for a in args if isinstance(a, torch.Tensor) and a.is_meta]
            if metas and all(isinstance(a, (int, float)) or (isinstance(a, torch.Tensor) and (a.is_meta or a.ndim == 0))
                             for a in args):
                shape = _broadcast([tuple(a.shape) for a in args if isinstance(a, torch.Tensor)])
                if func.__name__.endswith("_"):
                    return args[0]
                return torch.empty(shape, dtype=metas[0].dtype, device="meta")
        return func(*args, **kwargs)


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """numpy's broadcasting of ``shapes`` (``torch.broadcast_shapes`` would import torch's Python refs)."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s, start=ndim - len(s)):
            if d != 1:
                if out[i] not in (1, d):
                    raise ValueError(f"shapes {shapes} do not broadcast")
                out[i] = d
    return tuple(out)


def _requested_size(func, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    size = kwargs.get("size")
    if size is None and func is torch.randint:
        size = args[-1] if args else None
    elif size is None and args:
        size = args[0] if isinstance(args[0], (list, tuple, torch.Size)) else args
    if not isinstance(size, (list, tuple, torch.Size)) or not all(isinstance(s, int) for s in size):
        return None
    return tuple(size)


def probe_shapes(build: Callable[[Any], torch.nn.Module], cfg: Any) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{name: (shape, dtype)}`` of ``build(cfg).state_dict()``, without allocating its large tensors."""
    with _LargeTensorsOnMeta():
        net = build(cfg)
    return {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()}


def _check_names_and_shapes(shapes: dict, tensors: dict, kept: set, what: str) -> None:
    missing = sorted(set(shapes) - set(tensors) - kept)
    unexpected = sorted(set(tensors) - set(shapes))
    if missing or unexpected:
        raise CheckpointError(f"{what}: tensors do not match the rebuilt architecture "
                              f"(missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''})")
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{what}: {name} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shapes[name][0]:
            raise CheckpointError(f"{what}: tensor {name} has shape {tuple(t.shape)}, expected {shapes[name][0]}")
        if t.is_complex() or (t.is_floating_point() != shapes[name][1].is_floating_point):
            raise CheckpointError(f"{what}: tensor {name} holds {t.dtype} values, expected {shapes[name][1]}")


def channel_base_max(channels: dict[int, int], what: str = "the network") -> tuple[int, int]:
    """Find (channel_base, channel_max) with ``min(base // res, max) == channels[res]`` for all res."""
    if not channels or not all(isinstance(c, int) and c >= 1 for c in channels.values()):
        raise CheckpointError(f"{what}: channel counts {channels} are not positive")
    channel_max = max(channels.values())
    lo, hi = 1, 1 << 40
    for res, ch in channels.items():
        if ch < channel_max:
            lo = max(lo, ch * res)
            hi = min(hi, (ch + 1) * res - 1)
        else:
            lo = max(lo, channel_max * res)
    if lo > hi:
        raise CheckpointError(f"{what}: channel counts {channels} do not follow min(channel_base // res, "
                              f"channel_max)")
    return lo, channel_max


def _plain_number(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        value = value.reshape(()).item()
    elif isinstance(value, np.generic):
        value = value.item()
    return value


def as_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer field of a file (numpy integers included), or a CheckpointError naming ``what``."""
    value = _plain_number(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckpointError(f"{what} must be an integer, not {short_repr(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise CheckpointError(f"{what} is {value}; it must lie between {lo} and {hi}")
    return value


def as_float(value: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number field of a file, or a CheckpointError naming ``what``."""
    value = _plain_number(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise CheckpointError(f"{what} must be a finite number, not {short_repr(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise CheckpointError(f"{what} is {value:g}; it must lie between {lo:g} and {hi:g}")
    return float(value)


def as_bool(value: Any, what: str) -> bool:
    value = _plain_number(value)
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise CheckpointError(f"{what} must be true or false, not {short_repr(value)}")


def as_str(value: Any, what: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expected = f"one of {', '.join(repr(c) for c in choices)}" if choices else "a string"
        raise CheckpointError(f"{what} must be {expected}, not {short_repr(value)}")
    return value


def as_ints(value: Any, what: str, lo: int | None = None, hi: int | None = None, max_len: int = 64) -> list[int]:
    """A list of integers (a list, tuple or 1-D numpy array) of at most ``max_len`` items."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= max_len:
        raise CheckpointError(f"{what} must be a list of 1 to {max_len} integers, not {short_repr(value)}")
    return [as_int(v, what, lo, hi) for v in value]

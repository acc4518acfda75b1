"""Read NVIDIA's network pickles (StyleGAN2-ADA-pytorch, StyleGAN3, legacy TensorFlow) as inert data.

Threat model: a ``.pkl`` is a program for the pickle virtual machine. A plain ``pickle.load`` imports and
calls whatever the file names (``posix.system``, ``builtins.eval``, ...), and NVIDIA's own loader goes
further: it ``exec``s the Python source stored inside the file (``module_src``). A downloaded model
file must therefore be treated as hostile. This reader executes nothing from the file:

- ``find_class`` resolves only the globals a network pickle needs (format notes §3.4), and each of
  them is replaced by a local function that builds plain data: torch tensors, numpy arrays and
  scalars, dicts, :class:`PersistentRecord` / :class:`TFNetworkRecord` placeholders.
- ``module_src`` is kept out of the result and only searched for text markers; class names are
  checked against the official allow-list; ``training_set_kwargs['class_name']`` stays a string.
- The opcodes that call methods on existing objects (BUILD, APPEND(S), SETITEM(S), ADDITEMS) are
  restricted to the object types that legitimately receive them, so numpy's ``__setstate__`` only
  ever sees validated, object-free state.
- Storage blobs (legacy ``torch.save`` of one storage) are parsed by hand with restricted
  sub-unpicklers; element counts, offsets and strides are checked so that a lying header cannot
  read out of bounds or make us allocate more than the file holds.
- The file is streamed through a reader that never asks the OS for more bytes than exist, so a
  forged length field fails as "truncated" instead of allocating terabytes.

We build on the pure-Python ``pickle._Unpickler`` (the reference implementation behind
``pickle.Unpickler``) because it lets us restrict opcodes and it reads large objects through our
bounded reader; the C unpickler allocates a forged length before reading. NVIDIA pickles contain a
few hundred thousand opcodes at most, so the speed difference is negligible next to the tensor copies.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

from stylegan.errors import CheckpointError

__all__ = ["PersistentRecord", "TFNetworkRecord", "read_pickle", "PERSISTENT_CLASS_NAMES"]

PERSISTENT_CLASS_NAMES = frozenset({
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
    "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "Discriminator", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "MinibatchStdLayer", "SynthesisInput", "AugmentPipe",
})

_PERSISTENCE_VERSION = 6
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_DEPTH = 64                  # module nesting; official nets are at most 4 deep
_MAX_DIMS = 32
_MAX_EXPANSION = 1 << 24         # elements a zero-stride view may expand a smaller storage to
_READ_CHUNK = 1 << 26
_MAX_LINE = 1 << 20

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}

_TORCH_DTYPES = {
    name: getattr(torch, name)
    for name in ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64",
                 "long", "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex64",
                 "cfloat", "complex128", "cdouble", "uint16", "uint32", "uint64")
    if isinstance(getattr(torch, name, None), torch.dtype)
}

# Keys of an nn.Module __dict__ that are torch bookkeeping, not attributes of the network class.
_MODULE_KEYS = frozenset({
    "training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set",
    "_init_args", "_init_kwargs", "_is_full_backward_hook", "_compiled_call_impl",
})
_HOOKS_KEY = re.compile(r"^_\w*hooks\w*$")


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict, converted to ``dict`` in the results."""


@dataclass(eq=False)
class PersistentRecord:
    """One ``@persistent_class`` network object from an official pickle, as inert data."""

    class_name: str
    module_kind: str = "unknown"           # 'stylegan2-ada' | 'stylegan3-sg2' | 'stylegan3' | 'augment' | 'unknown'
    attrs: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    none_buffers: set = field(default_factory=set)
    modules: dict = field(default_factory=dict)
    init_kwargs: dict = field(default_factory=dict)
    training: bool = False
    init_args: tuple = ()
    non_persistent_buffers: set = field(default_factory=set)

    def named_records(self, prefix: str = "") -> Iterator[tuple[str, "PersistentRecord"]]:
        """Yield ``(dotted_name, record)`` for this record and every descendant, like ``named_modules()``."""
        seen: set[int] = set()
        todo = [(prefix, self)]
        while todo:
            name, rec = todo.pop()
            if id(rec) in seen:
                continue
            seen.add(id(rec))
            yield name, rec
            children = [(f"{name}.{k}" if name else k, child) for k, child in rec.modules.items()]
            todo.extend(reversed(children))

    def named_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flat ``{dotted_name: tensor}``: ``named_parameters()`` then ``named_buffers()`` naming and order."""
        out: dict[str, torch.Tensor] = {}
        for kind in ("parameters", "buffers"):
            seen: set[int] = set()
            for name, rec in self.named_records(prefix):
                for key, tensor in getattr(rec, kind).items():
                    if id(tensor) not in seen:
                        seen.add(id(tensor))
                        out[f"{name}.{key}" if name else key] = tensor
        return out

    def child(self, dotted: str) -> "PersistentRecord":
        """The descendant at ``dotted`` (e.g. ``'synthesis.b4.conv1'``; ``''`` is this record)."""
        rec = self
        for part in dotted.split(".") if dotted else ():
            if part not in rec.modules:
                raise CheckpointError(f"{self.class_name} has no submodule {dotted!r} "
                                      f"({rec.class_name} has {sorted(rec.modules) or 'no submodules'})")
            rec = rec.modules[part]
        return rec

    def __repr__(self) -> str:
        return (f"PersistentRecord({self.class_name!r}, kind={self.module_kind!r}, "
                f"{len(self.parameters)} params, {len(self.buffers)} buffers, "
                f"modules={list(self.modules)})")


@dataclass(eq=False)
class TFNetworkRecord:
    """Inert stand-in for a legacy TensorFlow ``dnnlib.tflib.network.Network`` (format notes §4)."""

    state: dict = field(default_factory=dict)

    def __setstate__(self, state: dict) -> None:
        self.state = dict(state)

    @property
    def version(self) -> Any:
        return self.state.get("version")

    @property
    def name(self) -> Any:
        return self.state.get("name")

    @property
    def static_kwargs(self) -> dict:
        return _plain(self.state.get("static_kwargs") or {})

    @property
    def components(self) -> dict:
        return dict(self.state.get("components") or {})

    @property
    def variables(self) -> list:
        return list(self.state.get("variables") or [])

    def __repr__(self) -> str:
        return (f"TFNetworkRecord(name={self.name!r}, version={self.version!r}, "
                f"components={list(self.components)}, {len(self.variables)} variables)")


def read_pickle(source: str | os.PathLike | BinaryIO) -> Any:
    """Unpickle an official network pickle without executing anything from it.

    ``source`` is a path or a binary file object (read once, streaming). Returns the top-level
    dict of a PyTorch pickle (values: :class:`PersistentRecord`, ``None``, plain data) or the
    ``(G, D, Gs)`` tuple of :class:`TFNetworkRecord` of a TensorFlow one.
    Raises :class:`CheckpointError` for anything unsafe, unsupported, truncated or corrupt.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            f = open(path, "rb")
        except OSError as e:
            raise CheckpointError(f"cannot open {path}: {e.strerror or e}") from None
        with f:
            return _read_stream(f, path.name)
    if not hasattr(source, "read"):
        raise TypeError(f"read_pickle() needs a path or a binary file object, not {type(source).__name__}")
    name = getattr(source, "name", None)
    return _read_stream(source, Path(name).name if isinstance(name, str) and name else "<stream>")


def _read_stream(f: BinaryIO, name: str) -> Any:
    try:
        head = f.read(8)
    except OSError as e:
        raise CheckpointError(f"cannot read {name}: {e}") from None
    if not isinstance(head, bytes):
        raise TypeError("read_pickle() needs a file opened in binary mode")
    if not head:
        raise CheckpointError(f"cannot read {name}: the file is empty (0 bytes), not a network pickle")
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"cannot read {name}: it is a zip archive (e.g. a torch.save() checkpoint), "
                              f"not a network pickle")
    if head[0] != pickle.PROTO[0]:
        raise CheckpointError(f"cannot read {name}: it is truncated or not a pickle "
                              f"(it starts with {head[:4]!r}, not a pickle protocol 2+ header)")
    unpickler = _NetworkUnpickler(_BoundedReader(f, head), name)
    try:
        obj = unpickler.load()
    except CheckpointError:
        raise
    except (EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"cannot read {name}: it is truncated or not a pickle "
                              f"({e or 'the data ends early'})") from None
    except MemoryError:
        raise CheckpointError(f"cannot read {name}: it needs more memory than is available "
                              f"(a corrupt size field?)") from None
    except RecursionError:
        raise CheckpointError(f"cannot read {name}: its objects are nested too deeply") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {name}: {e}") from None
    except Exception as e:  # anything a malformed stream provokes inside the pickle machinery
        raise CheckpointError(f"cannot read {name}: it is truncated or not a valid network pickle "
                              f"({type(e).__name__}: {e})") from None
    return unpickler.check_result(obj)


class _BoundedReader:
    """File wrapper that only ever requests bytes in bounded chunks (a forged length cannot allocate)."""

    def __init__(self, f: BinaryIO, head: bytes = b""):
        self._f = f
        self._head = head

    def read(self, n: int) -> bytes:
        parts = []
        if self._head:
            parts.append(self._head[:n])
            self._head = self._head[n:]
            n -= len(parts[0])
        while n > 0:
            chunk = self._f.read(min(n, _READ_CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            n -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self) -> bytes:
        if b"\n" in self._head:
            line, _, self._head = self._head.partition(b"\n")
            return line + b"\n"
        line, self._head = self._head, b""
        return line + self._f.readline(_MAX_LINE)


def _plain(value: Any, _path: frozenset = frozenset()) -> Any:
    """Copy containers recursively, turning every dict subclass (EasyDict, OrderedDict) into ``dict``."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in _path:
            raise ValueError("a container in the file contains itself")
        if len(_path) > 100:
            raise ValueError("containers in the file are nested too deeply")
        inner = _path | {id(value)}
        if isinstance(value, dict):
            return {k: _plain(v, inner) for k, v in value.items()}
        items = [_plain(v, inner) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _module_kind(class_name: str, module_src: str, state: dict) -> str:
    """Which official source file defined this object, from text markers only (format notes §2.2)."""
    if class_name == "AugmentPipe":
        return "augment"
    if ("class SynthesisInput" in module_src or class_name == "SynthesisInput"
            or (class_name == "SynthesisLayer" and "is_torgb" in state)):
        return "stylegan3"
    if ("update_emas" in module_src or "fused_modconv_default" in state
            or (class_name == "SynthesisNetwork" and "num_fp16_res" in state)):
        return "stylegan3-sg2"
    if "skip_w_avg_update" in module_src:
        return "stylegan2-ada"
    return "unknown"


class _Storage:
    """A storage parsed from a legacy ``torch.save`` blob: a flat tensor of its element type."""

    __slots__ = ("data", "untyped")

    def __init__(self, data: torch.Tensor, untyped: bool):
        self.data = data
        self.untyped = untyped

    def elements(self, dtype: torch.dtype | None) -> torch.Tensor:
        if dtype is None or dtype == self.data.dtype:
            return self.data
        raw = self.data.view(torch.uint8) if self.data.dtype != torch.bool else self.data.to(torch.uint8)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if raw.numel() % itemsize:
            raise ValueError(f"a storage of {raw.numel()} bytes cannot hold {dtype} elements")
        return raw.ne(0) if dtype == torch.bool else raw.view(dtype)


class _StorageType:
    __slots__ = ("dtype", "untyped")

    def __init__(self, dtype: torch.dtype, untyped: bool):
        self.dtype = dtype
        self.untyped = untyped


class _Marker:
    """A whitelisted global that is only ever an argument, never something to call."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_NDARRAY = _Marker("numpy.ndarray")


def _restricted_dispatch(base: dict) -> dict:
    """The pure-Python unpickler's dispatch table with object-mutating opcodes routed through checks."""

    def load_build(self):
        state = self.stack.pop()
        self._build(self.stack[-1], state)

    def load_append(self):
        value = self.stack.pop()
        self._target(list).append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._target(list).extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(dict)[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target(dict)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        self._target(set).update(items)

    def load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)
        if len(data) != n:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(bytearray(data))

    table = dict(base)
    table[pickle.BUILD[0]] = load_build
    table[pickle.APPEND[0]] = load_append
    table[pickle.APPENDS[0]] = load_appends
    table[pickle.SETITEM[0]] = load_setitem
    table[pickle.SETITEMS[0]] = load_setitems
    table[pickle.ADDITEMS[0]] = load_additems
    table[pickle.BYTEARRAY8[0]] = load_bytearray8
    return table


class _InertUnpickler(pickle._Unpickler):
    """Base restricted unpickler: no globals, no persistent ids, no state-setting."""

    dispatch = _restricted_dispatch(pickle._Unpickler.dispatch)
    what = "the file"

    def __init__(self, file: Any, name: str, what: str | None = None):
        super().__init__(file, encoding="ASCII")
        self.name = name
        if what is not None:
            self.what = what

    def refuse(self, reason: str) -> CheckpointError:
        return CheckpointError(f"refusing to load {self.name}: {reason}")

    def find_class(self, module: str, name: str) -> Any:
        raise self.refuse(f"{self.what} asks to import '{module}.{name}', which a network pickle "
                          f"never needs (the file may be malicious)")

    def persistent_load(self, pid: Any) -> Any:
        raise self.refuse(f"{self.what} contains a persistent-id reference, which NVIDIA's network "
                          f"pickles never use (the file may be malicious or not a network pickle)")

    def _build(self, inst: Any, state: Any) -> None:
        raise self.refuse(f"{self.what} sets the state of an object of type {type(inst).__name__}, which "
                          f"a network pickle never does (the file may be malicious)")

    def _target(self, kind: type) -> Any:
        target = self.stack[-1]
        if not isinstance(target, kind):
            raise self.refuse(f"{self.what} adds items to an object of type {type(target).__name__}, "
                              f"which a network pickle never does (the file may be malicious)")
        return target


class _StorageHeaderUnpickler(_InertUnpickler):
    """Part 4 of a storage blob: one persistent id naming a ``torch.<Type>Storage``."""

    what = "a tensor storage"

    def __init__(self, file: Any, name: str):
        super().__init__(file, name)
        self.pids: list[tuple] = []

    def find_class(self, module: str, name: str) -> Any:
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name], untyped=False)
        if (module, name) == ("torch.storage", "UntypedStorage") or (module, name) == ("torch", "UntypedStorage"):
            return _StorageType(torch.uint8, untyped=True)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self.pids:
            raise self.refuse("a tensor storage refers to more than one storage")
        self.pids.append(pid)
        return _Marker("storage")


def _load_storage_blob(blob: Any, name: str) -> _Storage:
    """Parse ``torch.storage._load_from_bytes(blob)``: a legacy (non-zip) ``torch.save`` of one storage."""
    if isinstance(blob, bytearray):
        blob = bytes(blob)
    if not isinstance(blob, bytes):
        raise CheckpointError(f"cannot read {name}: a tensor storage is a {type(blob).__name__}, not bytes")
    if blob.startswith(b"PK\x03\x04"):
        # torch writes storages inside pickles in the legacy format (Storage.__reduce__ forces it), and
        # NVIDIA files never hold zip blobs. Handing attacker bytes to torch.load's zip reader would add
        # a second, much larger parser to trust for no real file, so we refuse.
        raise CheckpointError(f"cannot read {name}: a tensor storage is in torch's zip format, which "
                              f"network pickles never use")
    f = io.BytesIO(blob)

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"cannot read {name}: a tensor storage is corrupt ({what})")

    def part() -> Any:
        return _InertUnpickler(f, name, "a tensor storage").load()

    try:
        if part() != _LEGACY_MAGIC:
            raise bad("wrong magic number")
        if part() != _LEGACY_PROTOCOL:
            raise bad("unknown serialization protocol")
        sys_info = part()
        if not isinstance(sys_info, dict):
            raise bad("no system-info header")
        if sys_info.get("little_endian") is not True:
            raise CheckpointError(f"cannot read {name}: it holds big-endian tensor data, which is not supported")
        header = _StorageHeaderUnpickler(f, name)
        marker = header.load()
        keys = part()
    except CheckpointError:
        raise
    except Exception as e:
        raise bad(f"{type(e).__name__}: {e}") from None
    if not header.pids or not isinstance(marker, _Marker):
        raise bad("no storage record")
    pid = header.pids[0]
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise bad("malformed storage record")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
        raise bad("malformed storage record")
    if len(pid) == 6 and pid[5] is not None:
        raise CheckpointError(f"cannot read {name}: it uses storage views of pre-1.0 torch, which are not supported")
    if keys != [key]:
        raise bad("storage key list does not match")
    count_bytes = f.read(8)
    if len(count_bytes) != 8:
        raise bad("missing element count")
    (count,) = struct.unpack("<q", count_bytes)
    if count != numel:
        raise bad(f"header says {numel} elements, data block says {count}")
    dtype = storage_type.dtype
    itemsize = torch.empty((), dtype=dtype).element_size()
    start = f.tell()
    nbytes = count * itemsize
    if len(blob) - start != nbytes:
        raise bad(f"{numel} elements need {nbytes} bytes, the blob holds {len(blob) - start}")
    if nbytes == 0:
        return _Storage(torch.empty(0, dtype=dtype), storage_type.untyped)
    data = bytearray(memoryview(blob)[start:])
    if dtype == torch.bool:
        flat = torch.frombuffer(data, dtype=torch.uint8).ne(0)
    else:
        flat = torch.frombuffer(data, dtype=dtype)
    return _Storage(flat, storage_type.untyped)


class _NetworkUnpickler(_InertUnpickler):
    """The outer stream: the whitelist of format notes §3.4, every entry returning inert data."""

    def __init__(self, file: Any, name: str):
        super().__init__(file, name)
        self._fresh_arrays: dict[int, np.ndarray] = {}
        self._fresh_dtypes: dict[int, np.dtype] = {}
        self._depth: dict[int, int] = {}
        self._family: str | None = None
        torch_family = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"): self._persistent_obj,
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
            ("torch.storage", "_load_from_bytes"): self._load_from_bytes,
        }
        torch_family.update({("torch", n): dt for n, dt in _TORCH_DTYPES.items()})
        self._globals: dict[tuple[str, str], tuple[str | None, Any]] = {
            key: ("PyTorch", value) for key, value in torch_family.items()}
        self._globals[("dnnlib.tflib.network", "Network")] = ("TensorFlow", TFNetworkRecord)
        neutral = {
            ("dnnlib.util", "EasyDict"): _EasyDict,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "bytes"): self._bytes,
            ("_codecs", "encode"): self._codecs_encode,
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): self._np_dtype,
        }
        for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
            neutral[(core, "_reconstruct")] = self._np_reconstruct
            neutral[(core, "scalar")] = self._np_scalar
        for numeric in ("numpy.core.numeric", "numpy._core.numeric"):
            neutral[(numeric, "_frombuffer")] = self._np_frombuffer
        self._globals.update({key: (None, value) for key, value in neutral.items()})

    # --- globals -------------------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol-2 spelling
            module = "builtins"
        entry = self._globals.get((module, name))
        if entry is None:
            return super().find_class(module, name)
        family, value = entry
        if family is not None:
            if self._family is not None and self._family != family:
                raise self.refuse(f"it mixes {self._family} and {family} network objects, which "
                                  f"no official pickle does (the file may be malicious)")
            self._family = family
        return value

    def _persistent_obj(self, meta: Any = None, *extra: Any) -> PersistentRecord:
        if extra or not isinstance(meta, dict):
            raise self.refuse("it contains a malformed persistent network object")
        if meta.get("type") != "class":
            raise self.refuse(f"it contains a persistent object of type {meta.get('type')!r} "
                              f"(only 'class' is known)")
        version = meta.get("version")
        if not _is_int(version) or version != _PERSISTENCE_VERSION:
            raise self.refuse(f"it uses persistence format version {version!r}; only "
                              f"{_PERSISTENCE_VERSION} is known")
        class_name = meta.get("class_name")
        if not isinstance(class_name, str):
            raise self.refuse("it contains a persistent object without a class name")
        if class_name not in PERSISTENT_CLASS_NAMES:
            raise self.refuse(f"it contains a network class {class_name!r}, which is not one of NVIDIA's "
                              f"StyleGAN2/StyleGAN3 classes (a fork's network?)")
        module_src = meta.get("module_src")
        state = meta.get("state")
        if not isinstance(module_src, str) or not isinstance(state, dict):
            raise self.refuse(f"its {class_name} object has no source text or no state dict")
        if not all(isinstance(k, str) for k in state):
            raise self.refuse(f"its {class_name} state has non-string keys")

        parameters, _ = self._tensor_table(state.get("_parameters"), class_name, "_parameters")
        buffers, none_buffers = self._tensor_table(state.get("_buffers"), class_name, "_buffers")
        modules = {}
        raw_modules = state.get("_modules") or {}
        if not isinstance(raw_modules, dict):
            raise self.refuse(f"its {class_name}._modules is a {type(raw_modules).__name__}")
        for key, child in raw_modules.items():
            if child is None:
                continue
            if not isinstance(key, str) or not isinstance(child, PersistentRecord):
                raise self.refuse(f"its {class_name}._modules[{key!r}] is a {type(child).__name__}, "
                                  f"not a network object")
            modules[key] = child
        depth = 1 + max((self._depth.get(id(c), 1) for c in modules.values()), default=0)
        if depth > _MAX_DEPTH:
            raise self.refuse("its network objects are nested too deeply")

        training = state.get("training", False)
        if not isinstance(training, (bool, np.bool_)):
            raise self.refuse(f"its {class_name}.training is a {type(training).__name__}")
        init_kwargs = _plain(state.get("_init_kwargs") or {})
        init_args = _plain(state.get("_init_args") or ())
        if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
            raise self.refuse(f"its {class_name} constructor arguments are malformed")
        non_persistent = state.get("_non_persistent_buffers_set") or set()
        attrs = {k: _plain(v) for k, v in state.items()
                 if k not in _MODULE_KEYS and not _HOOKS_KEY.match(k)}
        record = PersistentRecord(
            class_name=class_name, module_kind=_module_kind(class_name, module_src, state),
            attrs=attrs, parameters=parameters, buffers=buffers, none_buffers=none_buffers,
            modules=modules, init_kwargs=init_kwargs, training=bool(training),
            init_args=tuple(init_args),
            non_persistent_buffers={k for k in non_persistent if isinstance(k, str)}
            if isinstance(non_persistent, (set, frozenset, list, tuple)) else set())
        self._depth[id(record)] = depth
        return record

    def _tensor_table(self, table: Any, class_name: str, what: str) -> tuple[dict, set]:
        if table is None:
            return {}, set()
        if not isinstance(table, dict):
            raise self.refuse(f"its {class_name}.{what} is a {type(table).__name__}")
        tensors, nones = {}, set()
        for key, value in table.items():
            if not isinstance(key, str):
                raise self.refuse(f"its {class_name}.{what} has a non-string name")
            if value is None:
                nones.add(key)
            elif isinstance(value, torch.Tensor):
                tensors[key] = value
            else:
                raise self.refuse(f"its {class_name}.{what}[{key!r}] is a {type(value).__name__}, not a tensor")
        return tensors, nones

    # --- tensors -------------------------------------------------------------------------------

    def _load_from_bytes(self, blob: Any = None, *extra: Any) -> _Storage:
        if extra:
            raise self.refuse("it calls torch.storage._load_from_bytes with extra arguments")
        return _load_storage_blob(blob, self.name)

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._view(storage, storage_offset, size, stride, None)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        return self._view(storage, storage_offset, size, stride, None)

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                           backward_hooks, dtype, metadata=None):
        if not isinstance(dtype, torch.dtype):
            raise self.refuse("it rebuilds a tensor with an invalid dtype")
        return self._view(storage, storage_offset, size, stride, dtype)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, torch.Tensor):
            raise self.refuse(f"it wraps a {type(data).__name__} as a parameter")
        return data

    def _rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        return self._rebuild_parameter(data, requires_grad, backward_hooks)

    def _view(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None) -> torch.Tensor:
        """``as_strided`` over the parsed storage, bounds-checked, as a contiguous tensor."""
        if not isinstance(storage, _Storage):
            raise self.refuse(f"it rebuilds a tensor from a {type(storage).__name__} instead of a storage")
        if storage.untyped and dtype is None:
            dtype = torch.uint8
        flat = storage.elements(dtype)
        if isinstance(size, torch.Size):
            size = tuple(size)
        if (not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list))
                or len(size) != len(stride) or len(size) > _MAX_DIMS
                or not all(_is_int(v) and v >= 0 for v in (*size, *stride))
                or not _is_int(offset) or offset < 0):
            raise self.refuse(f"it rebuilds a tensor with invalid geometry (offset {offset!r}, "
                              f"size {size!r}, stride {stride!r})")
        size, stride = tuple(size), tuple(stride)
        available = flat.numel()
        numel = math.prod(size)
        if numel == 0:
            if offset > available:
                raise self.refuse("it rebuilds a tensor that starts past the end of its storage")
            return torch.empty(size, dtype=flat.dtype)
        last = offset + sum((s - 1) * st for s, st in zip(size, stride))
        if last >= available:
            raise self.refuse(f"it rebuilds a tensor of size {list(size)} that reads element {last} "
                              f"of a storage holding {available} (the file is corrupt or malicious)")
        if numel > available and numel > _MAX_EXPANSION:
            raise self.refuse(f"it expands a storage of {available} elements into a tensor of {numel}")
        contiguous = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
        if offset == 0 and numel == available and all(
                st == c for s, st, c in zip(size, stride, contiguous) if s != 1):
            return flat.view(size)
        return torch.as_strided(flat, size, stride, offset).clone(memory_format=torch.contiguous_format)

    # --- numpy and other leaves ---------------------------------------------------------------

    def _np_dtype(self, obj: Any = None, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(obj, str) or len(obj) > 32:
            raise self.refuse(f"it builds a numpy dtype from a {type(obj).__name__}")
        try:
            dt = np.dtype(obj, bool(align), True)
        except TypeError as e:
            raise self.refuse(f"it builds an invalid numpy dtype {obj!r} ({e})") from None
        if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise self.refuse(f"it builds the numpy dtype {obj!r}, which can hold Python objects or "
                              f"structures; network pickles only hold plain numbers")
        self._fresh_dtypes[id(dt)] = dt
        return dt

    def _np_reconstruct(self, subtype: Any = None, shape: Any = None, typecode: Any = None) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise self.refuse(f"it reconstructs a numpy array of type {subtype!r}; only plain "
                              f"ndarrays are allowed")
        arr = np.empty((0,), dtype=np.int8)
        self._fresh_arrays[id(arr)] = arr
        return arr

    def _np_frombuffer(self, buf: Any = None, dtype: Any = None, shape: Any = None, order: Any = "C") -> np.ndarray:
        """Protocol-5 numpy arrays (in-band buffers), as Python 3.14's default protocol writes them."""
        self._check_np_dtype(dtype)
        if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS or order not in ("C", "F")
                or not all(_is_int(s) and s >= 0 for s in shape)
                or not isinstance(buf, (bytes, bytearray))
                or len(buf) != math.prod(shape) * dtype.itemsize):
            raise self.refuse(f"it contains a numpy array whose data does not match its shape {shape!r}")
        return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy(order="K")

    def _np_scalar(self, dtype: Any = None, raw: Any = None) -> np.generic:
        self._check_np_dtype(dtype)
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.itemsize:
            raise self.refuse(f"it builds a numpy {dtype} scalar from malformed data")
        return np.frombuffer(bytes(raw), dtype=dtype, count=1)[0]

    def _check_np_dtype(self, dtype: Any) -> None:
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.fields is not None:
            raise self.refuse(f"it uses {dtype!r} as a numpy dtype; only plain numeric dtypes are allowed")

    def _codecs_encode(self, obj: Any = None, encoding: Any = None, errors: Any = None) -> bytes:
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors is not None:
            raise self.refuse(f"it calls _codecs.encode with {type(obj).__name__}, {encoding!r}; only "
                              f"protocol-2 byte strings (latin1) are allowed")
        return obj.encode("latin1")

    def _bytes(self, *args: Any) -> bytes:
        if args:
            raise self.refuse("it calls bytes() with arguments; only the empty byte string is allowed")
        return b""

    # --- state and result checks --------------------------------------------------------------

    def _build(self, inst: Any, state: Any) -> None:
        if self._fresh_arrays.pop(id(inst), None) is not None:
            self._build_array(inst, state)
        elif self._fresh_dtypes.pop(id(inst), None) is not None:
            self._build_dtype(inst, state)
        elif type(inst) is TFNetworkRecord:
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise self.refuse("a TensorFlow network object has a malformed state")
            inst.__setstate__(state)
        else:
            super()._build(inst, state)

    def _build_array(self, arr: np.ndarray, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise self.refuse("it contains a malformed numpy array")
        shape, dtype, fortran, raw = state[-4:]
        self._check_np_dtype(dtype)
        if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS
                or not all(_is_int(s) and s >= 0 for s in shape)):
            raise self.refuse(f"it contains a numpy array of invalid shape {shape!r}")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * dtype.itemsize:
            raise self.refuse(f"it contains a numpy array whose data does not match its shape {shape}")
        arr.__setstate__((1, shape, dtype, bool(fortran), bytes(raw)))

    def _build_dtype(self, dt: np.dtype, state: Any) -> None:
        if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4)
                or state[1] not in ("<", ">", "|", "=") or state[2:5] != (None, None, None)
                or not all(_is_int(v) for v in state[5:8]) or state[7] & 1
                or (len(state) == 9 and state[8] is not None and not isinstance(state[8], dict))):
            raise self.refuse("it contains a numpy dtype with unsupported state (structures or objects)")
        dt.__setstate__(state)
        if dt.hasobject:
            raise self.refuse("it contains a numpy dtype that holds Python objects")

    def check_result(self, obj: Any) -> Any:
        if self._family == "TensorFlow":
            if not (isinstance(obj, tuple) and len(obj) == 3
                    and all(type(net) is TFNetworkRecord for net in obj)):
                raise self.refuse("it holds TensorFlow network objects but is not a (G, D, Gs) tuple")
            todo = list(obj)
            while todo:
                net = todo.pop()
                if not isinstance(getattr(net, "state", None), dict):
                    raise self.refuse("a TensorFlow network object has no state")
                if not isinstance(_plain(net.state.get("static_kwargs") or {}), dict):
                    raise self.refuse("a TensorFlow network has malformed static_kwargs")
                components = net.state.get("components") or {}
                if not isinstance(components, dict) or not all(
                        type(c) is TFNetworkRecord for c in components.values()):
                    raise self.refuse("a TensorFlow network has malformed components")
                todo.extend(components.values())
            return obj
        if _is_int(obj) and obj == _LEGACY_MAGIC:
            raise CheckpointError(f"cannot read {self.name}: it is a legacy torch.save() file, not a network pickle")
        if not isinstance(obj, (dict, PersistentRecord)):
            raise CheckpointError(f"cannot read {self.name}: it holds a {type(obj).__name__}, not a network "
                                  f"pickle (expected a dict with G, D, G_ema)")
        return obj

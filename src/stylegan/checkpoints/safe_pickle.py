"""Read NVIDIA's network pickles (StyleGAN2-ADA-pytorch, StyleGAN3, legacy TensorFlow) as inert data.

Threat model: a ``.pkl`` is a program for the pickle virtual machine. A plain ``pickle.load`` imports and
calls whatever the file names (``posix.system``, ``builtins.eval``, ...), and NVIDIA's own loader goes
further: it ``exec``s the Python source stored inside the file (``module_src``). A downloaded model
file must therefore be treated as hostile: it may try to run code, crash the process, make it allocate
gigabytes, or hand it data that misleads later code. This reader (and :mod:`.torch_save`, built on the
same machinery) executes nothing from the file and keeps four rules (docs/security.md):

1. **Allow-list.** ``find_class`` resolves only the globals a network pickle needs (format notes §3.4);
   each is replaced by a local function that builds plain data: torch tensors, numpy arrays and
   scalars, dicts, lists, :class:`PersistentRecord` / :class:`TFNetworkRecord` placeholders.
   ``module_src`` is only searched for text markers; ``training_set_kwargs['class_name']`` stays a string.
2. **Nothing changes after it is handed on.** An object may receive items (APPEND(S), SETITEM(S),
   ADDITEMS) or its state (BUILD, once, and only for the placeholder types that need it) only until it
   has been put into another object or passed to a call. Arrays and dtypes are therefore built from
   validated plain data that can no longer change (a dtype rebuilt after an array used it would let
   numpy read past the array's buffer), and no object can contain itself.
3. **Bounded nesting.** The nesting depth of every container is tracked as it is built and anything
   deeper than :data:`MAX_NESTING` is refused before Python hashes, compares or copies it (a tuple
   nested a million deep as a dict key crashes CPython's hash in C).
4. **A budget.** Tensor and array data the reader makes (storage copies, strided or zero-stride views
   made contiguous, numpy arrays, byte strings) may total at most :data:`COPY_FACTOR` times the bytes
   read from the file so far plus :data:`COPY_SLACK`; the file is streamed through a reader that
   never asks the OS for more bytes than exist, so a forged length fails as "truncated".

We build on the pure-Python ``pickle._Unpickler`` (the reference implementation behind
``pickle.Unpickler``) because it lets us replace every opcode handler; the C unpickler allocates a
forged length before reading and cannot be restricted like this. NVIDIA pickles contain a few
hundred thousand opcodes at most, so the speed difference is negligible next to the tensor copies.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np
import torch

from stylegan.errors import CheckpointError

__all__ = ["PersistentRecord", "TFNetworkRecord", "read_pickle", "PERSISTENT_CLASS_NAMES", "MAX_NESTING",
           "COPY_FACTOR", "COPY_SLACK"]

PERSISTENT_CLASS_NAMES = frozenset({
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
    "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "Discriminator", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "MinibatchStdLayer", "SynthesisInput", "AugmentPipe",
})

#: Deepest container nesting accepted (an official StyleGAN3 pickle nests about 25 deep).
MAX_NESTING = 100
#: Tensor/array bytes a reader may make per byte read from the file (a storage copy, a contiguous
#: copy of a view, a protocol-2 byte string: each at most once in a real file) ...
COPY_FACTOR = 3
#: ... plus this much, so that tiny files with a few small views always load.
COPY_SLACK = 64 << 20

_PERSISTENCE_VERSION = 6
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_DIMS = 32
_MAX_DIM_SIZE = 1 << 40
_READ_CHUNK = 1 << 26
_MAX_LINE = 1 << 20
_NUMPY_KINDS = "biufc"            # bool, int, uint, float, complex: no objects, strings, structures, voids

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}

TORCH_DTYPES = {
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

    @property
    def version(self) -> Any:
        return self.state.get("version")

    @property
    def name(self) -> Any:
        return self.state.get("name")

    @property
    def static_kwargs(self) -> dict:
        return dict(self.state.get("static_kwargs") or {})

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
    budget = Budget(name)
    unpickler = _NetworkUnpickler(BoundedReader(f, budget, head), name, budget)
    return unpickler.check_result(run_unpickler(unpickler, name, "a valid network pickle"))


def run_unpickler(unpickler: "InertUnpickler", name: str, kind: str) -> Any:
    """``unpickler.load()`` with everything a malformed stream provokes turned into one CheckpointError."""
    try:
        return unpickler.load()
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
    except Exception as e:  # noqa: BLE001 - a malformed stream can raise anything inside the pickle machinery
        raise CheckpointError(f"cannot read {name}: it is truncated or not {kind} "
                              f"({type(e).__name__}: {str(e)[:200]})") from None
    finally:
        unpickler.release()


class Budget:
    """Tensor/array bytes one file may make: ``COPY_FACTOR`` x the bytes read from it so far + ``COPY_SLACK``."""

    def __init__(self, name: str):
        self.name = name
        self.read = 0
        self.spent = 0

    def charge(self, nbytes: int, what: str = "tensor data") -> None:
        self.spent += int(nbytes)
        allowed = COPY_FACTOR * self.read + COPY_SLACK
        if self.spent > allowed:
            raise CheckpointError(f"refusing to load {self.name}: it makes {_mb(self.spent)} of {what} from "
                                  f"{_mb(self.read)} of file (at most {COPY_FACTOR}x the file + "
                                  f"{_mb(COPY_SLACK)}); views, zero strides or shared storages inflate it "
                                  f"(the file is corrupt or malicious)")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class BoundedReader:
    """File wrapper that only ever requests bytes in bounded chunks (a forged length cannot allocate)
    and counts what it read into a :class:`Budget`."""

    def __init__(self, f: BinaryIO, budget: Budget, head: bytes = b""):
        self._f = f
        self._head = head
        self.budget = budget
        budget.read += len(head)

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
            self.budget.read += len(chunk)
            parts.append(chunk)
            n -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self) -> bytes:
        if b"\n" in self._head:
            line, _, self._head = self._head.partition(b"\n")
            return line + b"\n"
        line, self._head = self._head, b""
        rest = self._f.readline(_MAX_LINE)
        self.budget.read += len(rest)
        return line + rest


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


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Marker:
    """A whitelisted global that is only ever an argument, never something to call."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_NDARRAY = _Marker("numpy.ndarray")


class StructureRules:
    """Rules 2 and 3 of the module docstring over objects named by keys: a depth per container, which ones
    were handed to another object (and may no longer change), refusals through ``refuse``. Used by our
    unpicklers (keys: ``id`` of real objects) and by :func:`check_pickle_structure` (keys: opcode positions)."""

    def __init__(self, refuse: Callable[[str], Exception], what: str):
        self.refuse = refuse
        self.what = what
        self.depth: dict[int, int] = {}
        self.handed: set[int] = set()

    def new(self, key: int, depth: int) -> None:
        if depth > MAX_NESTING:
            raise self.refuse(f"{self.what} nests containers more than {MAX_NESTING} deep "
                              f"(the file is corrupt or malicious)")
        if depth > self.depth.get(key, -1):
            self.depth[key] = depth

    def hand(self, keys: list[int]) -> int:
        """Mark ``keys`` as handed to a new owner; returns the nesting depth of a container holding them."""
        depth = 0
        known, handed = self.depth, self.handed
        for key in keys:
            d = known.get(key)
            if d is not None:
                handed.add(key)
                if d > depth:
                    depth = d
        return depth + 1

    def fill(self, target: int, keys: list[int], kind: str) -> None:
        """``target`` (a container of ``kind``) receives ``keys``: only before it was handed on, never itself."""
        if target in self.handed:
            raise self.refuse(f"{self.what} changes a {kind} after it was put into another object, which a "
                              f"network pickle never does (the file may be malicious)")
        if target in keys:
            raise self.refuse(f"{self.what} puts a {kind} inside itself")
        self.new(target, self.hand(keys))


def check_pickle_structure(data: bytes, name: str, what: str = "the file") -> None:
    """Rules 2 and 3 on a pickle that another unpickler will build (TorchScript's, in C++), without building
    anything: the opcodes are simulated on a stack of object keys. CheckpointError when a rule is broken."""
    rules = StructureRules(lambda reason: CheckpointError(f"refusing to load {name}: {_one_line(reason)}"), what)
    stack: list[int] = []
    marks: list[int] = []
    memo: dict = {}

    def new(depth: int, pos: int) -> None:
        rules.new(pos, depth)
        stack.append(pos)

    def take(n: int | None) -> list[int]:
        start = marks.pop() if n is None else len(stack) - n
        items = stack[start:]
        del stack[start:]
        return items

    try:
        for op, arg, pos in pickletools.genops(data):
            code = op.code
            if code == "(":                                          # MARK
                marks.append(len(stack))
            elif code in ")]}\x8f":                                 # EMPTY_TUPLE/LIST/DICT/SET
                new(1, pos)
            elif code in "tld\x91" or code in ("i", "o"):           # TUPLE LIST DICT FROZENSET INST OBJ
                new(rules.hand(take(None)), pos)
            elif code in "\x85\x86\x87":                          # TUPLE1-3
                new(rules.hand(take(ord(code) - 0x84)), pos)
            elif code in "asb":                                      # APPEND SETITEM BUILD
                items = take(2 if code == "s" else 1)
                rules.fill(stack[-1], items, "container")
            elif code in "eu\x90":                                  # APPENDS SETITEMS ADDITEMS
                items = take(None)
                rules.fill(stack[-1], items, "container")
            elif code in "R\x81Q":                                  # REDUCE NEWOBJ BINPERSID
                new(rules.hand(take(1)), pos) if code == "Q" else new(rules.hand(take(2)[1:]), pos)
            elif code == "\x92":                                    # NEWOBJ_EX
                new(rules.hand(take(3)[1:]), pos)
            elif code in "pqr":                                      # PUT BINPUT LONG_BINPUT
                memo[arg] = stack[-1]
            elif code == "\x94":                                    # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif code in "ghj":                                      # GET BINGET LONG_BINGET
                stack.append(memo[arg])
            elif code == "0":                                        # POP
                take(1) if stack and (not marks or marks[-1] < len(stack)) else marks.pop()
            elif code == "1":                                        # POP_MARK
                take(None)
            elif code == "2":                                        # DUP
                stack.append(stack[-1])
            elif code == "\x93":                                    # STACK_GLOBAL
                take(2)
                stack.append(pos)
            elif code == ".":
                break
            elif op.stack_after and code not in "\x98":             # a leaf (numbers, strings, globals, ...)
                stack.append(pos)
    except CheckpointError:
        raise
    except (ValueError, IndexError, KeyError, struct.error) as e:
        raise CheckpointError(f"cannot read {name}: {what} is not a valid pickle ({_one_line(str(e), 200)})") from None


def _tracked_dispatch(base: dict) -> dict:
    """The pure-Python unpickler's dispatch table with every opcode that builds, fills or calls something
    routed through :class:`InertUnpickler`'s nesting and hand-off checks (rules 2 and 3)."""
    table = dict(base)

    def put(opcode: bytes, handler: Callable) -> None:
        table[opcode[0]] = handler

    def made(make: Callable) -> Callable:
        def load(self):
            items = self.pop_mark()
            self.append(self._new(make(items), self._hand(items)))
        return load

    def made_from_top(n: int) -> Callable:
        def load(self):
            items = self.stack[-n:]
            del self.stack[-n:]
            self.append(self._new(tuple(items), self._hand(items)))
        return load

    def load_dict(self):
        items = self.pop_mark()
        depth = self._hand(items)
        self.append(self._new({items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)}, depth))

    def load_append(self):
        value = self.stack.pop()
        self._fill(list, [value]).append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._fill(list, items).extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._fill(dict, [key, value])[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._fill(dict, items)
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        self._fill(set, items).update(items)

    def load_reduce(self):
        args = self.stack.pop()
        depth = self._hand([args])
        self.stack[-1] = self._new(self._call(self.stack[-1], args), depth)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        depth = self._hand([args])
        self.append(self._new(self._newobj(cls, args), depth))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        self._fill(object, [state], building=True)
        self._build(inst, state)

    def load_binpersid(self):
        pid = self.stack.pop()
        depth = self._hand([pid])
        self.append(self._new(self.persistent_load(pid), depth))

    def load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)
        if len(data) != n:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(bytearray(data))

    def never(name: str) -> Callable:
        def load(self):
            raise self.refuse(f"{self.what} uses the pickle opcode {name}, which network files never use "
                              f"(the file may be malicious)")
        return load

    put(pickle.EMPTY_TUPLE, lambda self: self.append(self._new((), 1)))
    put(pickle.EMPTY_LIST, lambda self: self.append(self._new([], 1)))
    put(pickle.EMPTY_DICT, lambda self: self.append(self._new({}, 1)))
    put(pickle.EMPTY_SET, lambda self: self.append(self._new(set(), 1)))
    put(pickle.TUPLE, made(tuple))
    put(pickle.LIST, made(list))
    put(pickle.FROZENSET, made(frozenset))
    put(pickle.TUPLE1, made_from_top(1))
    put(pickle.TUPLE2, made_from_top(2))
    put(pickle.TUPLE3, made_from_top(3))
    put(pickle.DICT, load_dict)
    put(pickle.APPEND, load_append)
    put(pickle.APPENDS, load_appends)
    put(pickle.SETITEM, load_setitem)
    put(pickle.SETITEMS, load_setitems)
    put(pickle.ADDITEMS, load_additems)
    put(pickle.REDUCE, load_reduce)
    put(pickle.NEWOBJ, load_newobj)
    put(pickle.BUILD, load_build)
    put(pickle.BINPERSID, load_binpersid)
    put(pickle.BYTEARRAY8, load_bytearray8)
    for name in ("OBJ", "INST", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "DUP", "NEXT_BUFFER", "READONLY_BUFFER",
                 "PERSID"):
        put(getattr(pickle, name), never(name))
    return table


class InertUnpickler(pickle._Unpickler):
    """Base restricted unpickler: no globals, no persistent ids, no state-setting; tracks the nesting depth
    and the hand-off of every object it builds (see the module docstring)."""

    dispatch = _tracked_dispatch(pickle._Unpickler.dispatch)
    what = "the file"
    #: Types whose instances may receive one BUILD (each subclass adds the placeholders it creates).
    buildable: tuple[type, ...] = ()
    #: Classes NEWOBJ may instantiate (with no arguments).
    newable: tuple[type, ...] = ()

    def __init__(self, file: Any, name: str, what: str | None = None, budget: Budget | None = None):
        super().__init__(file, encoding="ASCII")
        self.name = name
        self.budget = budget if budget is not None else Budget(name)
        if what is not None:
            self.what = what
        self.rules = StructureRules(self.refuse, self.what)
        self._built: set[int] = set()
        self._alive: list = []                 # keeps every tracked object alive so that its id stays unique
        self._callables: set[int] = set()

    def refuse(self, reason: str) -> CheckpointError:
        return CheckpointError(f"refusing to load {self.name}: {_one_line(reason)}")

    def release(self) -> None:
        """Drop the references this unpickler holds (memo, stack, tracking), once the result is out."""
        self.memo.clear()
        self._alive.clear()
        self.rules = StructureRules(self.refuse, self.what)
        self.stack = self.metastack = []

    def find_class(self, module: str, name: str) -> Any:
        raise self.refuse(f"{self.what} asks to import '{module}.{name}', which a network pickle "
                          f"never needs (the file may be malicious)")

    def allow(self, value: Any) -> Any:
        """Mark a value ``find_class`` returns as one REDUCE may call."""
        self._callables.add(id(value))
        self._alive.append(value)
        return value

    def persistent_load(self, pid: Any) -> Any:
        raise self.refuse(f"{self.what} contains a persistent-id reference, which NVIDIA's network "
                          f"pickles never use (the file may be malicious or not a network pickle)")

    def _new(self, obj: Any, depth: int) -> Any:
        key = id(obj)
        if key not in self.rules.depth:
            self._alive.append(obj)
        self.rules.new(key, depth)
        return obj

    def _hand(self, items: list) -> int:
        return self.rules.hand([id(item) for item in items])

    def _fill(self, kind: type, items: list, building: bool = False) -> Any:
        """The object on top of the stack, about to receive ``items`` (or its BUILD state)."""
        target = self.stack[-1]
        key = id(target)
        if building:
            if not isinstance(target, self.buildable) or key in self._built:
                raise self.refuse(f"{self.what} sets the state of an object of type {_kind(target)}"
                                  f"{' a second time' if key in self._built else ''}, which a network pickle "
                                  f"never does (the file may be malicious)")
            self._built.add(key)
        elif not isinstance(target, kind) or type(target) not in (list, dict, set):
            raise self.refuse(f"{self.what} adds items to an object of type {type(target).__name__}, "
                              f"which a network pickle never does (the file may be malicious)")
        if key not in self.rules.depth:
            raise self.refuse(f"{self.what} changes an object it did not build")
        self.rules.fill(key, [id(item) for item in items], _kind(target))
        return target

    def _call(self, func: Any, args: Any) -> Any:
        if id(func) not in self._callables or not isinstance(args, tuple):
            raise self.refuse(f"{self.what} calls {short_repr(func)}, which is not something a network pickle calls "
                              f"(the file may be malicious)")
        return func(*args)

    def _newobj(self, cls: Any, args: Any) -> Any:
        if not (isinstance(cls, type) and cls in self.newable) or args != ():
            raise self.refuse(f"{self.what} creates an object of {short_repr(cls)}, which a network pickle never does "
                              f"(the file may be malicious)")
        return cls.__new__(cls)

    def _build(self, inst: Any, state: Any) -> None:
        raise self.refuse(f"{self.what} sets the state of an object of type {type(inst).__name__}, which "
                          f"a network pickle never does (the file may be malicious)")

    def _ordered_dict(self, items: Any = ()) -> dict:
        """``collections.OrderedDict([(key, value), ...])`` as a plain dict (insertion order is kept)."""
        if not isinstance(items, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                                           for p in items):
            raise self.refuse(f"{self.what} builds an OrderedDict from a {type(items).__name__}")
        return dict(items)

    def _codecs_encode(self, obj: Any = None, encoding: Any = None, errors: Any = None) -> bytes:
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors is not None:
            raise self.refuse(f"{self.what} calls _codecs.encode with {type(obj).__name__}, {encoding!r}; only "
                              f"protocol-2 byte strings (latin1) are allowed")
        self.budget.charge(len(obj), "byte strings")
        return obj.encode("latin1")


# ---------------------------------------------------------------------------------------------------------
# Tensors: storages and views.

class Storage:
    """A storage read from a file: a flat tensor of its element type (``pending`` before its data is read)."""

    __slots__ = ("data", "untyped", "pending")

    def __init__(self, data: torch.Tensor, untyped: bool, pending: bool = False):
        self.data = data
        self.untyped = untyped
        self.pending = pending


class StorageType:
    __slots__ = ("dtype", "untyped")

    def __init__(self, dtype: torch.dtype, untyped: bool):
        self.dtype = dtype
        self.untyped = untyped


def storage_type(module: str, name: str) -> StorageType | None:
    """``torch.FloatStorage`` & co. (and ``UntypedStorage``) as the inert marker persistent ids carry."""
    if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
        return StorageType(_STORAGE_DTYPES[name], untyped=False)
    if (module, name) in (("torch.storage", "UntypedStorage"), ("torch", "UntypedStorage")):
        return StorageType(torch.uint8, untyped=True)
    return None


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


class TensorRebuilder:
    """``torch._utils._rebuild_*`` as bounds-checked, budgeted views over parsed storages (a mixin for
    :class:`InertUnpickler` subclasses)."""

    def tensor_globals(self) -> dict:
        out = {
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
        }
        out.update({("torch", n): dt for n, dt in TORCH_DTYPES.items()})
        return out

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

    def _elements(self, storage: Storage, dtype: torch.dtype | None) -> torch.Tensor:
        if dtype is None or dtype == storage.data.dtype:
            return storage.data
        data = storage.data
        if data.dtype == torch.bool:
            self.budget.charge(data.numel())
            data = data.to(torch.uint8)
        raw = data.view(torch.uint8)
        itemsize = element_size(dtype)
        if raw.numel() % itemsize:
            raise self.refuse(f"a storage of {raw.numel()} bytes cannot hold {dtype} elements")
        if dtype == torch.bool:
            self.budget.charge(raw.numel())
            return raw.ne(0)
        return raw.view(dtype)

    def _view(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None) -> torch.Tensor:
        """``as_strided`` over the parsed storage, bounds-checked, as a contiguous tensor (budgeted)."""
        if not isinstance(storage, Storage):
            raise self.refuse(f"it rebuilds a tensor from a {type(storage).__name__} instead of a storage")
        if storage.untyped and dtype is None:
            dtype = torch.uint8
        if isinstance(size, torch.Size):
            size = tuple(size)
        if (not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list))
                or len(size) != len(stride) or len(size) > _MAX_DIMS
                or not all(_is_int(v) and 0 <= v < _MAX_DIM_SIZE for v in (*size, *stride))
                or not _is_int(offset) or not 0 <= offset < _MAX_DIM_SIZE):
            raise self.refuse(f"it rebuilds a tensor with invalid geometry (offset {short_repr(offset)}, "
                              f"size {short_repr(size)}, stride {short_repr(stride)})")
        if storage.pending:
            return torch.empty(0)
        flat = self._elements(storage, dtype)
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
        contiguous = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
        if offset == 0 and numel == available and all(
                st == c for s, st, c in zip(size, stride, contiguous) if s != 1):
            return flat.view(size)
        self.budget.charge(numel * flat.element_size())
        return torch.as_strided(flat, size, stride, offset).clone(memory_format=torch.contiguous_format)


class _StorageHeaderUnpickler(InertUnpickler):
    """The persistent ids of a legacy ``torch.save`` stream: ``('storage', <Type>Storage, key, location,
    numel, view)``. Pass 1 (``storages=None``) collects them; pass 2 hands out the storages read since."""

    what = "a tensor storage"

    def __init__(self, file: Any, name: str, budget: Budget, storages: dict | None):
        super().__init__(file, name, budget=budget)
        self.storages = storages
        self.pids: dict[str, tuple[StorageType, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = storage_type(module, name)
        return found if found is not None else super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise self.refuse(f"{self.what} has a malformed storage record")
        kind, key, _location, numel = pid[1:5]
        if not isinstance(kind, StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise self.refuse(f"{self.what} has a malformed storage record")
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError(f"cannot read {self.name}: it uses storage views of pre-1.0 torch, "
                                  f"which are not supported")
        known = self.pids.setdefault(key, (kind, numel))
        if known[0].dtype != kind.dtype or known[1] != numel:
            raise self.refuse(f"{self.what} describes storage {short_repr(key)} in two different ways")
        if self.storages is None:
            return Storage(torch.empty(0, dtype=kind.dtype), kind.untyped, pending=True)
        return self.storages[key]


def read_legacy_torch(f: BinaryIO, name: str, budget: Budget, main: type, what: str = "a tensor storage") -> Any:
    """A legacy (non-zip) ``torch.save`` stream from a seekable file: magic, protocol, system info, the main
    pickle (whose persistent ids name storages), the key list, then each storage's element count and data.

    ``main`` is the unpickler class of the main pickle (a :class:`_StorageHeaderUnpickler` subclass). The
    main pickle is read twice: once to learn its storages, once, after their data, to build its tensors
    (a main pickle that is one storage, as in the blobs inside network pickles, is returned directly).
    """
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"cannot read {name}: {what} is corrupt ({why})")

    parts = InertUnpickler(f, name, what, budget)
    first = main(f, name, budget, None)
    try:
        if parts.load() != _LEGACY_MAGIC:
            raise bad("wrong magic number")
        if parts.load() != _LEGACY_PROTOCOL:
            raise bad("unknown serialization protocol")
        sys_info = parts.load()
        if not isinstance(sys_info, dict):
            raise bad("no system-info header")
        if sys_info.get("little_endian") is not True:
            raise CheckpointError(f"cannot read {name}: it holds big-endian tensor data, which is not supported")
        start = f.tell()
        obj = first.load()
        keys = parts.load()
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - as in run_unpickler: a malformed header can raise anything
        raise bad(f"{type(e).__name__}: {str(e)[:200]}") from None
    finally:
        parts.release()
        first.release()
    if (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
            or sorted(keys) != sorted(first.pids) or len(set(keys)) != len(keys)):
        raise bad("its storage key list does not match its storage records")
    storages = {}
    for key in keys:
        kind, numel = first.pids[key]
        count_bytes = f.read(8)
        if len(count_bytes) != 8:
            raise bad("missing element count")
        (count,) = struct.unpack("<q", count_bytes)
        if count != numel:
            raise bad(f"header says {numel} elements, data block says {count}")
        nbytes = count * element_size(kind.dtype)
        if _remaining(f) < nbytes:
            raise bad(f"{numel} elements need {nbytes} bytes, the file holds {_remaining(f)}")
        storages[key] = _storage_from_bytes(_read_new(f, nbytes, budget), kind)
    if _remaining(f):
        raise bad(f"{_remaining(f)} bytes follow the last storage")
    if isinstance(obj, Storage) and len(keys) == 1:
        return storages[keys[0]]
    end = f.tell()
    f.seek(start)
    obj = run_unpickler(main(f, name, budget, storages), name, "a torch file")
    f.seek(end)
    return obj


def _remaining(f: BinaryIO) -> int:
    here = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(here)
    return end - here


def _read_new(f: BinaryIO, nbytes: int, budget: Budget) -> bytearray:
    budget.charge(nbytes)
    buf = bytearray(nbytes)
    if f.readinto(buf) != nbytes:
        raise EOFError("the data ends early")
    return buf


def _storage_from_bytes(data: bytearray, kind: StorageType) -> Storage:
    if not data:
        return Storage(torch.empty(0, dtype=kind.dtype), kind.untyped)
    if kind.dtype == torch.bool:
        return Storage(torch.frombuffer(data, dtype=torch.uint8).ne(0), kind.untyped)
    return Storage(torch.frombuffer(data, dtype=kind.dtype), kind.untyped)


class _BlobUnpickler(_StorageHeaderUnpickler):
    """The main pickle of a storage blob: exactly one persistent id, the storage itself."""

    def persistent_load(self, pid: Any) -> Any:
        storage = super().persistent_load(pid)
        if len(self.pids) > 1:
            raise self.refuse("a tensor storage refers to more than one storage")
        return storage


def _load_storage_blob(blob: Any, name: str, budget: Budget) -> Storage:
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
    storage = read_legacy_torch(io.BytesIO(blob), name, budget, _BlobUnpickler)
    if not isinstance(storage, Storage):
        raise CheckpointError(f"cannot read {name}: a tensor storage is corrupt (no storage record)")
    return storage


# ---------------------------------------------------------------------------------------------------------
# numpy.

class NumpyDType:
    """``numpy.dtype(str, align, copy)`` as inert data: a plain numeric dtype and, after its one BUILD, a byte
    order. The real ``np.dtype`` is made when an array or scalar needs it; the pickle never holds it."""

    __slots__ = ("base", "byteorder")

    def __init__(self, base: np.dtype):
        self.base = base
        self.byteorder = "="

    def resolve(self) -> np.dtype:
        if self.byteorder in "<>" and self.base.itemsize > 1:
            return self.base.newbyteorder(self.byteorder)
        return self.base

    def __repr__(self) -> str:
        return f"dtype({self.base.str!r})"


class NumpyBuilder:
    """numpy's pickle globals (dtype, ndarray reconstruction, scalars, protocol-5 buffers) as checked
    builders of plain numeric data (a mixin for :class:`InertUnpickler` subclasses)."""

    def numpy_globals(self) -> dict:
        out = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): self._np_dtype}
        for core in ("numpy.core", "numpy._core"):
            out[(f"{core}.multiarray", "_reconstruct")] = self._np_reconstruct
            out[(f"{core}.multiarray", "scalar")] = self._np_scalar
            out[(f"{core}.numeric", "_frombuffer")] = self._np_frombuffer
        return out

    def _np_dtype(self, obj: Any = None, align: Any = False, copy: Any = False) -> NumpyDType:
        if not isinstance(obj, str) or len(obj) > 32:
            raise self.refuse(f"it builds a numpy dtype from a {type(obj).__name__}")
        try:
            dt = np.dtype(obj)
        except (TypeError, ValueError, SyntaxError) as e:
            raise self.refuse(f"it builds an invalid numpy dtype {short_repr(obj)} ({e})") from None
        if dt.kind not in _NUMPY_KINDS or dt.fields is not None or dt.subdtype is not None or dt.hasobject:
            raise self.refuse(f"it builds the numpy dtype {short_repr(obj)}, which can hold Python objects, strings or "
                              f"structures; network pickles only hold plain numbers")
        return NumpyDType(dt)

    def _np_reconstruct(self, subtype: Any = None, shape: Any = None, typecode: Any = None) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise self.refuse(f"it reconstructs a numpy array of type {short_repr(subtype)}; only plain "
                              f"ndarrays are allowed")
        return np.empty((0,), dtype=np.int8)

    def _np_shape(self, shape: Any) -> tuple:
        if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS
                or not all(_is_int(s) and 0 <= s < _MAX_DIM_SIZE for s in shape)):
            raise self.refuse(f"it contains a numpy array of invalid shape {short_repr(shape)}")
        return shape

    def _np_frombuffer(self, buf: Any = None, dtype: Any = None, shape: Any = None, order: Any = "C") -> np.ndarray:
        """Protocol-5 numpy arrays (in-band buffers), as Python 3.14's default protocol writes them."""
        dt = self._np_resolve(dtype)
        shape = self._np_shape(shape)
        if (order not in ("C", "F") or not isinstance(buf, (bytes, bytearray))
                or len(buf) != math.prod(shape) * dt.itemsize):
            raise self.refuse(f"it contains a numpy array whose data does not match its shape {short_repr(shape)}")
        self.budget.charge(len(buf), "array data")
        return np.frombuffer(buf, dtype=dt).reshape(shape, order=order).copy(order="K")

    def _np_scalar(self, dtype: Any = None, raw: Any = None) -> np.generic:
        dt = self._np_resolve(dtype)
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != dt.itemsize:
            raise self.refuse(f"it builds a numpy {dt} scalar from malformed data")
        return np.frombuffer(bytes(raw), dtype=dt, count=1)[0]

    def _np_resolve(self, dtype: Any) -> np.dtype:
        if not isinstance(dtype, NumpyDType):
            raise self.refuse(f"it uses {type(dtype).__name__} as a numpy dtype; only plain numeric dtypes "
                              f"are allowed")
        return dtype.resolve()

    def build_numpy(self, inst: Any, state: Any) -> bool:
        """BUILD of a fresh array or dtype; False for any other object."""
        if type(inst) is np.ndarray:
            self._build_array(inst, state)
        elif type(inst) is NumpyDType:
            self._build_dtype(inst, state)
        else:
            return False
        return True

    def _build_array(self, arr: np.ndarray, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise self.refuse("it contains a malformed numpy array")
        shape, dtype, fortran, raw = state[-4:]
        dt = self._np_resolve(dtype)
        shape = self._np_shape(shape)
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * dt.itemsize:
            raise self.refuse(f"it contains a numpy array whose data does not match its shape {shape}")
        self.budget.charge(len(raw), "array data")
        arr.__setstate__((1, shape, dt, bool(fortran), bytes(raw)))

    def _build_dtype(self, dt: NumpyDType, state: Any) -> None:
        base = dt.base
        if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4)
                or state[1] not in ("<", ">", "|", "=") or state[2:5] != (None, None, None)
                or not all(_is_int(v) for v in state[5:8])
                or state[5] not in (-1, base.itemsize) or state[6] not in (-1, base.alignment)
                or state[7] not in (0, base.flags)
                or (len(state) == 9 and state[8] not in (None, {}))):
            raise self.refuse(f"it contains a numpy {base} dtype with unsupported state (sizes, structures "
                              f"or objects)")
        dt.byteorder = state[1]


# ---------------------------------------------------------------------------------------------------------
# The network pickle.

class _NetworkUnpickler(TensorRebuilder, NumpyBuilder, InertUnpickler):
    """The outer stream: the whitelist of format notes §3.4, every entry returning inert data."""

    buildable = (np.ndarray, NumpyDType, TFNetworkRecord)
    newable = (dict, TFNetworkRecord)

    def __init__(self, file: Any, name: str, budget: Budget):
        super().__init__(file, name, budget=budget)
        self._family: str | None = None
        torch_family = {("torch_utils.persistence", "_reconstruct_persistent_obj"): self._persistent_obj,
                        ("torch.storage", "_load_from_bytes"): self._load_from_bytes, **self.tensor_globals()}
        self._globals: dict[tuple[str, str], tuple[str | None, Any]] = {
            key: ("PyTorch", value) for key, value in torch_family.items()}
        self._globals[("dnnlib.tflib.network", "Network")] = ("TensorFlow", TFNetworkRecord)
        neutral = {
            ("dnnlib.util", "EasyDict"): dict,                   # EasyDict and OrderedDict come back as dicts
            ("collections", "OrderedDict"): self._ordered_dict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "bytes"): self._bytes,
            ("_codecs", "encode"): self._codecs_encode,
            **self.numpy_globals(),
        }
        self._globals.update({key: (None, value) for key, value in neutral.items()})

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
        return self.allow(value) if callable(value) and value not in (dict, TFNetworkRecord) else value

    def _persistent_obj(self, meta: Any = None, *extra: Any) -> PersistentRecord:
        if extra or not isinstance(meta, dict):
            raise self.refuse("it contains a malformed persistent network object")
        if meta.get("type") != "class":
            raise self.refuse(f"it contains a persistent object of type {short_repr(meta.get('type'))} "
                              f"(only 'class' is known)")
        version = meta.get("version")
        if not _is_int(version) or version != _PERSISTENCE_VERSION:
            raise self.refuse(f"it uses persistence format version {short_repr(version)}; only "
                              f"{_PERSISTENCE_VERSION} is known")
        class_name = meta.get("class_name")
        if not isinstance(class_name, str):
            raise self.refuse("it contains a persistent object without a class name")
        if class_name not in PERSISTENT_CLASS_NAMES:
            raise self.refuse(f"it contains a network class {short_repr(class_name)}, which is not one of NVIDIA's "
                              f"StyleGAN2/StyleGAN3 classes (a fork's network?)")
        module_src = meta.get("module_src")
        state = meta.get("state")
        if not isinstance(module_src, str) or not isinstance(state, dict):
            raise self.refuse(f"its {class_name} object has no source text or no state dict")
        if not all(isinstance(k, str) for k in state):
            raise self.refuse(f"its {class_name} state has non-string keys")

        parameters, _ = self._tensor_table(state.get("_parameters"), class_name, "_parameters")
        buffers, none_buffers = self._tensor_table(state.get("_buffers"), class_name, "_buffers")
        raw_modules = state.get("_modules") or {}
        if not isinstance(raw_modules, dict):
            raise self.refuse(f"its {class_name}._modules is a {type(raw_modules).__name__}")
        modules = {}
        for key, child in raw_modules.items():
            if child is None:
                continue
            if not isinstance(key, str) or not isinstance(child, PersistentRecord):
                raise self.refuse(f"its {class_name}._modules[{short_repr(key)}] is a {type(child).__name__}, "
                                  f"not a network object")
            modules[key] = child
        training = state.get("training", False)
        if not isinstance(training, (bool, np.bool_)):
            raise self.refuse(f"its {class_name}.training is a {type(training).__name__}")
        init_kwargs = state.get("_init_kwargs") or {}
        init_args = state.get("_init_args") or ()
        if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
            raise self.refuse(f"its {class_name} constructor arguments are malformed")
        non_persistent = state.get("_non_persistent_buffers_set") or set()
        return PersistentRecord(
            class_name=class_name, module_kind=_module_kind(class_name, module_src, state),
            attrs={k: v for k, v in state.items() if k not in _MODULE_KEYS and not _HOOKS_KEY.match(k)},
            parameters=parameters, buffers=buffers, none_buffers=none_buffers, modules=modules,
            init_kwargs=dict(init_kwargs), training=bool(training), init_args=tuple(init_args),
            non_persistent_buffers={k for k in non_persistent if isinstance(k, str)}
            if isinstance(non_persistent, (set, frozenset, list, tuple)) else set())

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
                raise self.refuse(f"its {class_name}.{what}[{short_repr(key)}] is a {type(value).__name__}, "
                                  f"not a tensor")
        return tensors, nones

    def _load_from_bytes(self, blob: Any = None, *extra: Any) -> Storage:
        if extra:
            raise self.refuse("it calls torch.storage._load_from_bytes with extra arguments")
        return _load_storage_blob(blob, self.name, self.budget)

    def _bytes(self, *args: Any) -> bytes:
        if args:
            raise self.refuse("it calls bytes() with arguments; only the empty byte string is allowed")
        return b""

    def _build(self, inst: Any, state: Any) -> None:
        if self.build_numpy(inst, state):
            return
        if type(inst) is TFNetworkRecord:
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise self.refuse("a TensorFlow network object has a malformed state")
            inst.state = dict(state)
        else:
            super()._build(inst, state)

    def check_result(self, obj: Any) -> Any:
        if self._family == "TensorFlow":
            if not (isinstance(obj, tuple) and len(obj) == 3
                    and all(type(net) is TFNetworkRecord for net in obj)):
                raise self.refuse("it holds TensorFlow network objects but is not a (G, D, Gs) tuple")
            todo = list(obj)
            while todo:
                net = todo.pop()
                if not isinstance(net.state.get("static_kwargs") or {}, dict):
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


def _kind(obj: Any) -> str:
    """A type name for messages (the placeholders as what they stand for)."""
    return {NumpyDType: "numpy dtype", np.ndarray: "numpy array"}.get(type(obj), type(obj).__name__)


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` for error messages: one line, at most ``limit`` characters, safe for huge ints and containers."""
    if isinstance(value, (dict, list, tuple, set, frozenset, torch.Tensor, np.ndarray)) and len(value) > 8:
        return f"<a {type(value).__name__} of {len(value)} items>"
    try:
        text = _one_line(repr(value))
    except (ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."

"""Crafted hostile files, one generator per class of issue #13 (a few KB each).

Every function writes real files that the unhardened readers crashed on, allocated gigabytes for, or
answered with a traceback; the hand-written tests load them through the API, the CLI and the web
explorer, and the fuzzer (tests/fuzz) starts some of its mutations from them. Pickle streams that no
pickler writes (an object changed after it was used, containers nested a million deep) are assembled
opcode by opcode with :class:`Ops`.
"""

from __future__ import annotations

import collections
import copy
import io
import json
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from support.official_pickle import (REBUILD_TENSOR_V2, Call, Global, Record, TFNetwork, _Blob, dumps_official,
                                     legacy_storage_blob, official_records_from_flat)

od = collections.OrderedDict


class Ops:
    """A pickle stream written opcode by opcode (protocol 2 opcodes only, as NVIDIA's oldest files)."""

    def __init__(self):
        self.parts = [pickle.PROTO + b"\x02"]

    def raw(self, data: bytes) -> "Ops":
        self.parts.append(data)
        return self

    def glob(self, module: str, name: str) -> "Ops":
        return self.raw(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def str(self, text: str) -> "Ops":
        data = text.encode()
        return self.raw(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)

    def bytes(self, data: bytes) -> "Ops":
        encoded = data.decode("latin1")                  # protocol 2 spells bytes as _codecs.encode(str, 'latin1')
        return self.glob("_codecs", "encode").str(encoded).str("latin1").raw(pickle.TUPLE2 + pickle.REDUCE)

    def int(self, value: int) -> "Ops":
        return self.raw(pickle.BININT + struct.pack("<i", value))

    def put(self, index: int) -> "Ops":
        return self.raw(pickle.BINPUT + bytes([index]))

    def get(self, index: int) -> "Ops":
        return self.raw(pickle.BINGET + bytes([index]))

    def dump(self) -> bytes:
        return b"".join(self.parts) + pickle.STOP


def _dtype(ops: Ops, spec: str, memo: int, build: bool = True) -> Ops:
    ops.glob("numpy", "dtype").str(spec).raw(pickle.NEWFALSE + pickle.NEWTRUE + pickle.TUPLE3 + pickle.REDUCE).put(memo)
    if build:
        ops.raw(pickle.MARK).int(3).str("|" if spec in ("S8", "u1") else "<")
        ops.raw(pickle.NONE * 3).int(-1).int(-1).int(0).raw(pickle.TUPLE + pickle.BUILD)
    return ops


def _array(ops: Ops, shape: tuple, dtype_memo: int, raw: bytes) -> Ops:
    ops.glob("numpy.core.multiarray", "_reconstruct").glob("numpy", "ndarray")
    ops.int(0).raw(pickle.TUPLE1).bytes(b"b").raw(pickle.TUPLE3 + pickle.REDUCE)
    ops.raw(pickle.MARK).int(1)
    ops.raw(pickle.MARK)
    for s in shape:
        ops.int(s)
    ops.raw(pickle.TUPLE).get(dtype_memo).raw(pickle.NEWFALSE).bytes(raw).raw(pickle.TUPLE + pickle.BUILD)
    return ops


def dtype_rebuilt_after_use(kind: str = "f4") -> bytes:
    """``{'x': array}`` whose dtype is BUILT again (larger element size) after the array took it: numpy then
    reads past the array's buffer (a segfault, or heap bytes in the result)."""
    ops = Ops().raw(pickle.EMPTY_DICT).str("x")
    _dtype(ops, kind, 1, build=False)
    ops.raw(pickle.POP)
    _array(ops, (2,), 1, b"A" * (2 * np.dtype(kind).itemsize))
    ops.raw(pickle.SETITEM)
    ops.get(1).raw(pickle.MARK).int(3).str("|").raw(pickle.NONE * 3).int(1 << 16).int(1).int(0)
    ops.raw(pickle.TUPLE + pickle.BUILD + pickle.POP)
    return ops.dump()


def dtype_built_twice() -> bytes:
    ops = Ops().raw(pickle.EMPTY_DICT).str("dt")
    _dtype(ops, "f4", 1)
    ops.raw(pickle.MARK).int(3).str(">").raw(pickle.NONE * 3).int(-1).int(-1).int(0).raw(pickle.TUPLE + pickle.BUILD)
    return ops.raw(pickle.SETITEM).dump()


def array_built_after_use() -> bytes:
    """An empty array put into a list first, then given its state (a 1M-element claim)."""
    ops = Ops().raw(pickle.EMPTY_DICT).str("x")
    _dtype(ops, "f4", 1).raw(pickle.POP)
    ops.glob("numpy.core.multiarray", "_reconstruct").glob("numpy", "ndarray")
    ops.int(0).raw(pickle.TUPLE1).bytes(b"b").raw(pickle.TUPLE3 + pickle.REDUCE).put(2)
    ops.raw(pickle.TUPLE1 + pickle.SETITEM)
    ops.get(2).raw(pickle.MARK).int(1).int(4).raw(pickle.TUPLE1).get(1).raw(pickle.NEWFALSE).bytes(b"\0" * 16)
    return ops.raw(pickle.TUPLE + pickle.BUILD + pickle.POP).dump()


def deep_tuple_key(depth: int = 1_000_000) -> bytes:
    """A dict whose key is a tuple nested ``depth`` deep: hashing it recursed in C until the stack overflowed."""
    return b"\x80\x02}" + pickle.EMPTY_TUPLE + pickle.TUPLE1 * depth + b"K\x01" + pickle.SETITEM + pickle.STOP


def deep_progress(depth: int = 200_000) -> bytes:
    """A valid-looking network pickle whose ``progress`` is a list nested ``depth`` deep (built by APPENDs)."""
    ops = Ops().raw(pickle.EMPTY_DICT).str("progress")
    ops.raw(pickle.EMPTY_LIST * (depth + 1) + pickle.APPEND * depth)
    return ops.raw(pickle.SETITEM).dump()


def self_containing_list() -> bytes:
    return Ops().raw(pickle.EMPTY_DICT).str("x").raw(pickle.EMPTY_LIST).put(1).get(1).raw(pickle.APPEND + pickle.SETITEM).dump()


def changed_after_handoff() -> bytes:
    """A dict put into a tuple, then given another item through the memo."""
    ops = Ops().raw(pickle.EMPTY_DICT).str("t").raw(pickle.EMPTY_DICT).put(1).raw(pickle.TUPLE1 + pickle.SETITEM)
    return ops.get(1).str("late").int(1).raw(pickle.SETITEM + pickle.POP).dump()


def _tensor_call(blob: _Blob, size: tuple, stride: tuple, offset: int = 0) -> Call:
    return Call(REBUILD_TENSOR_V2, (blob, offset, size, stride, False, od()))


def zero_stride_views(count: int = 200) -> bytes:
    """``count`` zero-stride views of one 6-element storage, 64 MB each: 800 bytes of file per 12 GB."""
    blob = _Blob(legacy_storage_blob(np.arange(6, dtype=np.float32).tobytes(), torch.float32))
    return dumps_official({"G": [_tensor_call(blob, (1 << 24,), (0,)) for _ in range(count)]})


def many_views_of_one_storage(count: int = 400) -> bytes:
    """Strided views (stride 2) of one 1M-element storage: each is made contiguous, 2 MB apiece."""
    blob = _Blob(legacy_storage_blob(np.zeros(1 << 20, dtype=np.float32).tobytes(), torch.float32))
    return dumps_official({"G": [_tensor_call(blob, (1 << 19,), (2,)) for _ in range(count)]})


def one_blob_parsed_many_times(count: int = 300) -> bytes:
    """The same 1 MB storage blob (memoized once) handed to ``_load_from_bytes`` ``count`` times."""
    blob = legacy_storage_blob(np.zeros(1 << 18, dtype=np.float32).tobytes(), torch.float32)
    calls = [Call(Global("torch.storage", "_load_from_bytes"), (blob,)) for _ in range(count)]
    return dumps_official({"G": [_tensor_call_raw(c) for c in calls]})


def _tensor_call_raw(storage_call: Call) -> Call:
    return Call(REBUILD_TENSOR_V2, (storage_call, 0, (1 << 18,), (1,), False, od()))


def tiny_official_generator(generation: str = "stylegan2", resolution: int = 16) -> Record:
    """A small official-layout Generator record (``resolution`` px, 8 channels) with real (random) weights."""
    from support.models import make_tiny_checkpoint
    ckpt = make_tiny_checkpoint(generation, resolution=resolution, channels=8, z_dim=8, w_dim=8)
    cfg = ckpt.G_ema.config
    flat = {k: v.numpy() for k, v in ckpt.G_ema.state_dict().items()}
    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, channel_base=cfg.synthesis.channel_base,
                  channel_max=cfg.synthesis.channel_max)
    if generation == "stylegan3":
        kwargs.update(num_layers=cfg.synthesis.num_layers, margin_size=cfg.synthesis.margin_size)
    return official_records_from_flat(flat, "Generator", kwargs,
                                      "stylegan3" if generation == "stylegan3" else "stylegan3-sg2")


def tiny_official_pickle(generation: str = "stylegan2", **top) -> bytes:
    return dumps_official({"G_ema": tiny_official_generator(generation), **top})


def official_with(path: str, value, generation: str = "stylegan2") -> bytes:
    """The tiny official pickle with one attribute replaced: ``path`` = 'synthesis.b8.conv1:conv_clamp'
    ('' before the colon: the Generator itself); ``value`` None-like ``...`` deletes the attribute."""
    rec = copy.deepcopy(tiny_official_generator(generation))
    where, _, attr = path.rpartition(":")
    target = rec
    for part in where.split(".") if where else ():
        target = target.modules[part]
    if value is ...:
        target.attrs.pop(attr, None)
    else:
        target.attrs[attr] = value
    return dumps_official({"G_ema": rec})


def official_claims_huge_dims() -> bytes:
    """Small tensors, attributes asking for z_dim = w_dim = 65536: an 8-GiB mapping network before the check."""
    rec = copy.deepcopy(tiny_official_generator())
    for target in (rec, rec.modules["mapping"]):
        target.attrs.update(z_dim=65536, w_dim=65536)
    return dumps_official({"G_ema": rec})


def official_zero_size_weights() -> bytes:
    """Conv weights of shape [2**20, 0, 3, 3] (no bytes): channel counts inferred from them are absurd."""
    rec = copy.deepcopy(tiny_official_generator())
    rec.modules["synthesis"].modules["b16"].modules["conv1"].parameters["weight"] = torch.empty(1 << 20, 0, 3, 3)
    return dumps_official({"G_ema": rec})


def native_file(header: dict, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    """A safetensors file with our ``stylegan`` metadata ``header`` (any JSON) and ``tensors``."""
    from safetensors.torch import save
    return save(tensors or {}, metadata={"stylegan": json.dumps(header)})


def native_header(generation: str = "stylegan2", **config) -> dict:
    cfg = {"generation": generation, "z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 8, "img_channels": 3,
           "mapping": {"num_layers": 1}, "synthesis": {"channel_base": 64, "channel_max": 8}}
    cfg.update(config)
    return {"format": "stylegan-native", "format_version": 1,
            "networks": {"G_ema": {"kind": "generator", "config": cfg}}}


def native_huge_architecture() -> bytes:
    """378 bytes asking for a 1024px generator with 16384 channels (9.6 GB for one layer)."""
    return native_file(native_header(img_resolution=1024, synthesis={"channel_base": 1 << 30, "channel_max": 1 << 14},
                                     z_dim=512, w_dim=512, mapping={}))


def tf_pickle(G: TFNetwork, D: TFNetwork | None = None) -> bytes:
    return dumps_official((G, D or TFNetwork("D"), G), protocol=3)


def tf_with_kwargs(**kwargs) -> bytes:
    from support.tf_nets import sg2_generator
    G = sg2_generator(extra_kwargs=None)
    G.static_kwargs.update(kwargs)
    return tf_pickle(G)


def tf_zero_size_variable() -> bytes:
    """A TF generator whose first conv weight is [3, 3, 0, 2**30] (no bytes) and whose 4x4 const claims 2**30."""
    from support.tf_nets import sg2_generator
    G = sg2_generator()
    syn = G.components["synthesis"]
    syn.variables = [(n, np.zeros((3, 3, 0, 1 << 30), np.float32) if n == "4x4/Conv/weight" else v)
                     for n, v in syn.variables]
    return tf_pickle(G)


def torch_zip(obj_pickle: bytes, storages: dict[str, bytes] | None = None, compress: bool = False) -> bytes:
    """A ``torch.save`` zip whose data.pkl is ``obj_pickle`` (storages under archive/data/KEY)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", obj_pickle)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def rosinality_deep_nesting(depth: int = 1_000_000) -> bytes:
    """torch.load(weights_only=True) hashed this nested tuple key in C until it segfaulted."""
    return torch_zip(deep_tuple_key(depth))


def rosinality_zero_stride(size: tuple = (1, 4096, 4096, 3, 3)) -> bytes:
    """A rosinality ``g_ema`` whose conv weight is a zero-stride ``size`` view of a 4-byte storage (2.4 GB)."""
    ops = Ops().raw(pickle.EMPTY_DICT).str("g_ema").raw(pickle.EMPTY_DICT).str("conv1.conv.weight")
    ops.glob("torch._utils", "_rebuild_tensor_v2").raw(pickle.MARK)
    ops.raw(pickle.MARK).str("storage").glob("torch", "FloatStorage").str("0").str("cpu").int(1).raw(pickle.TUPLE)
    ops.raw(pickle.BINPERSID).int(0)
    ops.raw(pickle.MARK)
    for s_ in size:
        ops.int(s_)
    ops.raw(pickle.TUPLE + pickle.MARK + b"K\x00" * len(size) + pickle.TUPLE + pickle.NEWFALSE)
    ops.glob("collections", "OrderedDict").raw(pickle.EMPTY_TUPLE + pickle.REDUCE)
    ops.raw(pickle.TUPLE + pickle.REDUCE + pickle.SETITEM + pickle.SETITEM)
    return torch_zip(ops.dump(), {"0": b"\0\0\0\0"})


def rosinality_lying_sizes() -> bytes:
    """A deflated storage member whose local header claims 4 bytes for 64 MB of zeros."""
    data = torch_zip(pickle.dumps({"g_ema": {}}, protocol=2), {"0": b"\0" * (64 << 20)}, compress=True)
    return data


def png(width: int, height: int, color_type: int = 0) -> bytes:
    """A PNG of ``width`` x ``height`` zeros, deflated: 30000 x 30000 greyscale is under 1 MB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + width * channels)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def npz(arrays: dict, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def npz_huge_header() -> bytes:
    """An .npz whose .npy header is 100 KB long (numpy refuses more than 10 KB as unsafe)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 8, 32), }".ljust(100_000) + "\n"
    body = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode() + b"\0" * (8 * 32 * 4)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ws.npy", body)
    return buf.getvalue()


def npz_false_crc() -> bytes:
    data = bytearray(npz({"ws": np.ones([1, 8, 32], np.float32)}))
    data[data.index(b"\x93NUMPY") + 200] ^= 0xFF           # one byte of the array data: the CRC no longer fits
    return bytes(data)


def npz_false_size() -> bytes:
    """A deflated member whose headers claim 128 bytes but which inflates to 4 MB (the CRC is of those 128)."""
    inner = npz({"ws": np.zeros([128, 8, 1024], np.float32)}, compress=True)
    return _patch_sizes(inner, 128)


def npz_shape_lies() -> bytes:
    """A .npy header claiming [2**20, 18, 512] for 512 bytes of data (numpy allocated 37 GB first)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 18, 512), }"
    header = header + " " * (63 - len(header) % 64) + "\n"
    body = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 512
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ws.npy", body)
    return buf.getvalue()


def npz_object_array() -> bytes:
    return npz({"ws": np.ones([1, 8, 32], np.float32), "labels": np.array([{"a": 1}], dtype=object)})


def _patch_sizes(zip_bytes: bytes, size: int) -> bytes:
    """Set every member's uncompressed size (local and central headers) to ``size``; the CRC stays."""
    data = bytearray(zip_bytes)
    pos = 0
    while (pos := data.find(b"PK\x03\x04", pos)) >= 0:
        struct.pack_into("<I", data, pos + 22, size)
        pos += 4
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        struct.pack_into("<I", data, pos + 24, size)
        pos += 4
    return bytes(data)


def write(folder: Path, files: dict[str, bytes]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out

"""Seeded mutations of valid files: format-blind byte edits and structure-aware edits of one field.

``mutate(seed, rng)`` returns ``(description, bytes)``; the same ``random.Random`` state gives the same
case, so a failing case is named by its kind, seed file and case number and can be replayed. About
half the mutations are structure-aware (an attribute, option, config field, label, tensor, npy header or
zip header replaced by a hostile value from :data:`VALUES`, then the file written again); the rest flip,
overwrite, insert, cut, duplicate or splice bytes, or change pickle opcode arguments in place.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import pickletools
import random
import struct
import zipfile
import zlib

import numpy as np
import torch

from fuzz.corpus import Seed
from support.official_pickle import Record, dumps_official


def _deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


#: Hostile values for any field: wrong types, negative/zero/huge sizes, non-finite numbers, deep nesting.
VALUES = [None, True, False, 0, 1, -1, -4, 2, 3, 5, 7, 2**16, 2**30, 2**62, -2**63, 2**100, 0.0, -0.0, 0.5, 1e-300,
          1e300, float("nan"), float("inf"), "", "abc", "lrelu", "skip", "resnet", "x" * 5000, [], [1], [5], [4, 8],
          [0.5] * 40, {}, {"a": 1}, _deep(150)]
NUMPY_VALUES = [np.float64(2.0), np.int64(-3), np.array([4, 8]), np.bool_(True), np.float32("nan"),
                np.zeros([0, 3], np.float32), np.array(["s"])]
INTS = [0, 1, -1, 2, 3, 255, 256, 2**15, 2**31 - 1, -2**31, 2**32, 2**40, 2**63 - 1]


def mutate(seed: Seed, rng: random.Random) -> tuple[str, bytes]:
    """One mutated file of ``seed``'s kind."""
    structured = STRUCTURED.get(seed.kind)
    if structured is not None and rng.random() < 0.55:
        for _ in range(5):                           # some structure edits do not apply to every seed
            result = structured(seed, rng)
            if result is not None:
                return result
    if seed.kind in ("pytorch-pickle", "tf-pickle") and rng.random() < 0.4:
        return pickle_args(seed.data, rng)
    return byte_edit(seed.data, rng)


def byte_edit(data: bytes, rng: random.Random, rounds: int | None = None) -> tuple[str, bytes]:
    """Flip bits, overwrite with interesting bytes, insert, cut, duplicate, truncate (1-4 edits)."""
    out = bytearray(data)
    done = []
    for _ in range(rounds or rng.randint(1, 4)):
        if not out:
            break
        op = rng.choice(("flip", "set", "int", "insert", "cut", "dup", "truncate"))
        pos = rng.randrange(len(out))
        if op == "flip":
            out[pos] ^= 1 << rng.randrange(8)
        elif op == "set":
            out[pos] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == "int":
            value = rng.choice(INTS)
            out[pos:pos + 8] = struct.pack("<q", max(-2**63, min(value, 2**63 - 1)))
        elif op == "insert":
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == "cut":
            del out[pos:pos + rng.randint(1, 64)]
        elif op == "dup":
            n = rng.randint(1, 256)
            out[pos:pos] = out[pos:pos + n]
        else:
            del out[pos:]
        done.append(f"{op}@{pos}")
    return "bytes " + ",".join(done), bytes(out)


def pickle_args(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Change the argument of an integer or string opcode in place (sizes, offsets, strides, names)."""
    ops = [(op, arg, pos) for op, arg, pos in pickletools.genops(data)
           if op.name in ("BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE", "SHORT_BINUNICODE", "BINPUT",
                          "BINGET", "LONG_BINPUT", "LONG_BINGET", "SHORT_BINBYTES", "BINBYTES")]
    op, arg, pos = rng.choice(ops)
    head = data[:pos]
    tail = data[pos + 1 + _arg_length(op, data, pos):]
    if op.name in ("BINUNICODE", "SHORT_BINUNICODE"):
        new = rng.choice(["", "abc", "S8", "O", "<f4", "__reduce__", "Generator", "posix", "system", "training",
                          "img_resolution", "G_ema", "storage", "x" * 300])
        enc = new.encode()
        body = pickle.BINUNICODE + struct.pack("<I", len(enc)) + enc
    elif op.name in ("SHORT_BINBYTES", "BINBYTES"):
        raw = arg[: rng.randrange(len(arg) + 1)] if rng.random() < 0.5 else arg + arg
        body = pickle.BINBYTES + struct.pack("<I", len(raw)) + raw
    elif op.name.endswith("GET") or op.name.endswith("PUT"):
        body = (pickle.LONG_BINGET if op.name.endswith("GET") else pickle.LONG_BINPUT) + struct.pack(
            "<I", rng.choice((0, 1, 2, rng.randrange(1 << 16))))
    else:
        value = rng.choice(INTS)
        body = pickle.LONG1 + bytes([len(enc := value.to_bytes(16, "little", signed=True).rstrip(
            b"\0" if value >= 0 else b"\xff") or b"\0")]) + enc
        if value >= 0 and enc[-1] & 0x80:
            body = pickle.LONG1 + bytes([len(enc) + 1]) + enc + b"\0"
        elif value < 0 and not enc[-1] & 0x80:
            body = pickle.LONG1 + bytes([len(enc) + 1]) + enc + b"\xff"
    return f"opcode {op.name}@{pos} ({str(arg)[:20]!r})", head + body + tail


def _arg_length(op, data: bytes, pos: int) -> int:
    n = op.arg.n
    if n >= 0:
        return n
    if n == pickletools.UP_TO_NEWLINE:
        return data.index(b"\n", pos + 1) - pos
    size_bytes = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT4: 4,
                  pickletools.TAKEN_FROM_ARGUMENT4U: 4, pickletools.TAKEN_FROM_ARGUMENT8U: 8}[n]
    (length,) = struct.unpack({1: "<B", 4: "<I", 8: "<Q"}[size_bytes], data[pos + 1:pos + 1 + size_bytes])
    if op.name == "LONG1":
        return 1 + length
    return size_bytes + length


def _value(rng: random.Random, numpy: bool = False):
    pool = VALUES + (NUMPY_VALUES if numpy else [])
    return copy.deepcopy(rng.choice(pool))


def _hostile_tensor(rng: random.Random, like) -> object:
    """A tensor description to put where a tensor was: wrong shape, zero size, NaN, zero stride, huge view."""
    shape = tuple(getattr(like, "shape", (4,))) or (1,)
    choice = rng.randrange(7)
    if choice == 0:
        return torch.zeros(*[s + rng.choice((-1, 1)) if s > 1 else s for s in shape])
    if choice == 1:
        return torch.empty(0, *shape[1:])
    if choice == 2:
        return torch.full(shape, float("nan"))
    if choice == 3:
        return torch.zeros(shape, dtype=rng.choice((torch.int64, torch.bool, torch.float16, torch.complex64)))
    if choice == 4:
        return torch.zeros(()) if shape != () else torch.zeros(3)
    if choice == 5:                                    # a zero-stride view of one element: 4 bytes in the file
        return torch.zeros(1).expand(1 << rng.randrange(10, 30))
    return torch.zeros(1).expand(*[s * rng.choice((1, 64, 4096)) for s in shape])


def _pytorch_record(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    top = copy.deepcopy(seed.structure)
    records = [(f"{key}.{name}" if name else key, rec) for key, root in top.items() if isinstance(root, Record)
               for name, rec in root.walk()]
    name, rec = rng.choice(records)
    what = rng.randrange(4)
    if what == 0 and rec.attrs:
        attr = rng.choice(sorted(rec.attrs))
        rec.attrs[attr] = _value(rng, numpy=True)
        desc = f"attr {name}.{attr}"
    elif what == 1 and rec.attrs:
        attr = rng.choice(sorted(rec.attrs))
        del rec.attrs[attr]
        desc = f"del {name}.{attr}"
    elif what == 2 and (rec.parameters or rec.buffers):
        table = rec.parameters if rec.parameters and rng.random() < 0.7 else rec.buffers or rec.parameters
        key = rng.choice(sorted(table))
        table[key] = _hostile_tensor(rng, table[key])
        desc = f"tensor {name}.{key}"
    elif what == 3:
        field = rng.choice(("init_kwargs", "modules", "top"))
        if field == "init_kwargs":
            rec.init_kwargs[rng.choice(sorted(rec.init_kwargs) or ["x"])] = _value(rng)
        elif field == "modules" and rec.modules:
            key = rng.choice(sorted(rec.modules))
            rec.modules[key] = rng.choice((None, _value(rng), rec))        # a module replaced, or a cycle
        else:
            top[rng.choice(("G_ema", "G", "D", "augment_pipe", "training_set_kwargs", "progress"))] = _value(rng, True)
        desc = f"{field} {name}"
    else:
        return None
    try:
        return desc, dumps_official(top, protocol=seed.options["protocol"])
    except (RecursionError, ValueError, TypeError, OverflowError, pickle.PicklingError):
        return None


def _tf_network(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    nets = copy.deepcopy(seed.structure)
    all_nets = []
    todo = list(nets)
    while todo:
        net = todo.pop()
        all_nets.append(net)
        todo.extend(net.components.values())
    net = rng.choice(all_nets)
    what = rng.randrange(3)
    if what == 0:
        key = rng.choice(sorted(net.static_kwargs) + ["resolution", "label_size", "resample_kernel", "nonlinearity",
                                                      "fused_scale", "mbstd_group_size", "num_fp16_res"])
        net.static_kwargs[key] = _value(rng, numpy=True)
        desc = f"kwarg {net.name}.{key}"
    elif what == 1 and net.variables:
        i = rng.randrange(len(net.variables))
        name, value = net.variables[i]
        shape = np.shape(value)
        new = rng.choice([np.zeros([s + rng.choice((-1, 1)) if s > 1 else s for s in shape], np.float32),
                          np.zeros([0, *shape[1:]], np.float32), np.full(shape, np.nan, np.float32),
                          np.zeros(shape, np.float16), np.zeros(shape, np.int64), np.float32(1.0), "text", None])
        net.variables[i] = (name, new)
        desc = f"variable {net.name}/{name}"
    else:
        field = rng.choice(("version", "name", "components", "variables"))
        setattr(net, field, _value(rng))
        desc = f"{field} of {net.name}"
    try:
        return desc, dumps_official(tuple(nets), protocol=seed.options["protocol"])
    except (RecursionError, ValueError, TypeError, AttributeError, OverflowError, pickle.PicklingError):
        return None


def _rosinality(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    what = rng.randrange(3)
    if what == 0 or seed.options["legacy"]:
        data = copy.deepcopy(seed.structure)
        part = rng.choice(["g_ema", "d", "top"])
        if part == "top":
            data[rng.choice(("latent_avg", "args", "g_ema", "d", "g"))] = rng.choice(
                [_value(rng), torch.zeros(3), torch.zeros(0)])
            desc = "top-level entry"
        else:
            key = rng.choice(sorted(data[part]))
            t = data[part][key]
            data[part][key] = rng.choice([torch.zeros(*[s + 1 for s in t.shape]), torch.zeros(0, *t.shape[1:]),
                                          torch.zeros(()).expand(*[s * 64 for s in t.shape]) if t.ndim else t,
                                          torch.full_like(t, float("nan")), t.to(torch.int32)])
            desc = f"tensor {part}.{key}"
        buf = io.BytesIO()
        torch.save(data, buf, _use_new_zipfile_serialization=not seed.options["legacy"])
        return desc, buf.getvalue()
    if what == 1:
        return _zip_member_edit(seed.data, rng, "archive/data.pkl")
    return _zip_header_edit(seed.data, rng)


def _zip_member_edit(data: bytes, rng: random.Random, prefer: str | None = None) -> tuple[str, bytes] | None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    name = prefer if prefer in members and rng.random() < 0.6 else rng.choice(sorted(members))
    if name.endswith(".pkl") and rng.random() < 0.5:
        desc, members[name] = pickle_args(members[name], rng)
    else:
        desc, members[name] = byte_edit(members[name], rng)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key, value in members.items():
            zf.writestr(key, value)
    return f"member {name}: {desc}", buf.getvalue()


def _zip_header_edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Lie in a local or central header: sizes, CRC, compression method, offsets, name lengths."""
    out = bytearray(data)
    sig, fields = rng.choice(((b"PK\x03\x04", {"method": (8, "<H"), "crc": (14, "<I"), "csize": (18, "<I"),
                                               "size": (22, "<I"), "namelen": (26, "<H")}),
                              (b"PK\x01\x02", {"method": (10, "<H"), "crc": (16, "<I"), "csize": (20, "<I"),
                                               "size": (24, "<I"), "offset": (42, "<I")})))
    starts = [i for i in range(len(out)) if out.startswith(sig, i)]
    if not starts:
        return byte_edit(data, rng)
    pos = rng.choice(starts)
    field, (off, fmt) = rng.choice(sorted(fields.items()))
    limit = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    value = rng.choice((0, 1, 8, 12, 99, limit, rng.randrange(limit)))
    if pos + off + struct.calcsize(fmt) <= len(out):
        struct.pack_into(fmt, out, pos + off, value)
    return f"zip header {sig[2:4].hex()}.{field}={value}", bytes(out)


def _native(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    (n,) = struct.unpack("<Q", seed.data[:8])
    header = json.loads(seed.data[8:8 + n])
    body = seed.data[8 + n:]
    if rng.random() < 0.7:
        meta = json.loads(header["__metadata__"]["stylegan"])
        path, parent, key = _random_leaf(meta, rng)
        new = _value(rng)
        if new == "delete" or (rng.random() < 0.15 and isinstance(parent, dict)):
            parent.pop(key, None)
            desc = f"config delete {path}"
        else:
            parent[key] = new
            desc = f"config {path}"
        try:
            header["__metadata__"]["stylegan"] = json.dumps(meta)
        except (ValueError, RecursionError):
            return None
    else:
        name = rng.choice(sorted(k for k in header if k != "__metadata__"))
        entry = header[name]
        field = rng.choice(("dtype", "shape", "data_offsets"))
        entry[field] = {"dtype": lambda: rng.choice(["F16", "I64", "BOOL", "U8", "F64", "X9", 3]),
                        "shape": lambda: rng.choice([[], [0], [2**40], [1, 2**20], [-1], "abc"]),
                        "data_offsets": lambda: rng.choice([[0, 0], [0, 2**40], [8, 4], [0]])}[field]()
        desc = f"tensor table {name}.{field}"
    text = json.dumps(header).encode()
    return desc, struct.pack("<Q", len(text)) + text + body


def _random_leaf(obj, rng: random.Random):
    path, parent, key = "", None, None
    node = obj
    for _ in range(6):
        if isinstance(node, dict) and node:
            key = rng.choice(sorted(node))
        elif isinstance(node, list) and node:
            key = rng.randrange(len(node))
        else:
            break
        parent, node, path = node, node[key], f"{path}.{key}"
        if rng.random() < 0.3:
            break
    if parent is None:
        return "(root)", {"root": obj}, "root"
    return path, parent, key


def _npz(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    what = rng.randrange(4)
    if what == 0:
        arrays = dict(seed.structure)
        key = rng.choice(sorted(arrays) + ["ws", "directions", "names", "seeds"])
        arrays[key] = rng.choice([np.zeros([1, 8, 9], np.float32), np.zeros([0, 8, 8], np.float32),
                                  np.full([1, 8, 8], np.nan, np.float32), np.zeros([2**12, 1, 8], np.float32),
                                  np.array(["x"] * 3), np.zeros([2, 8], np.int64), np.float32(3), np.zeros([1, 1, 1, 8]),
                                  np.zeros([3], np.complex64), np.zeros([2], dtype=[("a", "<f4")]),
                                  np.array([1.5, np.inf]), np.array(["a", "b", "c", "d"])])
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return f"array {key}", buf.getvalue()
    if what == 1:
        return _npy_header_edit(seed.data, rng)
    if what == 2:
        return _zip_header_edit(seed.data, rng)
    return _zip_member_edit(seed.data, rng)


def _npy_header_edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    name = rng.choice(sorted(members))
    raw = members[name]
    end = raw.index(b"\n") + 1
    header = raw[10:end].decode("latin1")
    edits = [("'shape': (", rng.choice(["'shape': (1048576, 18, ", "'shape': (-1, ", "'shape': (0, ", "'shape': ("
                                         + "1, " * 40])),
             ("'descr': '", rng.choice(["'descr': '|O", "'descr': '<U9", "'descr': '>", "'descr': '|V8"])),
             ("False", "True"), ("}", "'extra': 'x' * 10}")]
    old, new = rng.choice(edits)
    header = header.replace(old, new, 1)
    if rng.random() < 0.2:
        header = header.ljust(20000)
    header = header.rstrip("\n") + "\n"
    members[name] = raw[:8] + struct.pack("<H", len(header) % 65536) + header.encode("latin1") + raw[end:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, value in members.items():
            zf.writestr(key, value)
    return f"npy header {name}: {old!r}->{new[:30]!r}", buf.getvalue()


def _images(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    members = dict(seed.structure)
    name = rng.choice(sorted(members))
    if name == "dataset.json":
        labels = json.loads(members[name])
        choice = rng.randrange(3)
        if choice == 0 and labels["labels"]:
            labels["labels"][rng.randrange(len(labels["labels"]))][1] = _value(rng)
        elif choice == 1:
            labels["labels"] = _value(rng)
        else:
            labels = _value(rng)
        try:
            members[name] = json.dumps(labels).encode()
        except (ValueError, RecursionError):
            return None
        desc = "labels"
    elif name.endswith(".png") and rng.random() < 0.5:
        members[name] = _png_with_size(members[name], rng.choice((0, 1, 30000, 2**31 - 1)),
                                       rng.choice((0, 1, 30000, 2**31 - 1)))
        desc = f"PNG size {name}"
    else:
        desc, members[name] = byte_edit(members[name], rng)
        desc = f"{name}: {desc}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in members.items():
            zf.writestr(key, value)
    return desc, buf.getvalue()


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR width/height replaced (and its CRC fixed, so that decoders believe it)."""
    ihdr = bytearray(data[8:33])
    struct.pack_into(">II", ihdr, 8, width, height)
    struct.pack_into(">I", ihdr, 21, zlib.crc32(bytes(ihdr[4:21])) & 0xFFFFFFFF)
    return data[:8] + bytes(ihdr) + data[33:]


def _dataset(seed: Seed, rng: random.Random) -> tuple[str, bytes] | None:
    if rng.random() < 0.5:
        return _images(seed, rng)
    return _zip_header_edit(seed.data, rng)


STRUCTURED = {"pytorch-pickle": _pytorch_record, "tf-pickle": _tf_network, "rosinality": _rosinality,
              "native": _native, "npz": _npz, "images": _images, "dataset": _dataset}

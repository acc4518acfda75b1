"""The ``.npz`` layouts for latents and directions, shared by every command.

Latents (``--save-ws``, ``projected_w.npz``, ``stylegan latent``):
  ``ws``    float32 [N, num_ws, w_dim]   one w per synthesis layer (always present)
  ``w``     the same array, under the name NVIDIA's projector writes (read by their generate.py)
  optional ``seeds`` int64 [N], ``z`` float32 [N, z_dim], ``c`` float32 [N, c_dim], ``psi`` float32 [],
  ``labels`` str [N] (free text, e.g. file names of projected targets).
Reading accepts ``ws`` or ``w`` shaped [num_ws, w_dim], [N, num_ws, w_dim], [w_dim] or [N, w_dim]
(single-w files are broadcast to every layer).

Directions (``stylegan directions``):
  ``directions`` float32 [K, w_dim] (applied to the chosen layers) or [K, num_ws, w_dim] (per layer)
  ``method`` str, optional ``values`` float32 [K] (eigenvalue / explained variance / accuracy),
  ``names`` str [K], ``layers`` int64 [L] (layers the direction was found for).

Files from outside are untrusted: :func:`read_npz` (behind every reader here and the web explorer's
uploads) parses the zip and each ``.npy`` header itself, never unpickles, accepts only numbers and
strings, bounds what a file may unpack to (:data:`MAX_UNPACKED_BYTES` beyond its own size), and reports a
false size, a bad CRC or a malformed header as one :class:`UserInputError`. The optional arrays above
are checked against their layout (an integer ``seeds`` vector, a string ``labels`` vector, ...).
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..files import ZIP_ERRORS, atomic_write, check_zip_directory

#: What the arrays of one .npz file may unpack to beyond the file's own size (deflated members).
MAX_UNPACKED_BYTES = 1 << 30
MAX_ARRAYS = 256
_NPY_HEADER_BYTES = 10000               # numpy's own limit for a safe .npy header
_KINDS = "biufcUS"                      # numbers and strings only: no objects, structures or voids
#: The optional arrays of our layouts: name -> (allowed numbers of dimensions, allowed kinds).
LAYOUT = {"seeds": ((1,), "iu"), "z": ((2,), "iuf"), "c": ((2,), "iuf"), "psi": ((0, 1), "iuf"),
          "labels": ((1,), "US"), "method": ((0,), "US"), "values": ((1,), "iuf"), "names": ((1,), "US"),
          "layers": ((1,), "iu")}
#: Most bytes a latents file may expand to when single ws are broadcast to every layer.
MAX_BROADCAST_BYTES = 4 << 30


def _atomic_savez(path: Path, arrays: dict) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def save_ws(path: str | os.PathLike, ws, **extra) -> Path:
    """Write latents [N, num_ws, w_dim] (torch or numpy) with optional extra arrays (seeds, z, c, psi, labels)."""
    ws = np.asarray(ws.detach().cpu() if hasattr(ws, "detach") else ws, dtype=np.float32)
    if ws.ndim != 3:
        raise ValueError(f"ws must be [N, num_ws, w_dim], got {ws.shape}")
    arrays = {"ws": ws, "w": ws}
    for k, v in extra.items():
        if v is not None:
            arrays[k] = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
    return _atomic_savez(Path(path), arrays)


def read_npz(source: str | os.PathLike | bytes, max_unpacked: int = MAX_UNPACKED_BYTES, name: str | None = None) -> dict:
    """Every array of an ``.npz`` (a path, or its bytes), checked; :class:`UserInputError` for anything else."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "the upload"
        size, opener = len(data), lambda: io.BytesIO(data)
    else:
        path = Path(source)
        name = name or path.name
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                magic = f.read(4)
        except FileNotFoundError:
            raise UserInputError(f"file not found: {path}") from None
        except OSError as exc:
            raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if magic != b"PK\x03\x04":
            raise UserInputError(f"{path} is not an .npz file (expected a zip archive of numpy arrays)")
        opener = lambda: open(path, "rb")  # noqa: E731
    try:
        with opener() as f, zipfile.ZipFile(f) as zf:
            infos = check_zip_directory(zf, size, max_members=MAX_ARRAYS)
            _check_members(infos, name, max_unpacked + size)
            return {info.filename[:-4]: _read_npy(zf, info, name) for info in infos}
    except UserInputError:
        raise
    except MemoryError:
        raise UserInputError(f"{name}: not enough memory to read its arrays") from None
    except ZIP_ERRORS as exc:
        raise UserInputError(f"cannot read {name} as an .npz file: {str(exc)[:200]}") from None


def _check_members(infos: list, name: str, limit: int) -> None:
    names = [i.filename for i in infos]
    if not names or not all(n.endswith(".npy") for n in names) or len(set(names)) != len(names):
        raise UserInputError(f"{name} is not a numpy .npz file (it holds other files, or none)")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise UserInputError(f"{name} unpacks to more than {limit / 2**20:g} MB")


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One ``.npy`` member: header parsed by numpy's header reader (bounded), data checked against it."""
    where = f"{name}: {info.filename}"
    buf = bytearray(info.file_size)
    with zf.open(info) as member:
        got = member.readinto(buf)
        if got != info.file_size or member.read(1):
            raise zipfile.BadZipFile("the member is shorter or longer than its size")
    head = io.BytesIO(bytes(buf[:_NPY_HEADER_BYTES + 16]))
    try:
        version = np.lib.format.read_magic(head)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unknown .npy version {version}")
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(head, max_header_size=_NPY_HEADER_BYTES)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types on malformed text
        raise UserInputError(f"{where} is not a valid .npy array ({type(exc).__name__}: {str(exc)[:120]})") from None
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise UserInputError(f"{where} holds {dtype} data; only numbers and strings are read")
    count = math.prod(shape)
    offset = head.tell()
    if len(buf) - offset != count * dtype.itemsize:
        raise UserInputError(f"{where}: its header says {shape} {dtype} ({count * dtype.itemsize} bytes), "
                             f"it holds {len(buf) - offset}")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _open_npz(path) -> dict:
    """Every array of the file, the optional ones of our layouts checked (:data:`LAYOUT`)."""
    data = read_npz(path)
    for key, (ndims, kinds) in LAYOUT.items():
        a = data.get(key)
        if a is not None and (a.ndim not in ndims or a.dtype.kind not in kinds):
            kind = "string" if "U" in kinds else "integer" if kinds == "iu" else "number"
            raise UserInputError(f"{Path(path).name}: '{key}' must be a {' or '.join(f'{n}-D' for n in ndims)} "
                                 f"{kind} array, not {a.dtype} of shape {a.shape}")
        if a is not None and a.dtype.kind in "iuf" and kinds != "iu" and not np.isfinite(a).all():
            raise UserInputError(f"{Path(path).name}: '{key}' contains NaN or infinite values")
    return data


def load_ws(path: str | os.PathLike, num_ws: int | None = None, w_dim: int | None = None) -> np.ndarray:
    """Read latents as float32 [N, num_ws, w_dim], checking them against the model's sizes."""
    data = _open_npz(path)
    key = "ws" if "ws" in data else "w" if "w" in data else None
    if key is None:
        raise UserInputError(f"{Path(path).name} holds no latents (expected an array named 'ws' or 'w'; "
                             f"found {sorted(data) or 'nothing'})")
    a = _floats(data[key], path, "latents")
    if w_dim is not None and a.shape[-1] != w_dim:
        raise UserInputError(f"{Path(path).name}: latents have w_dim {a.shape[-1]}, the model needs {w_dim}")
    if a.ndim == 1:
        a = a[None, None]
    elif a.ndim == 2:
        a = a[None] if num_ws is not None and a.shape[0] == num_ws else a[:, None]
    if a.ndim != 3:
        raise UserInputError(f"{Path(path).name}: latents must be [N, num_ws, w_dim], got shape {a.shape}")
    if num_ws is not None:
        if a.shape[1] == 1:
            if a.shape[0] * num_ws * a.shape[2] * 4 > MAX_BROADCAST_BYTES:
                raise UserInputError(f"{Path(path).name}: {a.shape[0]} latents broadcast to {num_ws} layers would "
                                     f"need more than {MAX_BROADCAST_BYTES >> 30} GB")
            a = np.repeat(a, num_ws, axis=1)
        elif a.shape[1] != num_ws:
            raise UserInputError(f"{Path(path).name}: latents have {a.shape[1]} layers, the model has {num_ws}")
    if not np.isfinite(a).all():
        raise UserInputError(f"{Path(path).name}: latents contain NaN or infinite values")
    return a


def load_npz_extra(path: str | os.PathLike) -> dict:
    """Every array of an npz file (for seeds, labels, ...)."""
    return _open_npz(path)


def _floats(a: np.ndarray, path, what: str) -> np.ndarray:
    """``a`` as float32, if it holds numbers (not strings) of at most 3 dimensions, none of them empty."""
    if a.dtype.kind not in "iuf" or not 1 <= a.ndim <= 3 or a.size == 0:
        raise UserInputError(f"{Path(path).name}: {what} must be a non-empty number array of 1 to 3 dimensions, "
                             f"not {a.dtype} of shape {a.shape}")
    return np.asarray(a, dtype=np.float32)


def save_directions(path: str | os.PathLike, directions, method: str, values=None, names=None,
                    layers=None) -> Path:
    d = np.asarray(directions, dtype=np.float32)
    if d.ndim == 1:
        d = d[None]
    arrays = {"directions": d, "method": np.array(method)}
    if values is not None:
        arrays["values"] = np.asarray(values, dtype=np.float32)
    if names is not None:
        arrays["names"] = np.asarray([str(n) for n in names])
    if layers is not None:
        arrays["layers"] = np.asarray(layers, dtype=np.int64)
    return _atomic_savez(Path(path), arrays)


def load_directions(path: str | os.PathLike, w_dim: int | None = None, num_ws: int | None = None) -> dict:
    """Read a directions file: {'directions': [K, w_dim] or [K, num_ws, w_dim], 'method', 'values', 'names', 'layers'}."""
    data = _open_npz(path)
    if "directions" in data:
        d = _floats(data["directions"], path, "directions")
    elif "direction" in data:
        d = _floats(data["direction"], path, "directions")
    else:
        raise UserInputError(f"{Path(path).name} holds no directions (expected an array named 'directions')")
    if d.ndim == 1:
        d = d[None]
    if d.ndim not in (2, 3):
        raise UserInputError(f"{Path(path).name}: directions must be [K, w_dim] or [K, num_ws, w_dim], "
                             f"got shape {d.shape}")
    if w_dim is not None and d.shape[-1] != w_dim:
        raise UserInputError(f"{Path(path).name}: directions have w_dim {d.shape[-1]}, the model needs {w_dim}")
    if d.ndim == 3 and num_ws is not None and d.shape[1] != num_ws:
        raise UserInputError(f"{Path(path).name}: per-layer directions have {d.shape[1]} layers, the model has {num_ws}")
    if d.ndim not in (2, 3) or not np.isfinite(d).all():
        raise UserInputError(f"{Path(path).name}: directions must be finite [K, w_dim] or [K, num_ws, w_dim]")
    names = data.get("names")
    if names is not None and len(names) != len(d):
        raise UserInputError(f"{Path(path).name}: {len(names)} names for {len(d)} directions")
    return {
        "directions": d,
        "method": str(data["method"]) if "method" in data else "unknown",
        "values": data.get("values"),
        "names": [str(n) for n in data["names"]] if "names" in data else [f"direction {i}" for i in range(len(d))],
        "layers": data.get("layers"),
    }

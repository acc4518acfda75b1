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
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..files import atomic_write


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


def _open_npz(path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise UserInputError(f"{path} is not an .npz file (expected a zip archive of numpy arrays)")
    except OSError:
        pass  # reported below with the same wording as numpy's own errors
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UserInputError(f"file not found: {path}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise UserInputError(f"cannot read {path} as an .npz file: {exc}") from None


def load_ws(path: str | os.PathLike, num_ws: int | None = None, w_dim: int | None = None) -> np.ndarray:
    """Read latents as float32 [N, num_ws, w_dim], checking them against the model's sizes."""
    data = _open_npz(path)
    key = "ws" if "ws" in data else "w" if "w" in data else None
    if key is None:
        raise UserInputError(f"{Path(path).name} holds no latents (expected an array named 'ws' or 'w'; "
                             f"found {sorted(data) or 'nothing'})")
    a = np.asarray(data[key], dtype=np.float32)
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
            a = np.repeat(a, num_ws, axis=1)
        elif a.shape[1] != num_ws:
            raise UserInputError(f"{Path(path).name}: latents have {a.shape[1]} layers, the model has {num_ws}")
    if not np.isfinite(a).all():
        raise UserInputError(f"{Path(path).name}: latents contain NaN or infinite values")
    return a


def load_npz_extra(path: str | os.PathLike) -> dict:
    """Every array of an npz file (for seeds, labels, ...)."""
    return _open_npz(path)


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
        d = np.asarray(data["directions"], dtype=np.float32)
    elif "direction" in data:
        d = np.asarray(data["direction"], dtype=np.float32)
    else:
        raise UserInputError(f"{Path(path).name} holds no directions (expected an array named 'directions')")
    if d.ndim == 1:
        d = d[None]
    if w_dim is not None and d.shape[-1] != w_dim:
        raise UserInputError(f"{Path(path).name}: directions have w_dim {d.shape[-1]}, the model needs {w_dim}")
    if d.ndim == 3 and num_ws is not None and d.shape[1] != num_ws:
        raise UserInputError(f"{Path(path).name}: per-layer directions have {d.shape[1]} layers, the model has {num_ws}")
    if d.ndim not in (2, 3) or not np.isfinite(d).all():
        raise UserInputError(f"{Path(path).name}: directions must be finite [K, w_dim] or [K, num_ws, w_dim]")
    return {
        "directions": d,
        "method": str(data["method"]) if "method" in data else "unknown",
        "values": data.get("values"),
        "names": [str(n) for n in data["names"]] if "names" in data else [f"direction {i}" for i in range(len(d))],
        "layers": data.get("layers"),
    }

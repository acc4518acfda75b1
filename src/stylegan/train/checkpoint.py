"""Training states: everything needed to continue a run bit-exactly, in one safetensors file.

``training-state-<nimg:09d>.safetensors`` (``nimg`` = real images shown so far) holds G, D, G_ema,
both optimisers' moments, the ADA probability, the path-length mean and the RNG states as
tensors, and the options, counters and network configs as JSON in the header. Nothing in it is
pickled, so loading one can never run code. Files are written to a temporary name, flushed to disk
and renamed, so a crash or ``kill -9`` at any moment leaves either the previous state or the new
one, never a torn file; :func:`find_latest_state` also skips anything unreadable.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..files import atomic_write, read_safetensors_header, safetensors_data_end

FORMAT_NAME = "stylegan-training-state"
FORMAT_VERSION = 1
STATE_PATTERN = re.compile(r"^training-state-(\d+)\.safetensors$")


def state_name(cur_nimg: int) -> str:
    return f"training-state-{cur_nimg:09d}.safetensors"


@dataclass
class TrainingState:
    """The contents of a training-state file (tensors on the CPU)."""

    header: dict
    networks: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)   # G, D, G_ema state dicts
    optimizers: dict[str, dict] = field(default_factory=dict)                     # torch optimiser state dicts
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)                # pl_mean, augment_p, ...
    rng: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def counters(self) -> dict:
        return self.header["counters"]

    @property
    def options(self) -> dict:
        return self.header["options"]


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """The torch, CUDA, numpy and Python RNG states: tensors and JSON metadata."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    meta = {"numpy": [name, int(pos), int(has_gauss), float(cached)], "python": _py_random_state()}
    return tensors, meta


def _py_random_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def restore_rng(state: TrainingState) -> None:
    t = state.tensors
    if "rng.torch" in t:
        torch.set_rng_state(t["rng.torch"].to(torch.uint8))
    cuda = sorted((k for k in t if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t[k].to(torch.uint8) for k in cuda])
    meta = state.rng
    if "rng.numpy" in t and meta.get("numpy"):
        name, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((name, t["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    if meta.get("python"):
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))


def _flatten_optimizer(prefix: str, sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """A torch optimiser state dict -> (its tensors under ``prefix``, the rest as JSON)."""
    tensors, plain = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = value
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "plain_state": plain}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    head = prefix + ".state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("plain_state", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(path: str | os.PathLike, *, networks: dict[str, torch.nn.Module],
                        optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor],
                        header: dict) -> Path:
    """Write one training state atomically (temp file, fsync, rename, fsync of the folder)."""
    path = Path(path)
    out: dict[str, torch.Tensor] = {}
    for key, net in networks.items():
        for name, t in net.state_dict().items():
            out[f"{key}.{name}"] = t
    opt_meta = {}
    for key, opt in optimizers.items():
        flat, meta = _flatten_optimizer(f"opt.{key}", opt.state_dict())
        out.update(flat)
        opt_meta[key] = meta
    out.update({f"tensor.{k}": v for k, v in tensors.items()})
    rng_tensors, rng_meta = capture_rng()
    out.update(rng_tensors)
    out = {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}
    full_header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **header,
                   "optimizers": opt_meta, "rng": rng_meta, "network_keys": sorted(networks)}
    meta = {"stylegan_training_state": json.dumps(full_header, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(out, str(tmp), metadata=meta))
    return path


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a training-state file (checked to be one), without reading its tensors."""
    path = Path(path)
    try:
        raw = read_safetensors_header(path)
        meta = (raw.get("__metadata__") or {})["stylegan_training_state"]
        header = json.loads(meta)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CheckpointError(f"{path.name} is not a training state ({exc})") from None
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name} is not a training state")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer stylegan; please upgrade")
    return header


def is_training_state(path: str | os.PathLike) -> bool:
    try:
        read_header(path)
        return True
    except CheckpointError:
        return False


def load_training_state(path: str | os.PathLike) -> TrainingState:
    path = Path(path)
    header = read_header(path)
    try:
        flat = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path.name} is corrupt or truncated ({exc})") from None
    state = TrainingState(header=header, rng=header.get("rng", {}), path=str(path))
    for key in header.get("network_keys", []):
        prefix = key + "."
        state.networks[key] = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    for key, meta in header.get("optimizers", {}).items():
        state.optimizers[key] = _unflatten_optimizer(f"opt.{key}", flat, meta)
    state.tensors = {k[len("tensor."):]: v for k, v in flat.items() if k.startswith("tensor.")}
    state.tensors.update({k: v for k, v in flat.items() if k.startswith("rng.")})
    return state


def list_states(run_dir: str | os.PathLike) -> list[Path]:
    """Training-state files of a run folder, newest (most images shown) first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := STATE_PATTERN.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def find_latest_state(root: str | os.PathLike) -> Path | None:
    """The newest complete training state in ``root`` or its run folders (``root/*/``), or None.

    A state that cannot be read (e.g. a torn file copied from elsewhere) is skipped with the next
    older one used instead.
    """
    root = Path(root)
    candidates = list_states(root)
    if root.is_dir():
        for sub in root.iterdir():
            if sub.is_dir():
                candidates += list_states(sub)
    candidates.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for p in candidates:
        if _readable(p):
            return p
    return None


def _readable(path: Path) -> bool:
    try:
        read_header(path)
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            if keys:
                f.get_tensor(keys[-1])
        return safetensors_data_end(path) <= path.stat().st_size
    except Exception:
        return False


def prune_states(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest training states of a run folder."""
    if keep <= 0:
        return
    for old in list_states(run_dir)[keep:]:
        try:
            old.unlink()
        except OSError:
            pass

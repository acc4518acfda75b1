"""Our own format: safetensors weights + JSON config, no pickle anywhere.

One file ``model.safetensors`` holds every network's tensors under a prefix (``G_ema.``, ``G.``,
``D.``) and, in the safetensors header metadata, the JSON of each network's config, the ADA state,
``training_set_kwargs`` and free-form metadata. A folder form (``config.json`` + ``model.safetensors``)
carries the same JSON in a file a person can read and edit.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..files import atomic_write, read_safetensors_header

try:
    from safetensors import SafetensorError
except ImportError:  # older safetensors releases do not export it
    SafetensorError = Exception
from ..networks import DiscriminatorConfig, Generator, GeneratorConfig, build_discriminator
from .types import Checkpoint, load_tensors

FORMAT_NAME = "stylegan-native"
FORMAT_VERSION = 1
NETWORK_KEYS = ("G_ema", "G", "D")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def is_safetensors_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < (100 << 20) and head[8:9] == b"{"


def _header(ckpt: Checkpoint) -> dict:
    networks = {}
    for key in NETWORK_KEYS:
        net = getattr(ckpt, key)
        if net is not None:
            networks[key] = {"kind": "generator" if isinstance(net, Generator) else "discriminator",
                             "config": net.config.to_dict()}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "networks": networks,
        "augment": ckpt.augment,
        "training_set_kwargs": ckpt.training_set_kwargs,
        "metadata": ckpt.metadata,
    }


def _tensors(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    out = {}
    for key in NETWORK_KEYS:
        net = getattr(ckpt, key)
        if net is None:
            continue
        for name, t in net.state_dict().items():
            out[f"{key}.{name}"] = t.detach().to("cpu").contiguous().clone()
    return out


def save_native(ckpt: Checkpoint, dest: str | Path) -> Path:
    """Write ``ckpt`` to ``dest`` (a ``.safetensors`` file, or a folder) atomically; returns the weights path."""
    dest = Path(dest)
    header = _header(ckpt)
    if dest.suffix == ".safetensors":
        weights, config_path = dest, None
    else:
        weights, config_path = dest / WEIGHTS_NAME, dest / CONFIG_NAME
        dest.mkdir(parents=True, exist_ok=True)
    weights.parent.mkdir(parents=True, exist_ok=True)
    meta = {"stylegan": json.dumps(header, sort_keys=True)}
    atomic_write(weights, lambda tmp: save_file(_tensors(ckpt), str(tmp), metadata=meta))
    if config_path is not None:
        atomic_write(config_path, json.dumps(header, indent=2, sort_keys=True) + "\n")
    return weights


def _read_header(weights: Path) -> dict:
    try:
        raw = read_safetensors_header(weights)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{weights.name} is not a readable safetensors file ({exc})") from exc
    meta = (raw.get("__metadata__") or {}).get("stylegan")
    if meta is None:
        raise CheckpointError(f"{weights.name} is a safetensors file without a stylegan config "
                              f"(not written by `stylegan convert`)")
    try:
        return json.loads(meta)
    except ValueError as exc:
        raise CheckpointError(f"{weights.name}: stylegan config in the header is not valid JSON") from exc


def load_native(path: str | Path, which: tuple[str, ...] = NETWORK_KEYS) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        config_file = path / CONFIG_NAME
        if not weights.exists():
            raise CheckpointError(f"{path} is a folder without {WEIGHTS_NAME}")
        if config_file.exists():
            try:
                header = json.loads(config_file.read_text())
            except ValueError as exc:
                raise CheckpointError(f"{config_file} is not valid JSON: {exc}") from exc
        else:
            header = _read_header(weights)
    else:
        weights = path
        header = _read_header(weights)
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name}: unknown format {header.get('format')!r}")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer stylegan (format version "
                              f"{header['format_version']}); please upgrade")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights.name} is corrupt or truncated: {exc}") from exc
    ckpt = Checkpoint(source_format="native", path=str(path), augment=header.get("augment"),
                      training_set_kwargs=header.get("training_set_kwargs"), metadata=header.get("metadata") or {})
    for key, spec in (header.get("networks") or {}).items():
        if key not in which or key not in NETWORK_KEYS:
            continue
        try:
            if spec["kind"] == "generator":
                net = Generator(GeneratorConfig.from_dict(spec["config"]))
            else:
                net = build_discriminator(DiscriminatorConfig.from_dict(spec["config"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path.name}: invalid config for {key}: {exc}") from exc
        prefix = key + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_tensors(net, state, f"{path.name}: {key}")
        setattr(ckpt, key, net.eval().requires_grad_(False))
    return ckpt

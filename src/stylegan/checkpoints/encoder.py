"""Encoder files: safetensors weights with the :class:`~stylegan.networks.encoder.EncoderConfig` and
free-form metadata (how it was trained) as JSON in the header -- the native model format's layout.

``builtin`` names the encoder shipped for the built-in model (``pretrained/builtin-encoder.safetensors``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..files import atomic_write, read_safetensors_header
from ..networks.encoder import Encoder, EncoderConfig
from .architecture import NetworkBudget, build_network

FORMAT_NAME = "stylegan-encoder"
FORMAT_VERSION = 1
META_KEY = "stylegan_encoder"
BUILTIN_NAME = "builtin"


def builtin_encoder_path() -> Path:
    """The encoder trained for the built-in model, shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "pretrained" / "builtin-encoder.safetensors"


def save_encoder(encoder: Encoder, dest: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``encoder`` (weights, config, ``metadata``) to a ``.safetensors`` file atomically."""
    dest = Path(dest)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": encoder.config.to_dict(),
              "metadata": metadata or {}}
    tensors = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).contiguous().clone()
               for k, v in encoder.state_dict().items()}
    meta = {META_KEY: json.dumps(header, sort_keys=True)}
    return atomic_write(dest, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_encoder_header(path: str | os.PathLike) -> dict:
    """The JSON header of an encoder file (config + metadata), checked, without reading the weights."""
    path = Path(path)
    try:
        raw = read_safetensors_header(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read encoder {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CheckpointError(f"{path.name} is not a safetensors file ({exc})") from None
    meta = raw.get("__metadata__")
    meta = meta.get(META_KEY) if isinstance(meta, dict) else None
    if meta is None:
        raise CheckpointError(f"{path.name} is not an encoder file (train one with `stylegan encoder train`)")
    try:
        header = json.loads(meta)
    except ValueError:
        raise CheckpointError(f"{path.name}: the encoder config in the header is not valid JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name} is not an encoder file")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path.name}: format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer stylegan; please upgrade")
    return header


def load_encoder(source: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Encoder, dict]:
    """``(encoder, metadata)`` from an encoder file, or ``'builtin'`` for the shipped one (eval mode)."""
    path = builtin_encoder_path() if str(source) == BUILTIN_NAME else Path(source)
    if str(source) == BUILTIN_NAME and not path.exists():
        raise CheckpointError("this installation has no built-in encoder; pass --encoder PATH")
    if not path.is_file():
        raise CheckpointError(f"encoder file not found: {path}")
    header = read_encoder_header(path)
    if not isinstance(header.get("config"), dict):
        raise CheckpointError(f"{path.name}: the encoder file has no config")
    try:
        config = EncoderConfig.from_dict(header["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: invalid encoder config: {exc}") from None
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for torn files
        raise CheckpointError(f"{path.name} is corrupt or truncated ({exc})") from None
    what = f"{path.name}: encoder"
    encoder = build_network(Encoder, config, tensors, what, NetworkBudget(path.name, path.stat().st_size))
    metadata = header.get("metadata")
    return encoder.to(device), dict(metadata) if isinstance(metadata, dict) else {}

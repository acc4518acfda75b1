"""Our own format: safetensors weights + JSON config, no pickle anywhere.

One file ``model.safetensors`` holds every network's tensors under a prefix (``G_ema.``, ``G.``,
``D.``) and, in the safetensors header metadata, the JSON of each network's config, the ADA state,
``training_set_kwargs`` and free-form metadata. A folder form (``config.json`` + ``model.safetensors``)
carries the same JSON in a file a person can read and edit.
"""

from __future__ import annotations

import json
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
from .architecture import NetworkBudget, build_network
from .types import Checkpoint

FORMAT_NAME = "stylegan-native"
FORMAT_VERSION = 1
NETWORK_KEYS = ("G_ema", "G", "D")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


#: Largest header (tensor table + our JSON config) we read from a model file; ours are a few hundred KB.
MAX_HEADER_BYTES = 16 << 20
#: Deepest nesting of the JSON we read (configs nest 3 deep; metadata a little more).
MAX_JSON_DEPTH = 32


def is_safetensors_file(path: Path) -> bool:
    try:
        read_safetensors_header(path, MAX_HEADER_BYTES)
    except (OSError, ValueError, RecursionError):
        return False
    return True


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
        raw = read_safetensors_header(weights, MAX_HEADER_BYTES)
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{weights.name} is not a readable safetensors file ({str(exc)[:200]})") from None
    meta = (raw.get("__metadata__") or {}) if isinstance(raw.get("__metadata__") or {}, dict) else {}
    text = meta.get("stylegan")
    if text is None:
        raise CheckpointError(f"{weights.name} is a safetensors file without a stylegan config "
                              f"(not written by `stylegan convert`)")
    return _parse_json(text, f"{weights.name}: the stylegan config in its header")


def _parse_json(text, what: str) -> dict:
    if not isinstance(text, (str, bytes)):
        raise CheckpointError(f"{what} is not JSON text")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} is not valid JSON ({str(exc)[:100]})") from None
    _check_depth(data, what)
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} is not a JSON object")
    return data


def _check_depth(data, what: str) -> None:
    todo = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            raise CheckpointError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)


def _networks(header: dict, name: str) -> dict:
    """The header's ``networks`` table, checked: ``{key: {"kind": ..., "config": {...}}}``."""
    version = header.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CheckpointError(f"{name}: format_version must be a whole number, not {str(version)[:40]!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer stylegan (format version {version}); please upgrade")
    networks = header.get("networks") or {}
    if not isinstance(networks, dict):
        raise CheckpointError(f"{name}: 'networks' must be a JSON object of networks, not a "
                              f"{type(networks).__name__}")
    for key, spec in networks.items():
        if (not isinstance(spec, dict) or spec.get("kind") not in ("generator", "discriminator")
                or not isinstance(spec.get("config"), dict)):
            raise CheckpointError(f"{name}: networks.{str(key)[:40]} must be {{'kind': 'generator' or "
                                  f"'discriminator', 'config': {{...}}}}")
    return networks


def load_native(path: str | Path, which: tuple[str, ...] = NETWORK_KEYS) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        config_file = path / CONFIG_NAME
        if not weights.exists():
            raise CheckpointError(f"{path} is a folder without {WEIGHTS_NAME}")
        if config_file.exists():
            header = _parse_json(_read_config(config_file), str(config_file))
        else:
            header = _read_header(weights)
    else:
        weights = path
        header = _read_header(weights)
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name}: unknown format {str(header.get('format'))[:40]!r}")
    networks = _networks(header, path.name)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise CheckpointError(f"{weights.name} is corrupt or truncated: {str(exc)[:200]}") from None
    metadata = header.get("metadata") or {}
    ckpt = Checkpoint(source_format="native", path=str(path), augment=header.get("augment"),
                      training_set_kwargs=header.get("training_set_kwargs"),
                      metadata=metadata if isinstance(metadata, dict) else {"metadata": metadata})
    budget = NetworkBudget(path.name, weights.stat().st_size)
    for key, spec in networks.items():
        if key not in which or key not in NETWORK_KEYS:
            continue
        generator = spec["kind"] == "generator"
        try:
            cfg = (GeneratorConfig if generator else DiscriminatorConfig).from_dict(spec["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path.name}: invalid config for {key}: {exc}") from None
        prefix = key + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        net = build_network(Generator if generator else build_discriminator, cfg, state, f"{path.name}: {key}", budget)
        setattr(ckpt, key, net)
    return ckpt


def _read_config(config_file: Path) -> bytes:
    try:
        with open(config_file, "rb") as f:
            data = f.read(MAX_HEADER_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {config_file}: {exc.strerror or exc}") from None
    if len(data) > MAX_HEADER_BYTES:
        raise CheckpointError(f"{config_file} is larger than {MAX_HEADER_BYTES >> 20} MB; not a model config")
    return data

"""The reader table: which reader opens which model file, dispatched from one place.

=====================  ==========================================  ===========================================
format                 recognised by                               reader
=====================  ==========================================  ===========================================
``native``             a folder, or a safetensors header           :func:`.native.load_native`
``official-pickle``    a pickle protocol 2-5 header                :func:`read_network_pickle`: NVIDIA PyTorch
                                                                   (:mod:`.official`) or TensorFlow (:mod:`.tf`)
``torch-zip``          a zip, or a legacy ``torch.save`` header    :func:`.rosinality.load_rosinality`
=====================  ==========================================  ===========================================

Every reader returns a :class:`Checkpoint` whose networks were built by
:func:`.architecture.build_network`; :func:`read_checkpoint` then checks the plain fields every
command prints or uses (ADA state, training-set options, metadata), whatever the format.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError
from . import native, official, rosinality, tf
from .safe_pickle import TFNetworkRecord, read_pickle
from .types import Checkpoint

_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46"  # pickled 0x1950a86a20f9469cfc6c (first 8 bytes)


def detect_format(path: Path) -> str:
    """'native' | 'official-pickle' | 'torch-zip' (rosinality / torch.save)."""
    path = Path(path)
    if path.is_dir():
        return "native"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"{path.name} is empty")
    if head[:4] == b"PK\x03\x04" or head.startswith(_LEGACY_TORCH_MAGIC):
        return "torch-zip"  # also legacy (pre-1.6) torch.save files, e.g. older rosinality .pt
    if head[:2] in _PICKLE_MAGIC:
        return "official-pickle"
    if native.is_safetensors_file(path):
        return "native"
    raise CheckpointError(f"{path.name} is not a model file we know (expected NVIDIA .pkl, our .safetensors, "
                          f"or a rosinality .pt)")


def read_network_pickle(path: Path, which: tuple[str, ...]) -> Checkpoint:
    """An NVIDIA network pickle: read once (inert), then converted as PyTorch or TensorFlow networks."""
    data = read_pickle(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, TFNetworkRecord) for x in data):
        return tf.checkpoint_from_tf(data, path=path, which=which)
    return official.checkpoint_from_records(data, path, which)


READERS: dict[str, Callable[[Path, tuple[str, ...]], Checkpoint]] = {
    "native": native.load_native,
    "official-pickle": read_network_pickle,
    "torch-zip": rosinality.load_rosinality,
}


def read_checkpoint(path: Path, which: tuple[str, ...]) -> Checkpoint:
    """Every network of ``which`` in the model file at ``path``, whatever its format (CPU, eval mode)."""
    reader = READERS[detect_format(path)]
    try:
        ckpt = reader(path, which)
    except MemoryError:
        raise CheckpointError(f"{path.name}: out of memory while loading") from None
    check_plain_fields(ckpt, path.name)
    return ckpt


def check_plain_fields(ckpt: Checkpoint, name: str) -> None:
    """The data beside the networks, as the commands use it: ``augment`` ``{'p': 0..1, 'settings': {}}``,
    ``training_set_kwargs`` a dict (its ``path`` a string), ``metadata`` a dict whose ``tensorflow``
    truncation defaults are numbers."""
    if ckpt.augment is not None:
        aug = ckpt.augment
        p = aug.get("p", 0.0) if isinstance(aug, dict) else None
        if (not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1
                or not isinstance(aug.get("settings", {}), dict)):
            raise CheckpointError(f"{name}: its ADA state must be {{'p': a number in [0, 1], 'settings': {{...}}}}")
    tsk = ckpt.training_set_kwargs
    if tsk is not None and (not isinstance(tsk, dict) or not isinstance(tsk.get("path", ""), (str, type(None)))):
        raise CheckpointError(f"{name}: its training_set_kwargs must be a dict whose path is a string")
    if not isinstance(ckpt.metadata, dict):
        raise CheckpointError(f"{name}: its metadata must be a JSON object")
    tf_meta = ckpt.metadata.get("tensorflow")
    if tf_meta is not None:
        psi = tf_meta.get("truncation_psi") if isinstance(tf_meta, dict) else "?"
        cutoff = tf_meta.get("truncation_cutoff") if isinstance(tf_meta, dict) else "?"
        if not (psi is None or _number(psi)) or not (
                cutoff is None or (isinstance(cutoff, int) and not isinstance(cutoff, bool) and cutoff >= 0)):
            raise CheckpointError(f"{name}: its metadata.tensorflow truncation defaults must be numbers")


def _number(v) -> bool:
    """A finite number that prints as one (a float, or an int within 64 bits)."""
    return (isinstance(v, float) and math.isfinite(v)) or (isinstance(v, int) and not isinstance(v, bool)
                                                           and abs(v) < 2**63)

"""Read ``torch.save`` files (rosinality checkpoints) as inert data, with the rules of :mod:`.safe_pickle`.

``torch.load(weights_only=True)`` runs no code, but it hashes, copies and allocates whatever the file
describes: a tuple nested a million deep as a dict key crashes the process in C, and views may claim
any shape over a small storage. This reader parses both of torch's layouts itself, with the same
restricted unpickler as NVIDIA's pickles (allow-listed globals, no mutation after hand-off, bounded
nesting, a per-file budget of tensor bytes):

- the zip layout (torch >= 1.6): ``ARCHIVE/data.pkl`` whose persistent ids name the storages
  ``ARCHIVE/data/KEY``; every entry must be stored (not compressed) and lie inside the file, and a
  storage's size must equal its element count times its element size;
- the legacy stream (older rosinality files): magic, protocol, system info, the main pickle, the key
  list, then each storage's count and bytes (:func:`.safe_pickle.read_legacy_torch`).

The result holds dicts, lists, tuples, numbers, strings and CPU tensors; an ``argparse.Namespace``
(the ``args`` of rosinality's training checkpoints) comes back as a plain dict.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..files import ZIP_ERRORS, check_zip_directory
import numpy as np

from .safe_pickle import (Budget, NumpyBuilder, NumpyDType, Storage, TensorRebuilder, _StorageHeaderUnpickler,
                          _storage_from_bytes, element_size, read_legacy_torch, run_unpickler, storage_type)

__all__ = ["read_torch_save"]

_LEGACY_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled 0x1950a86a20f9469cfc6c


class _Namespace(dict):
    """``argparse.Namespace`` as a dict of its attributes (set by its one BUILD)."""


class _TorchSaveUnpickler(TensorRebuilder, NumpyBuilder, _StorageHeaderUnpickler):
    """The main pickle of a ``torch.save`` file: tensors, containers, numbers, strings, Namespaces."""

    what = "the file"
    buildable = (_Namespace, np.ndarray, NumpyDType)
    newable = (dict, _Namespace)

    def __init__(self, file: Any, name: str, budget: Budget, storages: Any):
        super().__init__(file, name, budget, storages)
        self._globals = {
            **self.tensor_globals(),
            ("collections", "OrderedDict"): self._ordered_dict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("_codecs", "encode"): self._codecs_encode,
            ("argparse", "Namespace"): _Namespace,
            **self.numpy_globals(),
        }

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":
            module = "builtins"
        kind = storage_type(module, name)
        if kind is not None:
            return kind
        value = self._globals.get((module, name))
        if value is None:
            raise CheckpointError(f"{self.name} holds Python objects other than tensors and plain data "
                                  f"('{module}.{name}'), which we do not load (no code from a model file "
                                  f"is ever run)")
        return self.allow(value) if callable(value) and value is not _Namespace else value

    def _build(self, inst: Any, state: Any) -> None:
        if type(inst) is _Namespace and isinstance(state, dict) and all(isinstance(k, str) for k in state):
            inst.update(state)
        elif not self.build_numpy(inst, state):
            super()._build(inst, state)


def read_torch_save(path: str | os.PathLike) -> Any:
    """The object a ``torch.save`` file holds, as inert data; :class:`CheckpointError` for anything else."""
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    with f:
        head = f.read(len(_LEGACY_HEAD))
        f.seek(0)
        budget = Budget(path.name)
        budget.read = size                                 # every byte is read before anything is built
        if head.startswith(b"PK\x03\x04"):
            return _read_zip(f, path.name, size, budget)
        if head == _LEGACY_HEAD:
            return read_legacy_torch(f, path.name, budget, _TorchSaveUnpickler, what="the file")
    raise CheckpointError(f"{path.name} is not a torch.save file (neither torch's zip layout nor its legacy "
                          f"stream)")


def _read_zip(f, name: str, size: int, budget: Budget) -> Any:
    try:
        zf = zipfile.ZipFile(f)
        infos = check_zip_directory(zf, size, stored_only=True)
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"{name} is not a readable torch checkpoint (a broken zip archive: {exc})") from None
    with zf:
        pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{name} is a zip archive but not a torch.save file (no single "
                                  f"ARCHIVE/data.pkl)")
        prefix = pickles[0].filename[: -len("data.pkl")]
        if not all(i.filename.startswith(prefix) for i in infos):
            raise CheckpointError(f"{name} holds entries outside its {prefix} folder; not a torch.save file")
        byteorder = zf.NameToInfo.get(prefix + "byteorder")
        if byteorder is not None and _read(zf, byteorder, name) not in (b"little", b"little\n"):
            raise CheckpointError(f"{name} holds big-endian tensor data, which is not supported")
        data = _read(zf, pickles[0], name)
        storages = _LazyStorages(zf, prefix, name, budget)
        unpickler = _TorchSaveUnpickler(io.BytesIO(data), name, budget, storages)
        storages.unpickler = unpickler
        return run_unpickler(unpickler, name, "a torch checkpoint")


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    try:
        return zf.read(info)
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"{name}: cannot read {info.filename} from the archive ({exc})") from None


class _LazyStorages:
    """Storages of the zip layout by key, read (and checked against their records) on first use."""

    def __init__(self, zf: zipfile.ZipFile, prefix: str, name: str, budget: Budget):
        self.zf, self.prefix, self.name, self.budget = zf, prefix, name, budget
        self.unpickler: _TorchSaveUnpickler | None = None
        self._cache: dict[str, Storage] = {}

    def __getitem__(self, key: str) -> Storage:
        if key in self._cache:
            return self._cache[key]
        kind, numel = self.unpickler.pids[key]
        info = self.zf.NameToInfo.get(f"{self.prefix}data/{key}")
        if info is None:
            raise CheckpointError(f"{self.name}: storage {key!r} is missing from the archive")
        nbytes = numel * element_size(kind.dtype)
        if info.file_size != nbytes:
            raise CheckpointError(f"{self.name}: storage {key!r} holds {info.file_size} bytes, its record says "
                                  f"{numel} elements ({nbytes} bytes); the file is corrupt")
        self.budget.charge(nbytes)
        buf = bytearray(nbytes)
        try:
            with self.zf.open(info) as member:
                got = member.readinto(buf)
                if got != nbytes or member.read(1):
                    raise zipfile.BadZipFile("the entry is shorter or longer than its size")
        except ZIP_ERRORS as exc:
            raise CheckpointError(f"{self.name}: cannot read storage {key!r} from the archive ({exc})") from None
        storage = self._cache[key] = _storage_from_bytes(buf, kind)
        return storage

"""The one way we read TorchScript files (detectors, NVIDIA's vgg16.pt, user classifiers).

A TorchScript archive is a zip of tensors and TorchScript code, run by TorchScript's own interpreter:
no Python code from the file is executed. Python pickles (NVIDIA's StyleGAN3-era ``.pkl``
detectors rebuild themselves by running code stored in the file) are refused before loading, and so
are archives that would crash TorchScript's own reader (members outside the file or unpacking to much
more than it, pickles nested too deep or changed after use: :mod:`stylegan.checkpoints.safe_pickle`).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError

_PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """TorchScript archives carry a ``code/`` folder; ``torch.save`` state dicts do not."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any("/code/" in n or n.endswith("constants.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def check_torchscript_file(path: str | os.PathLike, what: str = "network", hint: str = "") -> None:
    """Refuse folders, pickles and anything that is not a zip archive, before loading."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except IsADirectoryError:
        raise CheckpointError(f"{what} {path} is a folder; pass the TorchScript .pt file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if head[:2] in _PICKLE_PROTOCOLS or path.suffix.lower() == ".pkl":
        raise CheckpointError(f"{what} {path.name} is a Python pickle, which runs arbitrary code when loaded, "
                              f"so stylegan refuses it; use a TorchScript file (torch.jit.save){hint}")
    if head != b"PK\x03\x04":
        kind = "empty" if not head else "not a TorchScript archive (a .pt file saved with torch.jit.save)"
        raise CheckpointError(f"{what} {path.name} is {kind}{hint}")
    check_archive_pickles(path, what)


def check_archive_pickles(path: Path, what: str = "network") -> None:
    """The archive's directory and every pickle in it (``data.pkl``, ``constants.pkl``, debug info) pass
    the structure rules of our unpickler before TorchScript's C++ reader sees them."""
    from ..checkpoints.safe_pickle import check_pickle_structure
    from ..files import ZIP_ERRORS, check_zip_directory
    try:
        with zipfile.ZipFile(path) as zf:
            size = path.stat().st_size
            for info in check_zip_directory(zf, size, max_unpacked=size + (256 << 20)):   # code is deflated
                if info.filename.endswith(("pkl", ".debug_pkl")):
                    check_pickle_structure(zf.read(info), path.name, info.filename)
    except ZIP_ERRORS as exc:
        raise CheckpointError(f"cannot load {what} {path.name}: corrupt or not a TorchScript archive "
                              f"({str(exc)[:200]})") from None


def load_torchscript(path: str | os.PathLike, what: str = "network",
                     device: str | torch.device = "cpu", hint: str = "") -> torch.jit.ScriptModule:
    """``torch.jit.load`` after :func:`check_torchscript_file`, in eval mode; one-line errors."""
    path = Path(path)
    check_torchscript_file(path, what, hint)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # torch >= 2.9 deprecates TorchScript
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - TorchScript loading raises RuntimeError, ValueError and others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load {what} {path.name}: corrupt or not a TorchScript module "
                              f"({first})") from None
    return module.eval()

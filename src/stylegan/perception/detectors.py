"""Feature detectors for the metrics: NVIDIA's TorchScript Inception and VGG16 files, loaded from a
local path or a URL (downloaded once into the cache), never from a pickle.

NVIDIA publishes two forms of each detector. The StyleGAN2-ADA ones are TorchScript archives
(``*.pt``, read with ``torch.jit.load``: data and TorchScript code only, no Python code runs). The
StyleGAN3 ones are Python pickles that rebuild the network by running code stored in the file; we
refuse those. Every metric report names the detector file and its sha256 so that numbers can be
compared only when they come from the same network.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoints.download import resolve
from ..errors import CheckpointError, UserInputError
from ..files import sha256_file
from .torchscript import load_torchscript

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"

#: detector kind -> where NVIDIA publishes its TorchScript file (used when no detector is given).
DEFAULT_DETECTORS = {"inception": INCEPTION_URL, "vgg16": VGG16_URL}
KINDS = tuple(DEFAULT_DETECTORS)

_loaded: dict[tuple, Detector] = {}
_hashes: dict[tuple, str] = {}


@dataclass(eq=False)
class Detector:
    """A loaded TorchScript detector and the identity that every report carries."""

    module: torch.jit.ScriptModule
    path: Path
    sha256: str
    kind: str                      # 'inception' | 'vgg16': the role the detector plays
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    file_name: str = ""            # the name the user knows (a URL's file name, not the cache file's)

    @property
    def name(self) -> str:
        """``inception-2015-12-05.pt (sha256:f0ef3d1c0e33)``: file name + hash prefix."""
        return f"{self.file_name or self.path.name} (sha256:{self.sha256[:12]})"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [N, C, H, W] (C = 1 or 3, any size) -> float32 features [N, D]."""
        x = _check_uint8(images).to(self.device)
        return self._call(x, "features", return_features=True)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Inception class probabilities [N, 1008] (softmax without the output bias, as IS uses)."""
        x = _check_uint8(images).to(self.device)
        return self._call(x, "class probabilities", no_output_bias=True)

    def lpips(self, images: torch.Tensor) -> torch.Tensor:
        """float images [N, 3, H, W] in [0, 255] -> LPIPS embeddings [N, D] whose squared L2
        distance is the LPIPS distance (VGG16 detector)."""
        if images.ndim != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
            raise UserInputError(f"LPIPS expects float images [N, 3, H, W] in 0-255, got "
                                 f"{images.dtype} {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return self._call(x, "LPIPS embeddings", resize_images=False, return_lpips=True)

    def _call(self, x: torch.Tensor, what: str, **kwargs) -> torch.Tensor:
        try:
            with torch.no_grad():
                out = self.module(x, **kwargs)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"detector {self.name} failed to compute {what} for images "
                                  f"{tuple(x.shape)}: {first} (is it NVIDIA's {self.kind} TorchScript file?)") from None
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CheckpointError(f"detector {self.name} returned {shape} for {x.shape[0]} images; expected "
                                  f"[N, D] {what} (is it NVIDIA's {self.kind} TorchScript file?)")
        return out.to(torch.float32)


def _check_uint8(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
            or images.shape[1] not in (1, 3):
        desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise UserInputError(f"detectors take uint8 images [N, 1|3, H, W], got {desc}")
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a training run hashes it once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = sha256_file(path)
    return _hashes[key]


def load_detector(source: str | os.PathLike | Detector | None = None, kind: str = "inception",
                  device: str | torch.device = "cpu") -> Detector:
    """Load a TorchScript detector: a path, a ``file://`` or ``http(s)://`` URL (cached), or None for
    NVIDIA's published file of ``kind``. Loaded detectors are kept in memory per file and device."""
    if isinstance(source, Detector):
        return source if source.device == torch.device(device) else _to_device(source, torch.device(device))
    if kind not in KINDS:
        raise UserInputError(f"unknown detector kind {kind!r}; use one of {', '.join(KINDS)}")
    device = torch.device(device)
    where = str(source) if source is not None else DEFAULT_DETECTORS[kind]
    try:
        path = resolve(where, what=f"{kind} detector")
    except CheckpointError as exc:
        if where.startswith(("http://", "https://")):
            raise CheckpointError(f"{exc}. Download it where there is network access and pass "
                                  f"--detector {kind}=PATH") from None
        raise
    digest = file_sha256(path)
    key = (str(path.resolve()), digest, kind, str(device))
    if key in _loaded:
        return _loaded[key]
    module = load_torchscript(path, "detector", device,
                              hint=f"; NVIDIA's TorchScript detectors are {INCEPTION_URL} and {VGG16_URL}")
    file_name = os.path.basename(urllib.parse.urlparse(where).path) if "://" in where else path.name
    det = Detector(module=module, path=path, sha256=digest, kind=kind, device=device, file_name=file_name or path.name)
    _loaded[key] = det
    return det


def _to_device(det: Detector, device: torch.device) -> Detector:
    moved = load_detector(det.path, det.kind, device)
    moved.file_name = det.file_name
    return moved


def parse_detector_args(values: list[str] | tuple[str, ...], needed: set[str]) -> dict[str, str]:
    """``--detector`` values -> {kind: source}. ``KIND=PATH`` names the role; a bare ``PATH`` is allowed
    when the requested metrics need a single kind of detector."""
    out: dict[str, str] = {}
    bare = []
    for v in values:
        kind, sep, src = v.partition("=")
        if sep and kind in KINDS:
            out[kind] = src
        else:
            bare.append(v)
    if len(bare) > 1:
        raise UserInputError("give at most one --detector without a kind; name the others, "
                             "e.g. --detector inception=PATH --detector vgg16=PATH")
    if bare:
        free = sorted(needed - set(out))
        if len(free) != 1:
            raise UserInputError(
                f"--detector {bare[0]}: the metrics asked for need "
                f"{' and '.join(sorted(needed)) or 'no detector'}; say which it is, e.g. --detector inception=PATH")
        out[free[0]] = bare[0]
    return out

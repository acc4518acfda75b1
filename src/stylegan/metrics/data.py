"""Real images for the metrics: a dataset folder or zip (read by the training code's reader; optional
``dataset.json`` labels, the layout NVIDIA's dataset tool writes), an in-memory array, or any
iterable of uint8 batches.

Every source yields uint8 batches [N, C, H, W]; sources that know where they come from also give a
fingerprint, so that real-image statistics can be cached on disk and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DatasetError


class DatasetImages:
    """A dataset folder or zip read through the training code's reader
    (:class:`stylegan.data.dataset.ImageDataset`), in sorted order; mirrored copies only when
    ``mirror`` is asked for and the dataset has them."""

    def __init__(self, path: str | os.PathLike | None = None, use_labels: bool = False, dataset=None,
                 mirror: bool = False):
        self.mirror = mirror    # also read the mirrored copies (legacy metrics of a mirrored training set)
        if dataset is None:
            from ..data.dataset import ImageDataset
            # cache_limit=0: statistics are usually cached, so never decode the whole set up front.
            dataset = ImageDataset(Path(path).expanduser(), use_labels=use_labels, mirror=mirror, cache_limit=0,
                                   workers=min(8, os.cpu_count() or 1))
        self.dataset = dataset
        self.path = Path(dataset.path)
        self.name = dataset.name
        self.resolution = dataset.resolution
        self.shape = tuple(dataset.shape)              # (H, W)
        self.channels = min(dataset.num_channels, 3)   # alpha is not part of the image the detector sees
        self.labels = dataset.get_labels(np.arange(dataset.num_raw_images)) if dataset.has_labels else None

    def __len__(self) -> int:
        return len(self.dataset) if self.mirror and self.dataset.mirror else self.dataset.num_raw_images

    def fingerprint(self) -> str:
        """Changes whenever a file of the dataset changes (names, sizes, modification times)."""
        h = hashlib.sha256(f"{self.path.resolve()}:{len(self)}".encode())
        files = sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]
        for f in files:
            st = f.stat()
            rel = f.relative_to(self.path) if self.path.is_dir() else f.name
            h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()

    def batches(self, batch_size: int, max_items: int | None = None, keep=None) -> Iterator[np.ndarray | None]:
        """Images in dataset order, ``batch_size`` at a time; batch ``b`` is None (not read) unless
        ``keep(b)`` (all are read without ``keep``)."""
        n = len(self) if max_items is None else min(max_items, len(self))
        for b, i in enumerate(range(0, n, batch_size)):
            if keep is None or keep(b):
                yield self.dataset.get_images(np.arange(i, min(i + batch_size, n)))[:, :3]
            else:
                yield None


class ImageArray:
    """Images already in memory: uint8 [N, C, H, W] or [N, H, W, C]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, name: str = "array"):
        a = np.asarray(images)
        if a.dtype != np.uint8 or a.ndim != 4:
            raise DatasetError(f"real images must be uint8 [N, C, H, W] or [N, H, W, C], got {a.dtype} {a.shape}")
        if a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):
            a = a.transpose(0, 3, 1, 2)
        self.images = np.ascontiguousarray(a)
        self.labels = labels
        self.name = name
        self.resolution = a.shape[2]
        self.shape = tuple(a.shape[2:4])               # (H, W)
        self.channels = a.shape[1]

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.images.tobytes()).hexdigest()

    def batches(self, batch_size: int, max_items: int | None = None, keep=None) -> Iterator[np.ndarray | None]:
        n = len(self.images) if max_items is None else min(max_items, len(self.images))
        for b, i in enumerate(range(0, n, batch_size)):
            yield self.images[i:min(i + batch_size, n)] if keep is None or keep(b) else None


class ImageBatches:
    """Any iterable of uint8 batches [B, C, H, W] (e.g. a training data loader). It is not cached on
    disk unless ``cache_key`` names its content."""

    def __init__(self, batches: Iterable, name: str = "batches", cache_key: str | None = None,
                 labels: np.ndarray | None = None):
        self._batches = batches
        self.name = name
        self.labels = labels
        self._key = cache_key

    def __len__(self) -> int:
        return len(self._batches)  # type: ignore[arg-type]

    def fingerprint(self) -> str | None:
        return self._key

    def batches(self, batch_size: int, max_items: int | None = None, keep=None) -> Iterator[np.ndarray | None]:
        """The stream's own batches (``batch_size`` is ignored); batch ``i`` is None unless ``keep(i)``."""
        seen = 0
        for i, b in enumerate(self._batches):
            b = b.cpu().numpy() if hasattr(b, "cpu") else np.asarray(b)
            if b.dtype != np.uint8 or b.ndim != 4:
                raise DatasetError(f"real image batches must be uint8 [B, C, H, W], got {b.dtype} {b.shape}")
            if max_items is not None:
                b = b[:max_items - seen]
            seen += len(b)
            if len(b):
                yield b if keep is None or keep(i) else None
            if max_items is not None and seen >= max_items:
                return


def _has_labels_file(path: Path) -> bool:
    """Whether a dataset carries labels in ``dataset.json`` (without them, classes are drawn uniformly)."""
    try:
        if path.is_dir():
            text = (path / "dataset.json").read_text()
        else:
            with zipfile.ZipFile(path) as z:
                text = z.read("dataset.json").decode("utf-8")
        return bool(json.loads(text).get("labels"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, AttributeError):
        return False


def open_images(data, resolution: int | None = None, channels: int | None = None, use_labels: bool = False,
                mirror: bool = False):
    """A path (folder or zip), an opened :class:`~stylegan.data.dataset.ImageDataset`, a uint8 array,
    an object with ``batches(batch_size, max_items)``, or an iterable of uint8 batches -> a source of
    real images (checked against the model's size: ``resolution``, a side or ``(H, W)``)."""
    if data is None:
        raise DatasetError("this metric needs real images: pass a dataset (folder or zip of images)")
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        src = DatasetImages(path, use_labels=use_labels and _has_labels_file(path), mirror=mirror)
    elif isinstance(data, np.ndarray):
        src = ImageArray(data)
    elif hasattr(data, "get_images") and hasattr(data, "num_raw_images"):
        src = DatasetImages(dataset=data, mirror=mirror)   # an opened training dataset
    elif hasattr(data, "batches"):
        src = data
    elif isinstance(data, Iterable):
        src = ImageBatches(data)
    else:
        raise DatasetError(f"cannot read real images from a {type(data).__name__}")
    res = getattr(src, "resolution", None)
    have = getattr(src, "shape", None) or (None if res is None else (res, res))
    want = (resolution, resolution) if isinstance(resolution, int) else resolution
    if want is not None and have is not None and tuple(have) != tuple(want):
        size = f"{want[1]}x{want[0]}"
        raise DatasetError(f"the real images ({getattr(src, 'name', '')}) are {have[1]}x{have[0]} but the model "
                           f"makes {size}; make a dataset at the model's size (stylegan dataset --resolution "
                           f"{size if want[0] != want[1] else want[0]})")
    ch = getattr(src, "channels", None)
    if channels is not None and ch is not None and ch != channels:
        raise DatasetError(f"the real images have {ch} channel(s) but the model makes {channels}")
    return src

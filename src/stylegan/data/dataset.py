"""Training data: a folder or zip of same-size square images (+ optional ``dataset.json`` labels).

The layout is NVIDIA's (``stylegan dataset`` writes it; their ``dataset_tool.py`` output loads
unchanged): any image files, in sorted path order, and ``dataset.json`` =
``{"labels": [[relative_path, label], ...]}`` where a label is a class index or a float vector.

The order in which training sees the images is a pure function of ``(seed, position)``
(:func:`sample_indices`), so a run resumed from a checkpoint, or split over any number of
processes, reads exactly the same images in the same order as one uninterrupted run.

Datasets come from outside: an image is checked against :data:`MAX_PIXELS` (and, after the first, against
the first image's size) from its header, before it is decoded, so a small file that decodes to
gigabytes is refused; ``dataset.json`` is parsed by :func:`parse_labels`, one place for the reader and
the dataset tool, and a malformed label table is one :class:`DatasetError`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError
from ..files import ZIP_ERRORS
from ..networks.config import MAX_ASPECT, shape_problem

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
LABELS_NAME = "dataset.json"
CACHE_LIMIT_BYTES = 4 << 30      # decoded datasets up to this size are kept in memory
#: Largest image (width x height) decoded unless asked otherwise: 8192 x 8192 (a 67-megapixel photo).
MAX_PIXELS = 8192 * 8192
MAX_CLASSES = 1 << 16            # class indices in dataset.json are below this
MAX_LABEL_DIM = 1 << 12          # length of a float label vector
MAX_LABEL_VALUES = 1 << 28       # values of the label matrix (images x classes for one-hot labels)
_OPEN_LOCK = threading.Lock()


def open_image(f, name: str, max_pixels: int = MAX_PIXELS, size: tuple[int, int] | None = None) -> Image.Image:
    """``Image.open`` (header only) refusing, before anything is decoded, an image of more than ``max_pixels``
    pixels or (``size``) of another width x height: :class:`DatasetError`. The caller decodes (``load()``)."""
    prefix = f"{name}: " if name else ""
    with _OPEN_LOCK, warnings.catch_warnings():             # our limit replaces PIL's bomb warning ...
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(f)
        except Image.DecompressionBombError as exc:         # ... not its hard limit (2x its warning level)
            raise DatasetError(f"{prefix}{exc}") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise DatasetError(f"{prefix}{w}x{h} is {w * h / 1e6:.1f} megapixels, more than the limit of "
                           f"{max_pixels / 1e6:.1f} (--max-pixels)")
    if size is not None and (w, h) != size:
        im.close()
        raise DatasetError(f"{prefix}{w}x{h}, but the first image is {size[0]}x{size[1]}; all images must have "
                           f"the same size and channels (use `stylegan dataset`)")
    return im


def parse_labels(text: bytes | str, where: str) -> tuple[dict[str, int | list[float]] | None, list[str] | None]:
    """``dataset.json`` -> ({image name: class index or float vector} or None, class names or None).

    NVIDIA's layout ``{"labels": [[name, label], ...] | null}`` plus our optional ``class_names``; anything
    else (not JSON, wrong types, negative or huge classes, vectors of unequal length) is a DatasetError."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"{where} is not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where} must be a JSON object with a 'labels' list")
    table = data.get("labels")
    if table is None:
        return None, None
    if not isinstance(table, list) or not all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                                               for e in table):
        raise DatasetError(f"{where}: 'labels' must be a list of [image name, label] pairs")
    labels: dict[str, int | list[float]] = {}
    width = None
    for name, label in table:
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < MAX_CLASSES:
                raise DatasetError(f"{where}: {name[:80]} has class {label}; classes are 0 to {MAX_CLASSES - 1}")
        elif isinstance(label, list) and 1 <= len(label) <= MAX_LABEL_DIM and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in label):
            if width not in (None, len(label)):
                raise DatasetError(f"{where}: label vectors have different lengths ({width} and {len(label)})")
            width = len(label)
        else:
            raise DatasetError(f"{where}: the label of {name[:80]} must be a class index or a list of numbers, "
                               f"not {str(label)[:40]}")
        labels[name.replace("\\", "/")] = label
    names = data.get("class_names")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        names = None
    return labels, names


def check_shape(h: int, w: int, where: str, error=DatasetError) -> tuple[int, int]:
    """``(h, w)`` if a model can have it (:func:`~stylegan.networks.config.shape_problem`) and the longer side
    is >= 8 (what training needs), else ``error`` saying so."""
    if shape_problem(h, w) is not None or max(h, w) < 8:
        raise error(f"{where} {w}x{h}: training needs sides that are powers of two, the longer one >= 8, at most "
                    f"{MAX_ASPECT}:1 (e.g. 64x64, 512x256, 128x512)")
    return h, w


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


class ImageDataset:
    """Random access to the images of a dataset folder or zip as uint8 ``[C, H, W]`` arrays.

    ``mirror=True`` doubles the dataset with horizontally flipped copies (index ``i + len``).
    Datasets whose decoded size is under ``cache_limit`` bytes (default :data:`CACHE_LIMIT_BYTES`) are
    decoded once into memory; larger ones are read on demand with ``workers`` threads.
    ``max_images`` keeps the first N images (in name order), or with ``subset_seed`` a random N of them (as
    NVIDIA's ``--subset``: the first N of a seeded permutation, kept in name order).
    """

    def __init__(self, path: str | os.PathLike, use_labels: bool = False, mirror: bool = False,
                 max_images: int | None = None, cache_limit: int | None = None, workers: int = 2,
                 subset_seed: int | None = None):
        self.path = Path(path)
        self.name = self.path.stem if self.path.suffix.lower() == ".zip" else self.path.name
        self.mirror = bool(mirror)
        self.workers = max(int(workers), 1)
        self._local = threading.local()
        if self.path.is_dir():
            self._type = "dir"
            names = sorted(str(p.relative_to(self.path)).replace(os.sep, "/")
                           for p in self.path.rglob("*") if p.is_file())
        elif self.path.is_file():
            self._type = "zip"
            try:
                with zipfile.ZipFile(self.path) as z:
                    names = sorted(n for n in z.namelist() if not n.endswith("/"))
            except ZIP_ERRORS as exc:
                raise DatasetError(f"{self.path} is not a readable zip file ({exc}); "
                                   f"create a dataset with `stylegan dataset`") from None
        else:
            raise DatasetError(f"dataset not found: {self.path}")
        self._names = [n for n in names if is_image_name(n)]
        if max_images is not None and subset_seed is not None:
            keep = np.random.RandomState(subset_seed).permutation(len(self._names))[:max_images]
            self._names = [self._names[i] for i in sorted(keep)]
        elif max_images is not None:
            self._names = self._names[:max_images]
        if not self._names:
            raise DatasetError(f"{self.path} contains no images")
        first = self._read(0)
        self.image_shape = tuple(first.shape)  # [C, H, W]
        c, h, w = self.image_shape
        if h == w and (h & (h - 1) or h < 8):
            raise DatasetError(f"{self.path}: images are {w}x{h}; training needs square images with a power-of-two "
                               f"side >= 8. Convert them with `stylegan dataset --source {self.path} --dest OUT.zip "
                               f"--resolution {_next_pow2(max(h, w))}`")
        check_shape(h, w, f"{self.path}: images are")
        if c not in (1, 3, 4):
            raise DatasetError(f"{self.path}: images have {c} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)")
        self._labels, self.class_names = self._load_labels() if use_labels else (None, None)
        self._cache = None
        limit = CACHE_LIMIT_BYTES if cache_limit is None else cache_limit
        if len(self._names) * int(np.prod(self.image_shape)) <= limit:
            self._cache = np.stack(self._read_many(range(len(self._names))))

    # ---- properties -------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        """The longer side (a square dataset's side)."""
        return max(self.image_shape[1:])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return tuple(self.image_shape[1:])

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def num_raw_images(self) -> int:
        return len(self._names)

    @property
    def cached(self) -> bool:
        """True when the decoded images are held in memory."""
        return self._cache is not None

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def label_dim(self) -> int:
        return 0 if self._labels is None else int(self._labels.shape[1])

    def __len__(self) -> int:
        return len(self._names) * (2 if self.mirror else 1)

    def describe(self) -> dict:
        """Plain data for ``training_options.json`` and checkpoints (NVIDIA's ``training_set_kwargs`` keys)."""
        d = {"path": str(self.path), "resolution": self.resolution, "use_labels": self.has_labels,
             "max_size": self.num_raw_images, "xflip": self.mirror, "num_channels": self.num_channels,
             "label_dim": self.label_dim, "class_names": self.class_names}
        if self.shape[0] != self.shape[1]:
            d["img_shape"] = list(self.shape)       # ours: a non-square dataset (NVIDIA's have none)
        return d

    # ---- reading ----------------------------------------------------------------------------
    def _zip(self) -> zipfile.ZipFile:
        z = getattr(self._local, "zip", None)
        if z is None:
            z = self._local.zip = zipfile.ZipFile(self.path)
        return z

    def _open(self, name: str):
        if self._type == "dir":
            return open(self.path / name, "rb")
        return self._zip().open(name, "r")

    def _read(self, raw_idx: int) -> np.ndarray:
        name = self._names[raw_idx]
        size = (self.image_shape[2], self.image_shape[1]) if hasattr(self, "image_shape") else None
        try:
            with self._open(name) as f, open_image(f, f"{self.path}: {name}", size=size) as im:
                im.load()
                if im.mode not in ("L", "RGB", "RGBA"):
                    im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
                arr = np.asarray(im)
        except (UnidentifiedImageError, SyntaxError, Image.DecompressionBombError, *ZIP_ERRORS) as exc:
            raise DatasetError(f"{self.path}: cannot read {name} ({str(exc)[:200]}); rebuild the dataset with "
                               f"`stylegan dataset`, which skips unreadable files") from None
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        arr = arr.transpose(2, 0, 1)
        if hasattr(self, "image_shape") and arr.shape != self.image_shape:
            raise DatasetError(f"{self.path}: {name} is {arr.shape[2]}x{arr.shape[1]}x{arr.shape[0]}, the "
                               f"first image is {self.image_shape[2]}x{self.image_shape[1]}x{self.image_shape[0]}; "
                               f"all images must have the same size and channels (use `stylegan dataset`)")
        return np.ascontiguousarray(arr)

    def _read_many(self, raw_indices) -> list[np.ndarray]:
        raw_indices = list(raw_indices)
        if self.workers <= 1 or len(raw_indices) < 8:
            return [self._read(i) for i in raw_indices]
        if getattr(self, "_pool", None) is None:
            self._pool = ThreadPoolExecutor(self.workers)
        return list(self._pool.map(self._read, raw_indices))

    def _load_labels(self) -> tuple[np.ndarray, list[str] | None]:
        try:
            if self._type == "dir":
                text = (self.path / LABELS_NAME).read_bytes()
            else:
                text = self._zip().read(LABELS_NAME)
        except (FileNotFoundError, KeyError):
            raise DatasetError(f"{self.path} has no {LABELS_NAME}, so it cannot be used for conditional training "
                               f"(create one with `stylegan dataset --labels folders`)") from None
        except ZIP_ERRORS as exc:
            raise DatasetError(f"{self.path}: cannot read {LABELS_NAME} ({str(exc)[:200]})") from None
        table, names = parse_labels(text, f"{self.path}: {LABELS_NAME}")
        if not table:
            raise DatasetError(f"{self.path}: {LABELS_NAME} has no labels")
        missing = [n for n in self._names if n not in table]
        if missing:
            raise DatasetError(f"{self.path}: {len(missing)} image(s) have no label in {LABELS_NAME}, "
                               f"e.g. {missing[0]}")
        raw = [table[n] for n in self._names]
        if all(isinstance(v, int) for v in raw):
            idx = np.asarray(raw, dtype=np.int64)
            classes = int(idx.max()) + 1
            if len(idx) * classes > MAX_LABEL_VALUES:
                raise DatasetError(f"{self.path}: {len(idx)} images x {classes} classes of one-hot labels is too "
                                   f"many (at most {MAX_LABEL_VALUES} values)")
            labels = np.zeros([len(idx), classes], dtype=np.float32)
            labels[np.arange(len(idx)), idx] = 1
        elif all(isinstance(v, list) for v in raw):
            labels = np.asarray(raw, dtype=np.float32)
        else:
            raise DatasetError(f"{self.path}: {LABELS_NAME} mixes class indices and label vectors")
        return labels, names

    def get_images(self, indices) -> np.ndarray:
        """uint8 ``[N, C, H, W]`` for dataset indices (mirrored copies for ``i >= num_raw_images``)."""
        indices = np.asarray(indices, dtype=np.int64)
        raw = indices % self.num_raw_images
        if self._cache is not None:
            imgs = self._cache[raw]
        else:
            imgs = np.stack(self._read_many(raw))
        flip = indices >= self.num_raw_images
        if flip.any():
            imgs = imgs.copy()
            imgs[flip] = imgs[flip][..., ::-1]
        return imgs

    def get_labels(self, indices) -> np.ndarray:
        """float32 ``[N, label_dim]`` (``[N, 0]`` when unconditional)."""
        raw = np.asarray(indices, dtype=np.int64) % self.num_raw_images
        if self._labels is None:
            return np.zeros([len(raw), 0], dtype=np.float32)
        return self._labels[raw]

    def get_batch(self, indices, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(float images in [-1, 1] ``[N, C, H, W]``, labels ``[N, label_dim]``) on ``device``."""
        imgs = torch.from_numpy(self.get_images(indices)).to(device)
        labels = torch.from_numpy(self.get_labels(indices)).to(device)
        return imgs.to(torch.float32) / 127.5 - 1, labels


def _next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, dataset_size: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch]).permutation(dataset_size)
    perm.setflags(write=False)
    return perm


def sample_indices(seed: int, start: int, count: int, dataset_size: int) -> np.ndarray:
    """Dataset indices at positions ``start .. start+count`` of the endless training stream.

    The stream is a sequence of epochs, each a fresh permutation drawn from ``(seed, epoch)``:
    every image is seen once per epoch, the order never repeats, and any position can be read
    without replaying the ones before it (exact resume, identical splits over processes).
    """
    out = np.empty(count, dtype=np.int64)
    pos = start
    filled = 0
    while filled < count:
        epoch, offset = divmod(pos, dataset_size)
        perm = _epoch_permutation(int(seed), int(epoch), int(dataset_size))
        take = min(count - filled, dataset_size - offset)
        out[filled:filled + take] = perm[offset:offset + take]
        filled += take
        pos += take
    return out

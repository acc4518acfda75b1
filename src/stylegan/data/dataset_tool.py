"""``stylegan dataset``: turn a folder or zip of arbitrary images into a training dataset.

Output (zip or folder) in NVIDIA's layout: ``00000/img00000000.png`` ... plus ``dataset.json``
``{"labels": [[name, class], ...] | null, "class_names": [...]}`` (``class_names`` is our
addition; NVIDIA's loader ignores it). Every image is cropped or padded to a square, resized to
one power-of-two resolution and converted to one channel layout; or, for a non-square model
(``resolution=(H, W)``, ``--resolution WxH``), cropped or padded to that aspect and resized to W x H
(``dataset.json`` then also holds ``"img_shape": [H, W]``). Files that cannot be read or
do not fit are skipped and listed in the report; nothing stops the run but a bad destination.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from ..errors import DatasetError, UserInputError
from ..files import ZIP_ERRORS, atomic_folder, atomic_output
from ..progress import progress
from .dataset import LABELS_NAME, MAX_PIXELS, check_shape, is_image_name, open_image, parse_labels

TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "none")
RESIZE_FILTERS = {"lanczos": Image.LANCZOS, "box": Image.BOX, "bicubic": Image.BICUBIC,
                  "bilinear": Image.BILINEAR, "hamming": Image.HAMMING, "nearest": Image.NEAREST}
MODES = {"rgb": ("RGB", 3), "gray": ("L", 1), "grey": ("L", 1), "rgba": ("RGBA", 4)}
LABEL_SOURCES = ("auto", "folders", "file", "none")


@dataclass
class DatasetReport:
    """What :func:`make_dataset` did: counts, the skipped files and why, the label classes."""

    dest: str
    resolution: int
    channels: int
    written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] | None = None
    shape: tuple[int, int] | None = None       # (H, W); None until known

    @property
    def size_text(self) -> str:
        """``WxH`` of the images."""
        h, w = self.shape or (self.resolution, self.resolution)
        return f"{w}x{h}"

    def to_dict(self) -> dict:
        d = {"dest": self.dest, "resolution": self.resolution, "channels": self.channels,
             "written": self.written, "class_names": self.class_names,
             "skipped": [{"file": f, "reason": r} for f, r in self.skipped]}
        if self.shape is not None and self.shape[0] != self.shape[1]:
            d["img_shape"] = list(self.shape)
        return d


def parse_color(value: str | tuple) -> tuple[int, int, int]:
    """'white', 'black', '#rrggbb', 'r,g,b' -> (r, g, b)."""
    if isinstance(value, tuple):
        return value
    text = str(value).strip()
    try:
        if "," in text:
            rgb = tuple(int(v) for v in text.split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
            return rgb
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserInputError(f"invalid colour {value!r}; use a name (white), #rrggbb or R,G,B") from None


class _Source:
    """Files of a source folder or zip: sorted relative names, bytes on demand (at most ``max_bytes`` each)."""

    def __init__(self, path: Path, max_bytes: int | None = None):
        self.path = path
        self.max_bytes = max_bytes
        self.sizes: dict[str, int] = {}
        if path.is_dir():
            self.zip = None
            self.names = sorted(str(p.relative_to(path)).replace(os.sep, "/") for p in path.rglob("*")
                                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file() and zipfile.is_zipfile(path):
            self.zip = path
            try:
                with zipfile.ZipFile(path) as z:
                    self.sizes = {i.filename: i.file_size for i in z.infolist()}
            except ZIP_ERRORS as exc:
                raise DatasetError(f"{path} is a broken zip archive ({str(exc)[:200]})") from None
            self.names = sorted(n for n in self.sizes if not n.endswith("/") and "__MACOSX" not in n)
        elif path.exists():
            raise DatasetError(f"{path} is neither a folder nor a zip file")
        else:
            raise DatasetError(f"source not found: {path}")

    def read(self, name: str) -> bytes:
        """The file's bytes; OSError (a skip reason) when it is larger than ``max_bytes``."""
        size = self.sizes[name] if self.zip is not None else (self.path / name).stat().st_size
        if self.max_bytes is not None and size > self.max_bytes:
            raise OSError(f"the file is {size / 2**20:.0f} MB, larger than any image within --max-pixels")
        if self.zip is None:
            return (self.path / name).read_bytes()
        with zipfile.ZipFile(self.zip) as z:
            return z.read(name)

    def exists(self, name: str) -> bool:
        return name in self.names


def _flatten_alpha(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite transparent images onto ``background``; other images go to RGB or L unchanged."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im, dtype=np.float64)            # 16-bit / float greyscale: scale, don't clip
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        if im.mode == "F" and arr.max(initial=0) <= 1:
            top = 1.0
        return Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if not has_alpha:
        return im.convert("L") if im.mode in ("1", "L") else im.convert("RGB")
    rgba = im.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _to_mode(im: Image.Image, mode: str, background: tuple[int, int, int]) -> Image.Image:
    if mode == "RGBA":
        return im.convert("RGBA")
    im = _flatten_alpha(im, background)
    return im.convert(mode)


def _fill(mode: str, background: tuple[int, int, int]):
    if mode == "RGBA":
        return (0, 0, 0, 0)
    if mode == "L":
        return round(0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2])
    return background


def transform_image(im: Image.Image, resolution: int | None, transform: str, resize_filter: int, mode: str,
                    background: tuple[int, int, int], aspect: float = 2.0,
                    max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Channel conversion, then crop/pad to a square, then resize to ``resolution`` (None: keep the size).
    A padded square of more than ``max_pixels`` is refused (:func:`_padded`)."""
    im = _to_mode(im, mode, background)
    w, h = im.size
    if transform == "center-crop":
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    elif transform == "pad":
        im = _padded(im, (max(w, h), max(w, h)), mode, background, max_pixels)
    elif transform == "center-crop-wide":
        # Crop to the wide aspect ratio, then letterbox into a square canvas (NVIDIA's car layout).
        if w / h > aspect:
            cw, ch = max(1, round(h * aspect)), h
        else:
            cw, ch = w, max(1, round(w / aspect))
        im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
        side = resolution or cw
        im = im.resize((side, max(round(side / aspect), 1)), resize_filter)
        canvas = Image.new(mode, (side, side), _fill(mode, background))
        canvas.paste(im, (0, (side - im.size[1]) // 2))
        return canvas
    elif w != h:
        raise ValueError(f"not square ({w}x{h}); use --transform center-crop or pad")
    if resolution is not None and im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), resize_filter)
    return im


def fit_shape(im: Image.Image, shape: tuple[int, int], transform: str, resize_filter: int, mode: str,
              background: tuple[int, int, int], aspect: float = 2.0, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A non-square target ``shape = (H, W)``: ``center-crop`` keeps the largest centred window of the aspect
    ``W / H``, ``pad`` adds background around the image to that aspect, ``center-crop-wide`` crops to
    ``aspect`` and letterboxes the result into W x H, ``none`` needs images of that aspect already; then
    resize to W x H. A padded canvas of more than ``max_pixels`` is refused (:func:`_padded`)."""
    th, tw = shape
    w, h = im.size
    if transform == "none" and w * th != h * tw:
        raise ValueError(f"not of the {tw}x{th} aspect ({w}x{h}); use --transform center-crop or pad")
    if transform in ("center-crop", "center-crop-wide"):
        target = aspect if transform == "center-crop-wide" else tw / th
        cw, ch = (max(1, round(h * target)), h) if w > h * target else (w, max(1, round(w / target)))
        im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
        if transform == "center-crop-wide":
            scale = min(tw / cw, th / ch)
            im = im.resize((max(round(cw * scale), 1), max(round(ch * scale), 1)), resize_filter)
            canvas = Image.new(mode, (tw, th), _fill(mode, background))
            canvas.paste(im, ((tw - im.size[0]) // 2, (th - im.size[1]) // 2))
            return canvas
    elif transform == "pad":
        size = (w, round(w * th / tw)) if w * th >= h * tw else (round(h * tw / th), h)
        im = _padded(im, size, mode, background, max_pixels)
    return im if im.size == (tw, th) else im.resize((tw, th), resize_filter)


def _padded(im: Image.Image, size: tuple[int, int], mode: str, background: tuple[int, int, int],
            max_pixels: int) -> Image.Image:
    """``im`` centred on a ``size = (W, H)`` canvas of the background; a DatasetError (so skipped as "image
    too large") if the canvas has more than ``max_pixels`` pixels: a 1x70000 strip would otherwise need a
    70000x70000 canvas from a file of a hundred bytes."""
    cw, ch = size
    if cw * ch > max_pixels:
        raise DatasetError(f"padded to {cw}x{ch}, {cw * ch / 1e6:.1f} megapixels, more than the limit of "
                           f"{max_pixels / 1e6:.1f} (--max-pixels)")
    canvas = Image.new(mode, (cw, ch), _fill(mode, background))
    canvas.paste(im, ((cw - im.size[0]) // 2, (ch - im.size[1]) // 2))
    return canvas


def _check_resolution(res: int, hint: str) -> int:
    if res < 8 or res & (res - 1):
        lower = 1 << (res.bit_length() - 1)
        raise DatasetError(f"{hint} {res}x{res}, which is not a power of two >= 8; training needs 8, 16, 32, ... "
                           f"Pass --resolution {max(lower, 8)} (or {max(lower * 2, 8)}) to resize every image")
    return res


def _class_of(name: str) -> str | None:
    parts = name.split("/")
    return parts[0] if len(parts) > 1 else None


def make_dataset(source: str | os.PathLike, dest: str | os.PathLike, resolution: int | tuple[int, int] | None = None,
                 transform: str = "center-crop", resize_filter: str = "lanczos", mode: str = "rgb",
                 background: str | tuple = "white", labels: str = "auto", max_images: int | None = None,
                 aspect: float = 2.0, workers: int | None = None, overwrite: bool = False,
                 max_pixels: int = MAX_PIXELS) -> DatasetReport:
    """Convert the images under ``source`` (folder or zip) into a dataset at ``dest`` (``.zip`` or folder).

    ``resolution``: the side of square images, or ``(H, W)`` for a non-square model (:func:`fit_shape`);
    None keeps the first image's (square) size. Images of more than ``max_pixels`` pixels are skipped
    (and reported) before they are decoded."""
    source, dest = Path(source), Path(dest)
    if transform not in TRANSFORMS:
        raise UserInputError(f"unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}")
    if resize_filter not in RESIZE_FILTERS:
        raise UserInputError(f"unknown resize filter {resize_filter!r}; use one of {', '.join(RESIZE_FILTERS)}")
    if mode not in MODES:
        raise UserInputError(f"unknown colour mode {mode!r}; use rgb, gray or rgba")
    if labels not in LABEL_SOURCES:
        raise UserInputError(f"unknown label source {labels!r}; use one of {', '.join(LABEL_SOURCES)}")
    shape = None
    if isinstance(resolution, (tuple, list)):
        shape = (int(resolution[0]), int(resolution[1]))
        if shape[0] == shape[1]:
            resolution, shape = shape[0], None
        else:
            check_shape(*shape, "--resolution is", UserInputError)
            resolution = max(shape)
    if resolution is not None:
        _check_resolution(int(resolution), "--resolution is")
    if not (isinstance(aspect, (int, float)) and 1 / 16 <= aspect <= 16):     # also refuses nan and inf
        raise UserInputError(f"--aspect is {aspect}; it must be a width:height ratio between 1/16 and 16")
    if max_pixels < 1:
        raise UserInputError("--max-pixels must be at least 1")
    bg = parse_color(background)
    pil_mode, channels = MODES[mode]
    filt = RESIZE_FILTERS[resize_filter]
    src = _Source(source, max_bytes=8 * max_pixels + (1 << 20))   # 16-bit RGBA, uncompressed, + metadata
    if dest.resolve() == source.resolve():
        raise UserInputError("--dest must differ from --source")
    _check_dest(dest, overwrite)

    report = DatasetReport(dest=str(dest), resolution=resolution or 0, channels=channels)
    candidates = []
    for name in src.names:
        if name == LABELS_NAME or name.endswith("/" + LABELS_NAME):
            continue
        if not is_image_name(name):
            report.skipped.append((name, "not an image file"))
            continue
        candidates.append(name)

    label_of, class_names = _labels(src, candidates, labels, report)
    if label_of is not None:
        candidates = [n for n in candidates if n in label_of]
    if max_images is not None:
        candidates = candidates[:max_images]
    if not candidates:
        raise DatasetError(f"{source} contains no usable images")

    def load(name: str):
        try:
            with open_image(io.BytesIO(src.read(name)), "", max_pixels) as im:
                im.load()
                im = ImageOps.exif_transpose(im)            # phone photos: apply the EXIF orientation
                out = (transform_image(im, resolution, transform, filt, pil_mode, bg, aspect, max_pixels)
                       if shape is None else
                       fit_shape(_to_mode(im, pil_mode, bg), shape, transform, filt, pil_mode, bg, aspect, max_pixels))
            return np.asarray(out), None
        except DatasetError as exc:
            return None, f"image too large: {exc}"
        except Image.DecompressionBombError as exc:
            return None, f"image too large: {exc}"
        except MemoryError:
            return None, "image too large: not enough memory to decode it"
        except UnidentifiedImageError:                      # its message names the in-memory buffer
            return None, "unreadable: not an image format Pillow can decode"
        except (SyntaxError, *ZIP_ERRORS) as exc:
            return None, str(exc) if str(exc).startswith(("not square", "not of the")) else f"unreadable: {exc}"

    workers = workers or min(4, os.cpu_count() or 1)
    size = resolution
    want = shape
    entries: list[tuple[str, object]] = []
    with _Writer(dest) as writer, ThreadPoolExecutor(workers) as pool:
        results = _bounded_map(pool, load, candidates, chunk=4 * workers + 16)
        for name, (arr, err) in progress(zip(candidates, results), total=len(candidates), desc="dataset",
                                         unit="img"):
            if err is not None:
                report.skipped.append((name, err))
                continue
            h, w = arr.shape[:2]
            if size is None:
                size = _check_resolution(h, f"the first image ({name}) is") if h == w else None
                if size is None:
                    report.skipped.append((name, f"not square ({w}x{h})"))
                    continue
            want = want or (size, size)
            if (h, w) != want:
                reason = (f"size {w}x{h} differs from {want[1]}x{want[0]}; pass --resolution to resize every "
                          f"image")
                report.skipped.append((name, reason))
                continue
            idx = report.written
            arcname = f"{idx // 1000:05d}/img{idx:08d}.png"
            buf = io.BytesIO()
            Image.fromarray(arr, pil_mode).save(buf, format="PNG", compress_level=1)
            writer.add(arcname, buf.getvalue())
            if label_of is not None:
                entries.append([arcname, label_of[name]])
            report.written += 1
        if report.written == 0:
            raise DatasetError(f"no image of {source} could be converted "
                               f"(first problem: {report.skipped[0][0]}: {report.skipped[0][1]})")
        meta = {"labels": entries if label_of is not None else None}
        if class_names is not None:
            meta["class_names"] = class_names
        if shape is not None:
            meta["img_shape"] = list(shape)
        writer.add(LABELS_NAME, json.dumps(meta).encode("utf-8"))
    report.resolution = size
    report.shape = want
    report.class_names = class_names
    return report


def _bounded_map(pool, fn, items, chunk: int):
    """``pool.map`` that keeps at most ``chunk`` results in memory (order preserved)."""
    for start in range(0, len(items), chunk):
        yield from pool.map(fn, items[start:start + chunk])


def _labels(src: _Source, names: list[str], how: str, report: DatasetReport):
    """-> (source name -> label or None, class names or None)."""
    if how == "none":
        return None, None
    if how in ("auto", "file") and src.exists(LABELS_NAME):
        try:
            text = src.read(LABELS_NAME)
        except ZIP_ERRORS as exc:
            raise DatasetError(f"cannot read {src.path}/{LABELS_NAME} ({exc})") from None
        label_of, _ = parse_labels(text, f"{src.path}/{LABELS_NAME}")
        if not label_of:
            return None, None
        for n in names:
            if n not in label_of:
                report.skipped.append((n, f"no label in {LABELS_NAME}"))
        return label_of, None
    if how == "file":
        raise DatasetError(f"--labels file: {src.path} has no {LABELS_NAME}")
    classes = sorted({c for c in map(_class_of, names) if c is not None})
    if how == "auto" and (len(classes) < 2 or any(_class_of(n) is None for n in names)):
        return None, None
    if how == "folders" and not classes:
        raise DatasetError(f"--labels folders: {src.path} has no sub-folders; put each class in its own folder")
    index = {c: i for i, c in enumerate(classes)}
    label_of = {}
    for n in names:
        c = _class_of(n)
        if c is None:
            report.skipped.append((n, "not inside a class folder"))
        else:
            label_of[n] = index[c]
    return label_of, classes


def _check_dest(dest: Path, overwrite: bool) -> None:
    if dest.suffix.lower() == ".zip":
        if dest.exists() and not overwrite:
            raise UserInputError(f"{dest} already exists; pass --overwrite to replace it")
    elif dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not overwrite)):
        raise UserInputError(f"{dest} already exists and is not an empty folder; pass --overwrite to replace it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create {dest.parent}: {exc.strerror or exc}") from None


class _Writer:
    """Writes into a temporary zip or folder beside ``dest``, moved into place only on success."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.is_zip = dest.suffix.lower() == ".zip"

    def __enter__(self):
        self._target = atomic_output(self.dest) if self.is_zip else atomic_folder(self.dest, replace=True)
        self.tmp = self._target.__enter__()
        if self.is_zip:
            self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        return self

    def add(self, name: str, data: bytes) -> None:
        if self.is_zip:
            self.zip.writestr(name, data)
        else:
            path = self.tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.is_zip:
                self.zip.close()
        except BaseException as close_error:
            self._target.__exit__(type(close_error), close_error, close_error.__traceback__)
            raise
        return self._target.__exit__(exc_type, exc, tb)

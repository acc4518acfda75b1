"""Images the user looks at: conversion to uint8, PNG/JPEG writing (atomic), grids, reading."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import UserInputError
from ..files import atomic_write


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] -> [N, H, W, C] uint8, as NVIDIA's writer does:
    ``(x * 127.5 + 128).clamp(0, 255)`` truncated to uint8 (i.e. round half up)."""
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got {tuple(images.shape)}")
    x = (images.detach().to(torch.float32).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


def to_pil(image: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 -> PIL image (C = 1 grey, 3 RGB, 4 RGBA)."""
    if image.ndim == 3 and image.shape[2] == 1:
        return Image.fromarray(image[:, :, 0], "L")
    if image.ndim == 2:
        return Image.fromarray(image, "L")
    mode = {3: "RGB", 4: "RGBA"}.get(image.shape[2])
    if mode is None:
        raise ValueError(f"cannot save an image with {image.shape[2]} channels")
    return Image.fromarray(image, mode)


def save_image(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Write an image atomically (temp file + rename): a crash never leaves a half-written file."""
    path = Path(path)
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    if fmt == "JPEG" and pil.mode == "RGBA":
        pil = pil.convert("RGB")
    return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})))


def make_grid(images: np.ndarray | list[np.ndarray], rows: int, cols: int, pad: int = 0,
              pad_value: int = 0) -> np.ndarray:
    """Tile [N, H, W, C] images row-major into one [rows*H, cols*W, C] image; missing cells stay blank."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected [N, H, W, C] images, got {images.shape}")
    n, h, w, c = images.shape
    if n > rows * cols:
        raise UserInputError(f"a {rows}x{cols} grid holds {rows * cols} images, got {n}")
    grid = np.full([rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c], pad_value, dtype=images.dtype)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = r * (h + pad), col * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def parse_grid(spec: str) -> tuple[int, int]:
    """``'3x4'`` or ``'3,4'`` -> (rows, cols)."""
    parts = str(spec).lower().replace(",", "x").split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise UserInputError(f"invalid grid {spec!r}; use ROWSxCOLS, e.g. 2x4") from None
    if rows < 1 or cols < 1:
        raise UserInputError(f"invalid grid {spec!r}: rows and columns must be positive")
    return rows, cols


def load_image(path: str | os.PathLike, resolution: int | tuple[int, int] | None = None, channels: int = 3,
               crop: str = "center") -> np.ndarray:
    """Read an image as [H, W, C] uint8; optionally centre-crop to a square and resize (Lanczos), or with
    ``resolution=(H, W)`` (a non-square model) centre-crop to that aspect and resize to W x H."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            pil = im.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
    except FileNotFoundError:
        raise UserInputError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserInputError(f"cannot read image {path}: {exc}") from None
    if isinstance(resolution, (tuple, list)) and resolution[0] != resolution[1]:
        from ..data.dataset_tool import fit_shape
        h, w = resolution
        pil = (fit_shape(pil, (h, w), "center-crop", Image.LANCZOS, pil.mode, (255, 255, 255)) if crop == "center"
               else pil.resize((w, h), Image.LANCZOS))
    elif resolution is not None:
        resolution = resolution[0] if isinstance(resolution, (tuple, list)) else resolution
        if crop == "center":
            w, h = pil.size
            s = min(w, h)
            pil = pil.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        pil = pil.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(pil)
    return arr[:, :, None] if arr.ndim == 2 else arr


def from_uint8(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """[N, H, W, C] (or [H, W, C]) uint8 -> [N, C, H, W] float32 in [-1, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if not a.flags.writeable:       # e.g. np.asarray(PIL image): torch would warn of a read-only tensor
        a = a.copy()
    return torch.from_numpy(a).to(device).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1

"""The explorer's "upload a photo": the photo's bytes -> a target image -> the encoder's w (plus optional
refinement steps), kept as an uploaded latent so that every other control of the page acts on it.

Uploaded bytes are hostile: only the common photo formats are opened (never EPS, which PIL hands to
Ghostscript, nor the other plugins), the image's size is read from its header and refused above
:data:`MAX_PHOTO_PIXELS` before anything is decoded (PIL's own decompression-bomb check fires earlier for
larger claims), only the first frame of an animation is decoded, and every decoder failure is one line.

An encoder is offered only where one fits the model: the file the operator named for it (``stylegan serve
--encoder MODEL=FILE``, checked at start-up), else the shipped encoder of the built-in model
(:func:`stylegan.checkpoints.encoder.load_encoder`: safetensors, header and shapes checked), each checked
against the model's mapping network, so the built-in model and models tuned from it (pivotal tuning keeps
the mapping) have one and others say why not.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import StyleGANError, UserInputError
from .models import LoadedModel

#: Formats an uploaded photo may have (PIL format names).
PHOTO_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
#: Largest photo decoded (width x height): a 25-megapixel camera image; larger ones are refused unread.
MAX_PHOTO_PIXELS = 25_000_000
#: Refinement steps the page may ask for after the encoder (each one a forward and backward pass of G).
MAX_PHOTO_STEPS = 50
#: The encoder offered where the operator named none (the built-in model's shipped one).
ENCODER_NAME = "builtin"
#: Highest face number the page may ask for (0 = the largest face of the photo).
MAX_FACE = 99
_CACHE_KEY = "photo-encoder"


class EncoderUnavailable(UserInputError):
    """The model has no encoder that fits it."""


def decode_photo(data: bytes, name: str, resolution: int, channels: int = 3,
                 max_pixels: int = MAX_PHOTO_PIXELS, face: int | None = None) -> np.ndarray:
    """Uploaded photo bytes -> the model's target, [resolution, resolution, channels] uint8: EXIF orientation
    applied, transparency composited on white (how the built-in model's training images were made), centre
    crop, Lanczos resize (``stylegan dataset``'s ``transform_image``); with ``face`` (0 = the largest) instead
    the FFHQ alignment of that face, as ``stylegan project --face`` makes it. Bad input: :class:`UserInputError`."""
    from ..data.dataset_tool import _to_mode, transform_image
    if not data:
        raise UserInputError(f"{name} is empty")
    try:
        im = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
    except Image.DecompressionBombError as exc:
        raise UserInputError(f"{name}: image too large ({exc})") from None
    except Exception:  # noqa: BLE001 - PIL's format probes raise many types on hostile bytes
        raise UserInputError(f"{name} is not a photo the explorer reads "
                             f"({', '.join(PHOTO_FORMATS)})") from None
    with im:
        w, h, fmt = *im.size, im.format
        if w * h > max_pixels:
            raise UserInputError(f"{name}: {w}x{h} is {w * h / 1e6:.1f} megapixels, more than the explorer's "
                                 f"limit of {max_pixels / 1e6:g}")
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
            mode = "L" if channels == 1 else "RGB"
            if face is not None:
                return _aligned(np.array(_to_mode(im, "RGB", (255, 255, 255))), name, resolution, channels, face)
            out = transform_image(im, resolution, "center-crop", Image.LANCZOS, mode, (255, 255, 255))
        except MemoryError:
            raise UserInputError(f"{name}: not enough memory to decode it") from None
        except StyleGANError:
            raise
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt data: PIL's decoders raise many types
            raise UserInputError(f"{name}: cannot decode the {fmt} image ({exc})") from None
    arr = np.array(out)
    return arr[:, :, None] if arr.ndim == 2 else arr


class PhotoEncoders:
    """Per model, the encoder the page may use: the operator's ``--encoder`` file for that model name
    (``files``), else the shipped one where it fits; each loaded once, on first use, and checked against the
    model's mapping network (:func:`stylegan.latent.inversion.check_encoder`)."""

    def __init__(self, device, files: dict[str, str | os.PathLike] | None = None):
        self.device = device
        self.files = dict(files or {})
        self._encoders: dict[str, object] = {}
        self._lock = threading.Lock()

    def _source(self, m: LoadedModel) -> str | os.PathLike:
        return self.files.get(m.name, ENCODER_NAME)

    def _load(self, source):
        from ..checkpoints.encoder import load_encoder
        with self._lock:
            if str(source) not in self._encoders:
                self._encoders[str(source)], _ = load_encoder(source, device=self.device)
            return self._encoders[str(source)]

    def check_files(self, library) -> None:
        """Start-up: load every ``--encoder`` file and its model; one line (``--encoder NAME=FILE: why``) for
        an unknown model name, an unreadable file, or an encoder made for another model."""
        from ..latent.inversion import check_encoder
        for name, source in self.files.items():
            try:
                check_encoder(self._load(source), library.get(name).G)
            except StyleGANError as exc:
                raise type(exc)(f"--encoder {name}={source}: {exc}") from None

    @staticmethod
    def cached(m: LoadedModel) -> dict | None:
        """The status already worked out for ``m`` (never waits), else None."""
        return m.cache.get(_CACHE_KEY)

    def status(self, m: LoadedModel) -> dict:
        """``{"available": bool, "reason": why not, "encoder": name, "max_steps": n, "align_faces": whether the
        face detector is installed}`` for the page (cached per model)."""
        cached = m.cache.get(_CACHE_KEY)
        if cached is None:
            from ..latent.inversion import check_encoder
            from ..perception.faces import detector_available
            source = self._source(m)
            cached = {"available": True, "reason": None, "encoder": Path(str(source)).name,
                      "max_steps": MAX_PHOTO_STEPS, "align_faces": detector_available()}
            try:
                check_encoder(self._load(source), m.G)
            except StyleGANError as exc:
                hint = (f"the encoder {Path(str(source)).name} does not fit it" if m.name in self.files else
                        "the shipped one fits only the built-in model; start the server with "
                        "--encoder MODEL=FILE from `stylegan encoder train`")
                cached.update(available=False, reason=f"no encoder for this model: {hint} ({exc})")
            m.cache[_CACHE_KEY] = cached
        return cached

    def encoder(self, m: LoadedModel):
        st = self.status(m)
        if not st["available"]:
            raise EncoderUnavailable(st["reason"])
        return self._load(self._source(m))


def _aligned(full: np.ndarray, name: str, resolution: int, channels: int, face: int) -> np.ndarray:
    """Face ``face`` of a decoded photo [H, W, 3], FFHQ-aligned (MTCNN landmarks) at ``resolution``."""
    from ..latent.align import align_face, detect_landmarks
    from ..perception.faces import INSTALL_HINT, detector_available
    if not detector_available():
        raise UserInputError(f"aligning a face needs the MTCNN face detector on the server: {INSTALL_HINT}")
    try:
        out = align_face(full, detect_landmarks(full, face=face), resolution)
    except UserInputError as exc:
        raise UserInputError(f"{name}: {exc}") from None
    return np.asarray(Image.fromarray(out).convert("L"))[:, :, None] if channels == 1 else out


def parse_face(face: str | int | None) -> int | None:
    """The page's face choice: none (centre crop) or a face number 0..MAX_FACE (0 = the largest)."""
    if face is None or str(face).strip() == "":
        return None
    text = str(face).strip()
    if not text.isdigit() or int(text) > MAX_FACE:
        raise UserInputError(f"face must be a whole number from 0 to {MAX_FACE} (0 = the largest), got {text[:20]!r}")
    return int(text)


def parse_steps(steps: str | int | None) -> int:
    """The page's refinement steps: an integer 0..MAX_PHOTO_STEPS."""
    text = str(steps if steps is not None else 0).strip()
    if not text.isdigit() or int(text) > MAX_PHOTO_STEPS:
        raise UserInputError(f"refinement steps must be a whole number from 0 to {MAX_PHOTO_STEPS}, got {text[:20]!r}")
    return int(text)


def invert_photo(m: LoadedModel, encoder, target: np.ndarray, steps: int):
    """The encoder's w for ``target`` and ``steps`` refinement steps (W+, the model's constant noise -- what the
    page draws an uploaded w with -- and the loss that needs no discriminator or download)."""
    from ..latent.inversion import REFINE_CONFIG, invert
    from ..perception.lpips import NoDownloadLoss
    loss = NoDownloadLoss().to(next(m.G.parameters()).device) if steps else None
    config = dataclasses.replace(REFINE_CONFIG, optimize_noise=False)
    return invert(m.G, target, encoder, loss, config, steps=steps)


def png_data_url(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a [H, W, C] uint8 image (the page's CSP allows data: images)."""
    from ..render.images import to_pil
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

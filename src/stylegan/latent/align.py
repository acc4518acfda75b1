"""Preparing projection targets: centre crop, or FFHQ-style face alignment from facial landmarks.

FFHQ alignment (Karras et al. 2019, the FFHQ dataset description): from the eye centres and the mouth
corners build an oriented square -- its x axis is the eye-to-eye vector minus the eye-to-mouth vector
rotated by 90 degrees, its half-size ``max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)``, its centre 10 % of the
way from the eyes to the mouth -- and resample that square to the output size. Where the square leaves
the photo, the photo is mirrored and faded to a blur so that no hard edge enters the crop.

Landmarks come from ``--landmarks FILE`` (68 dlib/iBUG points or 5 points) or from an optional detector:
MTCNN with the weights facenet-pytorch ships (offline), dlib with its 68-point shape predictor file, or
the ``face_alignment`` package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ..errors import UserInputError

#: Environment variable naming dlib's ``shape_predictor_68_face_landmarks.dat``.
DLIB_MODEL_ENV = "STYLEGAN_DLIB_LANDMARKS"
DLIB_MODEL_NAME = "shape_predictor_68_face_landmarks.dat"


class LandmarkDetectorUnavailable(UserInputError):
    """No face-landmark detector is installed (the caller may fall back to a centre crop)."""


def face_keypoints(landmarks) -> dict[str, np.ndarray]:
    """Eye centres and mouth corners from 68 iBUG points (0-based: eyes 36-41 and 42-47, mouth corners
    48 and 54) or from 5 points ordered left eye, right eye, nose, left mouth corner, right mouth corner
    (left = the image's left)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] not in (5, 68):
        raise UserInputError(f"face landmarks must be 68 or 5 (x, y) points, got an array of shape {lm.shape}")
    if not np.isfinite(lm).all():
        raise UserInputError("face landmarks contain NaN or infinite values")
    if lm.shape[0] == 68:
        return {"eye_left": lm[36:42].mean(0), "eye_right": lm[42:48].mean(0),
                "mouth_left": lm[48], "mouth_right": lm[54]}
    return {"eye_left": lm[0], "eye_right": lm[1], "mouth_left": lm[3], "mouth_right": lm[4]}


def alignment_quad(landmarks) -> np.ndarray:
    """The FFHQ crop square as 4 corners [4, 2] (top-left, bottom-left, bottom-right, top-right) in pixels."""
    k = face_keypoints(landmarks)
    eye_avg = (k["eye_left"] + k["eye_right"]) / 2
    eye_to_eye = k["eye_right"] - k["eye_left"]
    eye_to_mouth = (k["mouth_left"] + k["mouth_right"]) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if norm < 1e-6 or np.hypot(*eye_to_eye) < 1e-6:
        raise UserInputError("face landmarks are degenerate (the eyes and mouth coincide)")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_face(image: np.ndarray, landmarks, output_size: int, supersample: int = 4) -> np.ndarray:
    """Crop and rotate ``image`` ([H, W, C] uint8) to the FFHQ square of ``landmarks``: [S, S, C] uint8."""
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise UserInputError(f"expected an [H, W, C] uint8 image, got {image.dtype} {image.shape}")
    quad = alignment_quad(landmarks)
    qsize = float(np.hypot(*(quad[3] - quad[0])))

    # Shrink a much larger photo first (area filter), so the final resampling does not alias.
    shrink = int(np.floor(qsize / output_size * 0.5))
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    if shrink > 1:
        size = (max(1, round(pil.width / shrink)), max(1, round(pil.height / shrink)))
        pil = pil.resize(size, Image.BOX)
        quad = quad / shrink
        qsize = qsize / shrink

    # Mirror-pad where the square leaves the photo, fading the padding to a blurred copy.
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo = np.floor(quad.min(0)).astype(int) - border
    hi = np.ceil(quad.max(0)).astype(int) + border
    pad = np.maximum([-lo[0], -lo[1], hi[0] - pil.width, hi[1] - pil.height], 0)
    arr = np.asarray(pil, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if pad.any():
        arr = _mirror_pad(arr, pad, qsize)
        quad = quad + pad[:2]
    out = Image.fromarray(np.rint(arr).clip(0, 255).astype(np.uint8).squeeze(2) if arr.shape[2] == 1
                          else np.rint(arr).clip(0, 255).astype(np.uint8))
    big = output_size * supersample
    out = out.transform((big, big), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)
    if supersample > 1:
        out = out.resize((output_size, output_size), Image.LANCZOS)
    res = np.asarray(out)
    return res[:, :, None] if res.ndim == 2 else res


def _mirror_pad(arr: np.ndarray, pad: np.ndarray, qsize: float) -> np.ndarray:
    """Pad [H, W, C] float by (left, top, right, bottom) with reflections that fade into a blur and the
    median colour with the distance from the original edge (so the model is not asked to draw mirrored
    features)."""
    h, w = arr.shape[:2]
    left, top, right, bottom = (int(p) for p in pad)
    padded = np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    ph, pw = padded.shape[:2]
    yy, xx = np.ogrid[:ph, :pw]
    dist_x = np.maximum(np.maximum(left - xx, xx - (left + w - 1)), 0).astype(np.float32)
    dist_y = np.maximum(np.maximum(top - yy, yy - (top + h - 1)), 0).astype(np.float32)
    fade = np.clip(np.maximum(dist_x, dist_y) / max(qsize * 0.1, 1.0), 0, 1)[:, :, None]
    blurred = np.stack([np.asarray(Image.fromarray(padded[:, :, ch].clip(0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius=max(qsize * 0.02, 1.0))), np.float32) for ch in range(arr.shape[2])], 2)
    median = np.median(arr.reshape(-1, arr.shape[2]), axis=0)
    padded = padded + (blurred - padded) * np.clip(fade * 3, 0, 1)
    return padded + (median - padded) * fade * 0.5


def load_landmarks(path: str | os.PathLike) -> np.ndarray | dict[str, np.ndarray]:
    """Landmarks from a file: ``.npy`` [K, 2] or [N, K, 2]; JSON ``[[x, y], ...]``, ``{"landmarks": ...}`` or
    ``{"photo.jpg": [[x, y], ...], ...}`` (one entry per target); or text with one ``x y`` pair per line."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"landmarks file not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            data = np.loadtxt(path, delimiter="," if "," in path.read_text() else None)
    except (ValueError, OSError) as exc:
        raise UserInputError(f"cannot read landmarks from {path}: {exc}") from None
    if isinstance(data, dict) and "landmarks" in data:
        data = data["landmarks"]
    if isinstance(data, dict):
        out = {str(k): np.asarray(v, dtype=np.float64) for k, v in data.items()}
        for v in out.values():
            face_keypoints(v)
        return out
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 3:
        for a in arr:
            face_keypoints(a)
        return arr
    face_keypoints(arr)
    return arr


def detect_landmarks(image: np.ndarray, model_path: str | os.PathLike | None = None,
                     face: int | None = None) -> np.ndarray:
    """Landmarks of the largest face (or face number ``face``, 0 = largest) in ``image`` ([H, W, 3] uint8):
    5 points from MTCNN with facenet-pytorch's shipped weights (:mod:`stylegan.perception.faces`), else 68
    from dlib (needs its shape predictor file) or the ``face_alignment`` package; raises
    :class:`LandmarkDetectorUnavailable`."""
    rgb = image if image.shape[2] == 3 else np.repeat(image[:, :, :1], 3, axis=2)
    from ..perception.faces import INSTALL_HINT, detector_available, face_landmarks
    if detector_available():
        return face_landmarks(rgb, face)
    if face is not None:
        _no_detector(f"choosing a face needs the MTCNN detector: {INSTALL_HINT}")
    model = model_path or os.environ.get(DLIB_MODEL_ENV)
    dlib = _try_import("dlib")
    if dlib is not None and model:
        if not Path(model).is_file():
            raise UserInputError(f"dlib landmark model not found: {model}")
        detector = dlib.get_frontal_face_detector()
        faces = detector(rgb, 1)
        if not faces:
            raise UserInputError("no face found in the image")
        face = max(faces, key=lambda r: r.width() * r.height())
        shape = dlib.shape_predictor(str(model))(rgb, face)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    fa = _try_import("face_alignment")
    if fa is not None:
        kind = getattr(fa.LandmarksType, "TWO_D", None) or fa.LandmarksType._2D
        found = fa.FaceAlignment(kind, device="cpu").get_landmarks_from_image(rgb)
        if not found:
            raise UserInputError("no face found in the image")
        return np.asarray(max(found, key=lambda p: np.ptp(p[:, 0]) * np.ptp(p[:, 1]))[:, :2], dtype=np.float64)
    hint = ("dlib is installed but needs its landmark model: pass --landmark-model "
            f"{DLIB_MODEL_NAME} (or set ${DLIB_MODEL_ENV})") if dlib is not None else \
        (f"{INSTALL_HINT} (offline MTCNN), or install dlib and pass --landmark-model {DLIB_MODEL_NAME}")
    _no_detector(hint)


def _no_detector(hint: str):
    raise LandmarkDetectorUnavailable(f"face alignment needs facial landmarks: {hint}; "
                                      f"or give them with --landmarks FILE")


def _try_import(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def prepare_target(path: str | os.PathLike, resolution: int | tuple[int, int], channels: int = 3, align: bool = False,
                   landmarks: np.ndarray | None = None, landmark_model: str | os.PathLike | None = None,
                   face: int | None = None) -> tuple[np.ndarray, str]:
    """A projection target [resolution, resolution, channels] uint8 (``resolution=(H, W)``: [H, W, channels]
    for a non-square model), and how it was made.

    ``align=False``: centre crop + Lanczos resize. ``align=True``: FFHQ alignment with ``landmarks`` (or
    detected ones); without a detector the message says so and the centre crop is used."""
    from ..render.images import load_image

    if not align and landmarks is None:
        return load_image(path, resolution, channels, crop="center"), "centre crop"
    if isinstance(resolution, (tuple, list)):
        if resolution[0] != resolution[1]:
            raise UserInputError(f"FFHQ alignment makes square targets; this model draws {resolution[1]}x"
                                 f"{resolution[0]} (leave out --align)")
        resolution = resolution[0]
    full = load_image(path, None, 3)
    note = "FFHQ alignment (given landmarks)"
    if landmarks is None:
        try:
            landmarks = detect_landmarks(full, landmark_model, face)
            note = "FFHQ alignment (detected landmarks)"
        except LandmarkDetectorUnavailable as exc:
            return load_image(path, resolution, channels, crop="center"), f"centre crop ({exc})"
    out = align_face(full, landmarks, resolution)
    if channels == 1:
        out = np.asarray(Image.fromarray(out).convert("L"))[:, :, None]
    return out, note

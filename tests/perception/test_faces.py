"""Offline face detection: MTCNN with facenet-pytorch's shipped weights finds the five landmarks of a real
photo (scikit-image's astronaut) within a few pixels, picks the largest of several faces or the one asked for,
and says in one line when no detector is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from stylegan.latent.align import LandmarkDetectorUnavailable, alignment_quad, detect_landmarks, prepare_target
from stylegan.perception import faces
from stylegan.perception.faces import NoFaceFound, detect_faces, detector_available, face_landmarks

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the astronaut photo")
needs_detector = pytest.mark.skipif(not detector_available(),
                                    reason=f"no MTCNN weights: {faces.INSTALL_HINT} (.ci/run installs it)")

# Eileen Collins in skimage.data.astronaut() (512x512), marked by hand on an 8x enlargement: pupil centres,
# nose tip, mouth corners (x, y), in MTCNN's order.
ASTRONAUT_LANDMARKS = np.array([[204.0, 101.5], [246.0, 103.0], [223.0, 126.0], [203.0, 140.0], [244.5, 141.0]])
TOLERANCE_PX = 4.0          # the eyes are 42 px apart: 10 % of that; measured errors 0.8-2.7 px


@needs_detector
def test_astronaut_landmarks_within_a_few_pixels():
    found = detect_faces(skimage_data.astronaut())
    assert len(found) == 1 and found[0].score > 0.99
    x1, y1, x2, y2 = found[0].box
    assert x1 < 200 and x2 > 250 and y1 < 100 and y2 > 145
    err = np.hypot(*(found[0].landmarks - ASTRONAUT_LANDMARKS).T)
    assert err.max() < TOLERANCE_PX, err


@needs_detector
def test_largest_face_first_or_the_one_asked_for():
    photo = skimage_data.astronaut()
    canvas = np.full([512, 900, 3], 255, np.uint8)
    canvas[:, :512] = photo
    small = np.asarray(Image.fromarray(photo[40:200, 150:290]).resize((93, 107), Image.LANCZOS))
    canvas[300:407, 700:793] = small                                     # the same face at 2/3 size
    lm0, lm1 = face_landmarks(canvas), face_landmarks(canvas, face=1)
    assert np.hypot(*(lm0 - ASTRONAUT_LANDMARKS).T).max() < TOLERANCE_PX
    expected_small = (ASTRONAUT_LANDMARKS - [150, 40]) * [93 / 140, 107 / 160] + [700, 300]
    assert np.hypot(*(lm1 - expected_small).T).max() < TOLERANCE_PX
    with pytest.raises(NoFaceFound, match="--face 2: the image has 2 face"):
        face_landmarks(canvas, face=2)
    with pytest.raises(NoFaceFound, match="no face found"):
        face_landmarks(np.full([200, 200, 3], 128, np.uint8))


@needs_detector
def test_align_detects_landmarks_out_of_the_box(tmp_path):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage_data.astronaut()).save(path, quality=95)
    lm = detect_landmarks(np.asarray(Image.open(path)))
    assert lm.shape == (5, 2) and np.hypot(*(lm - ASTRONAUT_LANDMARKS).T).max() < TOLERANCE_PX
    img, note = prepare_target(path, 64, align=True)
    assert note == "FFHQ alignment (detected landmarks)" and img.shape == (64, 64, 3)
    quad, true_quad = alignment_quad(lm), alignment_quad(ASTRONAUT_LANDMARKS)
    size = np.hypot(*(true_quad[3] - true_quad[0]))
    assert np.hypot(*(quad - true_quad).T).max() < 0.05 * size        # measured 4 % (JPEG): the same crop


def test_a_clear_message_when_no_detector_is_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(faces, "PACKAGE", "facenet-pytorch-not-installed")
    monkeypatch.setattr(faces, "_cached", None)
    assert not detector_available()
    with pytest.raises(faces.FaceDetectorUnavailable, match="pip install --no-deps facenet-pytorch"):
        detect_faces(np.zeros([64, 64, 3], np.uint8))
    path = tmp_path / "face.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    with pytest.raises(LandmarkDetectorUnavailable, match="choosing a face needs the MTCNN detector: pip install"):
        detect_landmarks(np.asarray(Image.open(path)), face=1)
    if any(importlib.util.find_spec(m) for m in ("dlib", "face_alignment")):
        return                                                           # those would be used instead
    img, note = prepare_target(path, 32, align=True)
    assert img.shape == (32, 32, 3)
    assert note.startswith("centre crop (face alignment needs facial landmarks: pip install --no-deps facenet-pytorch")

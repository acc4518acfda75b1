"""FFHQ-style alignment from landmarks, landmark files, and the fallback without a detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylegan.errors import UserInputError
from stylegan.latent import align as A


def _five_points(center=(200.0, 180.0), eye_dist=60.0, mouth_drop=70.0, angle_deg=0.0):
    """Left eye, right eye, nose, left and right mouth corner of an upright face rotated by ``angle_deg``."""
    pts = np.array([[-eye_dist / 2, 0], [eye_dist / 2, 0], [0, mouth_drop / 2],
                    [-eye_dist / 3, mouth_drop], [eye_dist / 3, mouth_drop]], dtype=np.float64)
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T + np.asarray(center)


def _sixty_eight_from_five(p5):
    """68 iBUG points whose eye rings are centred on the 5-point eyes and whose mouth corners match."""
    lm = np.tile(p5[2], (68, 1)).astype(np.float64)
    ring = 5.0 * np.stack([np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
                           np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))], 1)
    lm[36:42] = p5[0] + ring
    lm[42:48] = p5[1] + ring
    lm[48], lm[54] = p5[3], p5[4]
    return lm


def test_quad_of_an_upright_face():
    p5 = _five_points()
    quad = A.alignment_quad(p5)
    # x axis = eye_to_eye - rot90(eye_to_mouth) = (60, 0) - (-70, 0)... normalised; half-size = max(2*60, 1.8*70)
    half = max(2 * 60.0, 1.8 * 70.0)
    centre = np.array([200.0, 180.0 + 0.1 * 70.0])
    expected = np.array([centre + [-half, -half], centre + [-half, half], centre + [half, half],
                         centre + [half, -half]])
    assert np.allclose(quad, expected)


def test_five_and_sixty_eight_points_give_the_same_quad():
    p5 = _five_points(angle_deg=17)
    assert np.allclose(A.alignment_quad(p5), A.alignment_quad(_sixty_eight_from_five(p5)))


def _face_picture(p5, size=(420, 400)):
    """A flat background with a red dot on each eye and a blue dot on each mouth corner."""
    img = Image.new("RGB", size, (120, 160, 120))
    d = ImageDraw.Draw(img)
    for (x, y), colour in zip(p5[[0, 1, 3, 4]], [(255, 0, 0)] * 2 + [(0, 0, 255)] * 2):
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
    return np.asarray(img)


def _blob_centres(img, colour):
    mask = np.all(np.abs(img.astype(int) - colour) < 90, axis=2)
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], 1).astype(float)
    left, right = pts[pts[:, 0] < img.shape[1] / 2], pts[pts[:, 0] >= img.shape[1] / 2]
    return left.mean(0), right.mean(0)


def test_alignment_levels_a_tilted_face_and_puts_the_eyes_where_ffhq_does():
    p5 = _five_points(center=(210, 190), angle_deg=25)
    out = A.align_face(_face_picture(p5), p5, 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    eye_l, eye_r = _blob_centres(out, (255, 0, 0))
    mouth_l, mouth_r = _blob_centres(out, (0, 0, 255))
    # Upright eyes 60 px apart, mouth 70 px below them; crop half-size 126 px -> scale 64 / 126.
    s = 64 / max(2 * 60.0, 1.8 * 70.0)
    eye_y = 64 - 0.1 * 70 * s
    assert abs(eye_l[1] - eye_r[1]) < 1.0                      # level
    assert eye_l[1] == pytest.approx(eye_y, abs=1.5)
    assert eye_l[0] == pytest.approx(64 - 30 * s, abs=1.5) and eye_r[0] == pytest.approx(64 + 30 * s, abs=1.5)
    assert mouth_l[1] == pytest.approx(eye_y + 70 * s, abs=1.5) and mouth_r[1] == pytest.approx(mouth_l[1], abs=1.0)
    assert mouth_l[0] == pytest.approx(64 - 20 * s, abs=1.5) and mouth_r[0] == pytest.approx(64 + 20 * s, abs=1.5)


def test_a_face_near_the_border_is_padded_without_black_corners():
    p5 = _five_points(center=(60, 60), angle_deg=-10)       # the crop square leaves the picture
    out = A.align_face(_face_picture(p5, size=(200, 200)), p5, 64)
    background = np.array([120, 160, 120])
    corners = out[[0, 0, -1, -1], [0, -1, 0, -1]].astype(int)
    assert np.abs(corners - background).max() < 40           # mirrored background, not zeros


def test_landmark_files(tmp_path):
    p5 = _five_points()
    lm68 = _sixty_eight_from_five(p5)
    (tmp_path / "a.json").write_text(json.dumps(lm68.tolist()))
    (tmp_path / "b.json").write_text(json.dumps({"landmarks": p5.tolist()}))
    (tmp_path / "c.json").write_text(json.dumps({"me.jpg": p5.tolist(), "you.jpg": lm68.tolist()}))
    np.save(tmp_path / "d.npy", np.stack([lm68, lm68]))
    np.savetxt(tmp_path / "e.txt", p5)
    assert A.load_landmarks(tmp_path / "a.json").shape == (68, 2)
    assert A.load_landmarks(tmp_path / "b.json").shape == (5, 2)
    assert set(A.load_landmarks(tmp_path / "c.json")) == {"me.jpg", "you.jpg"}
    assert A.load_landmarks(tmp_path / "d.npy").shape == (2, 68, 2)
    assert np.allclose(A.load_landmarks(tmp_path / "e.txt"), p5)
    (tmp_path / "bad.json").write_text(json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(UserInputError, match="68 or 5"):
        A.load_landmarks(tmp_path / "bad.json")
    with pytest.raises(UserInputError, match="not found"):
        A.load_landmarks(tmp_path / "missing.json")
    with pytest.raises(UserInputError, match="degenerate"):
        A.alignment_quad(np.zeros([5, 2]))


def test_prepare_target_centre_crops_and_says_why_when_no_detector_is_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "_try_import", lambda name: None)
    monkeypatch.setattr("stylegan.perception.faces.PACKAGE", "facenet-pytorch-not-installed")   # no MTCNN either
    monkeypatch.delenv(A.DLIB_MODEL_ENV, raising=False)
    p5 = _five_points(center=(210, 190), angle_deg=25)
    path = tmp_path / "face.png"
    Image.fromarray(_face_picture(p5)).save(path)
    img, note = A.prepare_target(path, 64, align=True)
    assert img.shape == (64, 64, 3)
    assert note.startswith("centre crop") and "--landmarks" in note and "dlib" in note
    aligned, note = A.prepare_target(path, 64, landmarks=p5)
    assert note == "FFHQ alignment (given landmarks)"
    assert not np.array_equal(aligned, img)
    grey, _ = A.prepare_target(path, 32, channels=1, landmarks=p5)
    assert grey.shape == (32, 32, 1)

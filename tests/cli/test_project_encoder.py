"""``stylegan project --encoder / --steps 0 / --tune / --face`` through the real CLI, on the built-in model and
its shipped encoder, with real emoji the model never saw (tests/assets/emoji-unseen) and a real photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.cli import png, run
from support.photos import two_face_photo

from stylegan.checkpoints import load_network
from stylegan.checkpoints.encoder import load_encoder
from stylegan.cli import project as project_cmd
from stylegan.latent.align import align_face
from stylegan.latent.inversion import REFINE_CONFIG, encode
from stylegan.latent.io import load_npz_extra, load_ws
from stylegan.latent.projection import psnr
from stylegan.perception import faces

EMOJI = Path(__file__).resolve().parents[1] / "assets" / "emoji-unseen"
needs_detector = pytest.mark.skipif(not faces.detector_available(),
                                    reason=f"no MTCNN weights: {faces.INSTALL_HINT} (.ci/run installs it)")


@pytest.fixture(scope="module")
def builtin():
    return load_network(None).G_ema


def test_encoder_only_writes_the_usual_outputs_with_the_encoders_w(builtin, tmp_path, capsys):
    code, err = run(capsys, "project", "--encoder", "builtin", "--steps", 0, "--target", EMOJI / "cat.png",
                    "--outdir", tmp_path / "out")
    assert code == 0, err
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"target.png", "proj.png", "projected_w.npz"}
    assert "cat.png: PSNR" in err and "encoder only" in err and "encoded 1 image(s)" in err
    target = np.array(png(out / "target.png"))
    assert np.array_equal(target, np.asarray(Image.open(EMOJI / "cat.png").convert("RGB")))
    E, _ = load_encoder("builtin")
    expected = encode(builtin, target, E)
    ws = load_ws(out / "projected_w.npz", builtin.num_ws, builtin.w_dim)
    assert torch.equal(torch.from_numpy(ws), expected.ws)                 # the encoder's w, exactly
    extra = load_npz_extra(out / "projected_w.npz")
    assert str(extra["space"]) == "w+" and "loss" not in extra
    assert float(extra["psnr"]) == pytest.approx(float(expected.psnr[0]), abs=1e-4)
    assert not any(k.startswith("noise.") for k in extra)
    assert np.array_equal(png(out / "proj.png"), expected.images[0])
    code, err = run(capsys, "generate", "--ws", out / "projected_w.npz", "--outdir", tmp_path / "again")
    assert code == 0, err                                                  # the file loads where ws are read
    assert np.array_equal(png(tmp_path / "again" / "projected_w.png"), expected.images[0])


def test_encoder_start_then_pivotal_tuning_reconstructs_better(builtin, tmp_path, capsys):
    tuned = tmp_path / "models" / "tuned-dog.safetensors"
    code, err = run(capsys, "project", "--encoder", "builtin", "--steps", 3, "--tune", 8, "--tune-out", tuned,
                    "--target", EMOJI / "dog.png", "--outdir", tmp_path / "out")
    assert code == 0, err
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"target.png", "proj.png", "proj_tuned.png", "projected_w.npz"}
    assert "encoder start" in err and "dog.png: tuned PSNR" in err and tuned.is_file()
    extra = load_npz_extra(out / "projected_w.npz")
    assert str(extra["space"]) == "w+" and not any(k.startswith("noise.") for k in extra)   # --tune: const noise
    assert load_network(tuned).metadata["pivotal_tuning"]["steps"] == 8

    for network, name in ((None, "untuned"), (tuned, "tuned")):
        args = ["generate", "--ws", out / "projected_w.npz", "--outdir", tmp_path / name]
        code, err = run(capsys, *args, *(["--network", network] if network else []))
        assert code == 0, err
    target = png(out / "target.png")[None]
    untuned, tuned_img = (png(tmp_path / n / "projected_w.png")[None] for n in ("untuned", "tuned"))
    assert np.array_equal(untuned[0], png(out / "proj.png"))             # generate --ws draws proj.png
    # Measured (dog.png): 13.5 dB after 3 refinement steps -> 16.8 dB after 8 tuning steps.
    gain = float(psnr(tuned_img, target)[0] - psnr(untuned, target)[0])
    assert gain > 1.0, gain
    assert np.array_equal(tuned_img[0], png(out / "proj_tuned.png"))     # proj_tuned.png is what it draws


@needs_detector
def test_face_k_aligns_the_kth_face_of_a_photo(tmp_path, capsys):
    pytest.importorskip("skimage.data", reason="scikit-image ships the astronaut photo")
    canvas = two_face_photo()
    Image.fromarray(canvas).save(tmp_path / "two.png")
    code, err = run(capsys, "project", "--encoder", "builtin", "--steps", 0, "--face", 1,
                    "--target", tmp_path / "two.png", "--outdir", tmp_path / "out")
    assert code == 0, err
    assert "target: FFHQ alignment (detected landmarks), face 1" in err
    small_face = faces.detect_faces(canvas)[1]
    assert small_face.box[0] > 690                                         # the smaller face, on the right
    assert np.array_equal(png(tmp_path / "out" / "target.png"), align_face(canvas, small_face.landmarks, 32))


@pytest.mark.parametrize("args, message", [
    (["--encoder", "builtin", "--network", "SG2"], "--encoder builtin: the encoder is for 32x32 images with 3"),
    (["--encoder", "MISSING"], "encoder file not found"),
    (["--encoder", "SG2"], "is not an encoder file"),
    (["--steps", "0"], "--steps 0 needs --encoder"),
    (["--encoder", "builtin", "--steps", "0", "--save-video"], "--steps 0 has none"),
    (["--tune-out", "x.safetensors"], "--tune-out needs --tune N"),
    (["--tune", "2", "--noise"], "--tune tunes the generator for the model's constant noise"),
    (["--tune", "2", "--tune-out", "tuned.pkl"], "the tuned model is a .safetensors file"),
    (["--face", "1", "--target", "ASTRONAUT"], "astronaut.png: --face 1: the image has 1 face(s)"),
    (["--face", "0", "--target", "GREY"], "grey.png: no face found in the image"),
])
def test_encoder_tune_and_face_errors_are_one_line(sg2_model, tmp_path, capsys, args, message):
    if "--face" in args and not faces.detector_available():
        pytest.skip(f"no MTCNN weights: {faces.INSTALL_HINT}")
    if "ASTRONAUT" in args:
        Image.fromarray(pytest.importorskip("skimage.data").astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(np.full([64, 64, 3], 128, np.uint8)).save(tmp_path / "grey.png")
    names = {"SG2": sg2_model, "MISSING": tmp_path / "missing.safetensors", "ASTRONAUT": tmp_path / "astronaut.png",
             "GREY": tmp_path / "grey.png"}
    args = [str(names.get(a, a)) for a in args]
    if "--target" not in args:
        args += ["--target", str(EMOJI / "cat.png")]
    if "--steps" not in args:
        args += ["--steps", "1"]
    code, err = run(capsys, "project", "--outdir", tmp_path / "out", *args)
    assert code != 0 and message in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in err, err      # one line, no traceback
    assert not (tmp_path / "out" / "projected_w.npz").exists()


def test_default_refinement_steps_are_the_inversion_defaults():
    assert project_cmd.REFINE_STEPS == REFINE_CONFIG.num_steps


def test_face_without_a_detector_is_one_line_not_a_centre_crop(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(faces, "PACKAGE", "facenet-pytorch-not-installed")
    monkeypatch.setattr(faces, "_cached", None)
    code, err = run(capsys, "project", "--encoder", "builtin", "--steps", 0, "--face", 0,
                    "--target", EMOJI / "cat.png", "--outdir", tmp_path / "out")
    assert code != 0 and err.strip().splitlines()[-1] == \
        "error: --face needs the MTCNN face detector: pip install --no-deps facenet-pytorch"
    assert not (tmp_path / "out" / "projected_w.npz").exists()

"""The operator workflows run as a user runs them: ``stylegan`` in a fresh process, real model files."""

import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from support.models import reference_npz

from stylegan.latent.io import load_ws, save_ws
from stylegan.render.images import to_uint8
from stylegan.render.video import read_video, video_info


def stylegan(*args, cwd=None):
    env = dict(os.environ, STYLEGAN_QUIET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "stylegan.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)
    return proc.returncode, proc.stderr


def png(path):
    return np.asarray(Image.open(path))


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_style_mixing_reproduces_nvidias_reference(reference_sg2_model, tmp_path):
    """NVIDIA's style_mixing.py on their network: rows of psi-0.7 ws with layers 4.. (middle and fine
    at 64x64) taken from the next seed. Our ``mix`` must give the same pixels."""
    ref = np.load(reference_npz("sg2"))
    code, err = stylegan("mix", "--network", reference_sg2_model, "--rows", "0,1", "--cols", "1,2",
                         "--styles", "middle,fine", "--trunc", "0.7", "--outdir", tmp_path)
    assert code == 0, err
    assert "styles middle,fine = ws 4-9 (16²-64²)" in err
    expected = to_uint8(torch.from_numpy(ref["ref/img_mixed_const"]))
    for name, want in (("0-1.png", expected[0]), ("1-2.png", expected[1])):
        got = png(tmp_path / name).astype(int)
        assert np.abs(got - want).max() <= 1 and (got != want).mean() < 0.001   # float32 rounding at most
    grid = png(tmp_path / "grid.png")
    assert grid.shape == (3 * 64, 3 * 64, 3) and (grid[:64, :64] == 0).all()
    assert np.array_equal(grid[64:128, 128:], png(tmp_path / "0-2.png"))


def test_saved_latents_to_edited_latents_to_video(sg2_model, tmp_path):
    """generate --save-ws -> latent arithmetic -> a video through the results, frame-exact."""
    code, err = stylegan("generate", "--network", sg2_model, "--seeds", "10,20", "--trunc", "0.8", "--save-ws",
                         "--outdir", tmp_path)
    assert code == 0, err
    a, b = load_ws(tmp_path / "seed0010.npz"), load_ws(tmp_path / "seed0020.npz")
    save_ws(tmp_path / "between.npz", (a + b) / 2)
    code, err = stylegan("video", "--network", sg2_model, "--ws", tmp_path / "seed0010.npz",
                         "--ws", tmp_path / "between.npz", "--ws", tmp_path / "seed0020.npz", "--interp", "cubic",
                         "--no-loop", "--transition-frames", "3", "--lossless", "--output", tmp_path / "v.mp4")
    assert code == 0, err
    assert video_info(tmp_path / "v.mp4")["num_frames"] == 7
    frames = read_video(tmp_path / "v.mp4")
    assert same_pixels(frames[0], png(tmp_path / "seed0010.png"))
    assert same_pixels(frames[-1], png(tmp_path / "seed0020.png"))


def test_errors_are_one_line_with_exit_code_1(sg2_model, tmp_path):
    code, err = stylegan("mix", "--network", sg2_model, "--rows", "1", "--cols", "2", "--styles", "0-12",
                         "--outdir", tmp_path / "out")
    assert code == 1 and err == "error: layer 12 is out of range: this model has 8 ws (layers 0-7)\n"
    assert not (tmp_path / "out").exists()

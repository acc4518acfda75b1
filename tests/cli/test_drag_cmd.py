"""``stylegan drag`` through the real CLI on the built-in model: its files, their use by other commands,
and one clear line for hostile input."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from PIL import Image
from support.cli import png, run

from stylegan.checkpoints import load_generator
from stylegan.cli.drag import parse_points
from stylegan.cli.main import main
from stylegan.latent.io import load_npz_extra, load_ws
from stylegan.render.images import to_uint8
from stylegan.render.video import video_info


@pytest.fixture(scope="module")
def dragged(tmp_path_factory):
    """One drag of seed 0 with a video: (folder, stderr)."""
    out = tmp_path_factory.mktemp("drag")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(["drag", "--seed", "0", "--points", "8,15>4,14", "--video", "--outdir", str(out)])
    assert exit_info.value.code == 0, err.getvalue()
    return out, err.getvalue()


def test_drag_writes_the_image_its_latent_and_a_video(dragged):
    out, err = dragged
    assert {p.name for p in out.iterdir()} == {"start.png", "dragged.png", "dragged_w.npz", "drag.mp4"}
    assert "seed 0: handles at" in err and "(arrived)" in err
    G = load_generator("builtin")
    ws = torch.from_numpy(load_ws(out / "dragged_w.npz", G.num_ws, G.w_dim))
    extra = load_npz_extra(out / "dragged_w.npz")
    assert np.linalg.norm(extra["points"][0] - np.array([4, 14])) <= 1.0
    assert np.array_equal(extra["handles"], [[8, 15]]) and np.array_equal(extra["targets"], [[4, 14]])
    with torch.no_grad():
        redrawn = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    assert np.array_equal(redrawn, png(out / "dragged.png"))
    assert not np.array_equal(png(out / "start.png"), png(out / "dragged.png"))
    info = video_info(out / "drag.mp4")
    assert info["size"] == (32, 32) and info["num_frames"] >= 2


def test_the_dragged_latent_feeds_generate_variations_and_another_drag(dragged, tmp_path, capsys):
    out, _ = dragged
    code, err = run(capsys, "generate", "--projected-w", out / "dragged_w.npz", "--outdir", tmp_path / "gen")
    assert code == 0, err
    assert np.array_equal(png(tmp_path / "gen" / "dragged_w.png"), png(out / "dragged.png"))
    code, err = run(capsys, "variations", "--projected-w", out / "dragged_w.npz", "--seeds", "1",
                    "--noise-samples", 0, "--trunc", "1,0", "--outdir", tmp_path / "var")
    assert code == 0, err
    assert np.array_equal(png(tmp_path / "var" / "projection.png"), png(out / "dragged.png"))
    mask = np.zeros([32, 32], np.uint8)
    mask[6:24, 0:16] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    code, err = run(capsys, "drag", "--projected-w", out / "dragged_w.npz", "--points", "5,14>5,11", "--mask",
                    tmp_path / "mask.png", "--steps", 3, "--outdir", tmp_path / "again")
    assert code == 0, err
    assert "dragged_w.npz: handles at" in err
    assert np.array_equal(png(tmp_path / "again" / "start.png"), png(out / "dragged.png"))


def test_parse_points():
    assert parse_points("1,2>3,4; 5.5,6>7,8 ;") == ([[1, 2], [5.5, 6]], [[3, 4], [7, 8]])


@pytest.mark.parametrize("args, message", [
    (["--seed", "0", "--points", "8,15>40,14"], "target point 40,14 is outside the 32x32 image"),
    (["--seed", "0", "--points", "-1,3>4,4"], "handle point -1,3 is outside"),
    (["--seed", "0", "--points", "8;15"], "cannot read '8'"),
    (["--seed", "0", "--points", "1,2>3,4>5,6"], "cannot read"),
    (["--seed", "0", "--points", ";;"], "--points is empty"),
    (["--seed", "0", "--points", "nan,1>2,2"], "cannot read"),
    (["--seed", "0", "--points", ";".join(["1,1>2,2"] * 65)], "at most 64"),
    (["--points", "1,1>2,2"], "give exactly one of --seed S or --projected-w FILE"),
    (["--seed", "0", "--projected-w", "x.npz", "--points", "1,1>2,2"], "exactly one"),
    (["--projected-w", "missing.npz", "--points", "1,1>2,2"], "missing.npz"),
    (["--seed", "0", "--points", "1,1>2,2", "--mask", "SMALL"], "--mask small.png is 16x16; it must be the image size"),
    (["--seed", "0", "--points", "1,1>2,2", "--mask", "NOTPNG"], "cannot read image"),
    (["--seed", "0", "--points", "1,1>2,2", "--layers", "99"], "layers must be 1..8"),
])
def test_hostile_input_is_one_line(args, message, tmp_path, capsys):
    Image.fromarray(np.zeros([16, 16], np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    args = [str(tmp_path / "small.png") if a == "SMALL" else str(tmp_path / "bad.png") if a == "NOTPNG"
            else str(tmp_path / a) if a.endswith(".npz") else a for a in args]
    code, err = run(capsys, "drag", *args, "--outdir", tmp_path / "out")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "out").exists()

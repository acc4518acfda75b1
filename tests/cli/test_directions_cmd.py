"""``stylegan directions`` and ``stylegan edit``: find directions, save them, render strips and videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.cli import png, run

from stylegan.checkpoints import load_generator
from stylegan.latent.directions import Directions, sample_ws
from stylegan.latent.io import load_ws, save_ws
from stylegan.latent.sampling import GenerationRequest
from stylegan.render.video import video_info


def test_sefa_and_pca_files(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "sefa", "--layers", "coarse",
                    "--num", 5, "--out", tmp_path / "sefa.npz")
    assert code == 0, err
    assert "sefa: 5 directions; eigenvalues" in err
    G = load_generator(sg2_model)
    sefa = Directions.load(tmp_path / "sefa.npz", G)
    assert sefa.vectors.shape == (5, G.w_dim) and sefa.method == "sefa" and sefa.layers == [0, 1, 2, 3]
    assert np.allclose(sefa.vectors @ sefa.vectors.T, np.eye(5), atol=1e-5)
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "pca", "--num", 3, "--samples", 500,
                    "--out", tmp_path / "pca")
    assert code == 0, err
    pca = Directions.load(tmp_path / "pca.npz", G)
    assert pca.method == "pca" and len(pca) == 3 and np.all(np.diff(pca.values) <= 0)


def test_boundary_from_user_labels(sg2_model, tmp_path, capsys):
    """Label generated images 'bright' or not, fit a boundary, and check that it brightens images."""
    G = load_generator(sg2_model)
    seeds = list(range(60))
    ws = torch.from_numpy(GenerationRequest(G).seed_latents(seeds).ws)
    with torch.no_grad():
        brightness = G.synthesis(ws, noise_mode="const").clamp(-1, 1).mean(dim=[1, 2, 3]).numpy()
    save_ws(tmp_path / "ws.npz", ws, seeds=np.array(seeds))
    median = np.median(brightness)
    lines = ["file,bright"] + [f"seed{s:04d}.png,{int(b > median)}" for s, b in zip(seeds, brightness)]
    (tmp_path / "bright.csv").write_text("\n".join(lines))
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "boundary", "--ws", tmp_path / "ws.npz",
                    "--labels", tmp_path / "bright.csv", "--out", tmp_path / "bright.npz")
    assert code == 0, err
    assert "bright: 60 labelled latents, held-out accuracy" in err
    # Labels keyed by seed need no latents file: the same boundary from the seeds themselves.
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "boundary",
                    "--labels", tmp_path / "bright.csv", "--out", tmp_path / "bright2.npz")
    assert code == 0, err
    assert np.allclose(Directions.load(tmp_path / "bright2.npz").vectors, Directions.load(tmp_path / "bright.npz").vectors,
                       atol=1e-4)
    code, err = run(capsys, "edit", "--network", sg2_model, "--seeds", "100,101", "--direction", tmp_path / "bright.npz",
                    "--strength", "-2:2:3", "--outdir", tmp_path / "edit")
    assert code == 0, err
    for seed in (100, 101):
        strip = png(tmp_path / "edit" / f"seed{seed:04d}-bright.png").astype(float)
        cells = [strip[:, i * 34:i * 34 + 32].mean() for i in range(3)]
        assert cells[0] < cells[1] < cells[2]


def test_edit_a_projection_writes_strips_videos_and_latents(sg2_model, tmp_path, capsys):
    G = load_generator(sg2_model)
    save_ws(tmp_path / "projected_w.npz", GenerationRequest(G).seed_latents([5]).ws)
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "sefa", "--num", 3,
                    "--out", tmp_path / "sefa.npz")
    assert code == 0, err
    code, err = run(capsys, "edit", "--network", sg2_model, "--projected-w", tmp_path / "projected_w.npz",
                    "--direction", tmp_path / "sefa.npz", "--index", "0-1", "--strength", "-3:3:7",
                    "--layers", "0-3", "--video", "edit.mp4", "--frames", 12, "--save-ws", "--outdir", tmp_path / "e")
    assert code == 0, err
    out = tmp_path / "e"
    strip = png(out / "projected_w-sefa-0.png")
    assert strip.shape == (32, 7 * 32 + 6 * 2, 3)
    middle = strip[:, 3 * 34:3 * 34 + 32]
    ends = strip[:, :32], strip[:, 6 * 34:]
    ws0 = torch.from_numpy(load_ws(tmp_path / "projected_w.npz", G.num_ws, G.w_dim))
    assert np.array_equal(middle, GenerationRequest(G).images(ws0)[0])                 # strength 0 = the latent itself
    assert all(np.abs(e.astype(int) - middle.astype(int)).mean() > 2 for e in ends)
    edited = load_ws(out / "projected_w-sefa-0.npz", G.num_ws, G.w_dim)
    assert edited.shape == (7, G.num_ws, G.w_dim)
    assert np.allclose(edited[:, 4:], ws0.numpy()[:, 4:])              # only layers 0-3 moved
    d = Directions.load(tmp_path / "sefa.npz").vectors[0]
    assert np.allclose(edited[6, 0] - ws0.numpy()[0, 0], 3 * d, atol=1e-5)
    info = video_info(out / "edit-projected_w-sefa-1.mp4")
    assert info["num_frames"] == 12 and info["size"] == (32, 32)


def test_edit_in_sigma_units(sg2_model, tmp_path, capsys):
    G = load_generator(sg2_model)
    code, _ = run(capsys, "directions", "--network", sg2_model, "--method", "pca", "--num", 1, "--samples", 2000,
                  "--out", tmp_path / "pca.npz")
    assert code == 0
    code, err = run(capsys, "edit", "--network", sg2_model, "--seeds", 1, "--direction", tmp_path / "pca.npz",
                    "--strength", "1", "--sigma", "--save-ws", "--outdir", tmp_path / "e")
    assert code == 0, err
    d = Directions.load(tmp_path / "pca.npz").vectors[0]
    moved = load_ws(tmp_path / "e" / "seed0001-pca-0.npz")[0, 0] - GenerationRequest(G).seed_latents([1]).ws[0, 0]
    sigma = float((sample_ws(G, 5000) @ torch.from_numpy(d)).std())
    assert np.allclose(moved, sigma * d, atol=1e-4)


@pytest.mark.parametrize("args, message", [
    (["directions", "--method", "boundary", "--out", "x.npz"], "needs --labels FILE"),
    (["directions", "--method", "sefa", "--layers", "0-99", "--out", "x.npz"], "out of range"),
    (["edit", "--direction", "DIR", "--outdir", "o"], "give the latents to edit"),
    (["edit", "--seeds", "1", "--direction", "DIR", "--index", "9", "--outdir", "o"], "out of range"),
    (["edit", "--seeds", "1", "--direction", "DIR", "--strength", "1:2", "--outdir", "o"], "invalid --strength"),
    (["edit", "--seeds", "1", "--direction", "DIR", "--video", "x.avi", "--outdir", "o"], "the video must end in"),
])
def test_errors_are_one_line(sg2_model, tmp_path, capsys, args, message):
    Directions(np.eye(3, 32, dtype=np.float32), "sefa").save(tmp_path / "d.npz")
    args = [str(tmp_path / "d.npz") if a == "DIR" else str(tmp_path / a) if a in ("x.npz", "o") else a for a in args]
    code, err = run(capsys, args[0], "--network", sg2_model, *args[1:])
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error:") and message in err

"""``stylegan project`` and ``stylegan variations``: the seed workflow from a photo to variations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from support.cli import png, run

from stylegan.checkpoints import load_generator
from stylegan.latent.io import load_npz_extra, load_ws
from stylegan.latent.projection import noise_from_npz
from stylegan.api import generate_images
from stylegan.render.images import to_uint8
from stylegan.render.video import video_info


@pytest.fixture(scope="module")
def photos(sg2_model, tmp_path_factory):
    """Two 'photos': generated images, enlarged and framed so that the crop and resize matter."""
    G = load_generator(sg2_model)
    root = tmp_path_factory.mktemp("photos")
    for seed in (3, 9):
        img = Image.fromarray(generate_images(G, [seed]).arrays[0]).resize((96, 96), Image.LANCZOS)
        canvas = Image.new("RGB", (140, 96), (0, 0, 0))
        canvas.paste(img, (22, 0))
        canvas.save(root / f"photo{seed}.jpg", quality=98)
    return root


def test_project_writes_nvidia_compatible_results(sg2_model, photos, tmp_path, capsys):
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos / "photo3.jpg", "--steps", 40,
                    "--save-video", "--outdir", tmp_path)
    assert code == 0, err
    assert "loss: no-download loss (discriminator features + multi-scale pixel/SSIM)" in err
    assert "target: centre crop" in err and "photo3.jpg: PSNR" in err
    assert {p.name for p in tmp_path.iterdir()} == {"target.png", "proj.png", "projected_w.npz", "proj.mp4"}
    G = load_generator(sg2_model)
    target = png(tmp_path / "target.png")
    assert target.shape == (32, 32, 3)
    # NVIDIA's layout: 'w' [1, num_ws, w_dim] float32, which their generate.py reads; ours reads 'ws'.
    with np.load(tmp_path / "projected_w.npz") as data:
        assert data["w"].shape == (1, G.num_ws, G.w_dim) and data["w"].dtype == np.float32
        assert np.array_equal(data["w"], data["ws"])
    ws = torch.from_numpy(load_ws(tmp_path / "projected_w.npz", G.num_ws, G.w_dim))
    noise = noise_from_npz(load_npz_extra(tmp_path / "projected_w.npz"), G)
    with torch.no_grad():
        redrawn = to_uint8(G.synthesis(ws, noise_mode="const", noise=noise))[0]
    assert np.array_equal(redrawn, png(tmp_path / "proj.png"))
    psnr = float(load_npz_extra(tmp_path / "projected_w.npz")["psnr"])
    mse = ((redrawn.astype(float) - target.astype(float)) ** 2).mean()
    assert psnr == pytest.approx(10 * np.log10(255**2 / mse), abs=0.01)
    info = video_info(tmp_path / "proj.mp4")
    assert info["num_frames"] == 40 and info["size"] == (64, 32)     # target | projection, one frame a step


def test_project_a_folder_as_a_batch_in_w_plus(sg2_model, photos, tmp_path, capsys):
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos, "--space", "w+",
                    "--steps", 10, "--batch", 2, "--outdir", tmp_path)
    assert code == 0, err
    for name in ("photo3", "photo9"):
        assert {p.name for p in (tmp_path / name).iterdir()} == {"target.png", "proj.png", "projected_w.npz"}
    both = load_npz_extra(tmp_path / "projected_w.npz")
    assert both["ws"].shape[0] == 2 and list(both["labels"]) == ["photo3.jpg", "photo9.jpg"]
    one = load_npz_extra(tmp_path / "photo9" / "projected_w.npz")
    assert np.array_equal(one["ws"][0], both["ws"][1])
    assert not np.allclose(both["ws"][0, 0], both["ws"][0, -1])          # W+


def test_project_with_landmarks_aligns_the_target(sg2_model, photos, tmp_path, capsys):
    points = {"photo3.jpg": [[55, 40], [85, 40], [70, 55], [60, 70], [80, 70]]}
    (tmp_path / "lm.json").write_text(json.dumps(points))
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos / "photo3.jpg", "--steps", 2,
                    "--landmarks", tmp_path / "lm.json", "--outdir", tmp_path / "out")
    assert code == 0, err
    assert "target: FFHQ alignment (given landmarks)" in err
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos / "photo3.jpg", "--steps", 2,
                    "--outdir", tmp_path / "plain")
    assert not np.array_equal(png(tmp_path / "out" / "target.png"), png(tmp_path / "plain" / "target.png"))


def test_project_with_an_lpips_torchscript_file(sg2_model, photos, tmp_path, capsys):
    class StandIn(torch.nn.Module):
        def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False):
            return torch.nn.functional.adaptive_avg_pool2d(x / 255.0, 8).flatten(1)
    torch.jit.save(torch.jit.script(StandIn()), str(tmp_path / "vgg16.pt"))
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos / "photo3.jpg", "--steps", 3,
                    "--vgg", tmp_path / "vgg16.pt", "--outdir", tmp_path / "out")
    assert code == 0, err
    assert "loss: LPIPS on VGG16 (NVIDIA TorchScript vgg16.pt)" in err


def test_conditional_projection(cond_model, photos, tmp_path, capsys):
    code, err = run(capsys, "project", "--network", cond_model, "--target", photos / "photo3.jpg", "--steps", 2,
                    "--outdir", tmp_path)
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: this model is conditional")
    code, err = run(capsys, "project", "--network", cond_model, "--target", photos / "photo3.jpg", "--steps", 2,
                    "--class", 2, "--outdir", tmp_path)
    assert code == 0, err
    assert load_npz_extra(tmp_path / "projected_w.npz")["c"].tolist() == [[0, 0, 1, 0]]


@pytest.mark.parametrize("args, message", [
    (["--target", "missing.png"], "target not found"),
    (["--target", "PHOTO", "--vgg", "nope.pt"], "VGG16 weights not found"),
    (["--target", "PHOTO", "--space", "z"], "Invalid value for '--space'"),
    (["--target", "NOTIMAGE"], "cannot read image"),
])
def test_project_errors_are_one_line(sg2_model, photos, tmp_path, capsys, args, message):
    (tmp_path / "bad.png").write_text("not an image")
    args = [str(photos / "photo3.jpg") if a == "PHOTO" else str(tmp_path / "bad.png") if a == "NOTIMAGE" else a
            for a in args]
    code, err = run(capsys, "project", "--network", sg2_model, "--steps", 1, "--outdir", tmp_path / "out", *args)
    assert code != 0 and message in err
    assert not (tmp_path / "out" / "projected_w.npz").exists()


def test_variations_of_a_projection(sg2_model, photos, tmp_path, capsys):
    code, err = run(capsys, "project", "--network", sg2_model, "--target", photos / "photo9.jpg", "--steps", 5,
                    "--outdir", tmp_path / "proj")
    assert code == 0, err
    code, err = run(capsys, "variations", "--network", sg2_model, "--projected-w", tmp_path / "proj" / "projected_w.npz",
                    "--seeds", "1-3", "--trunc", "1,0.5,0", "--noise-samples", 4, "--outdir", tmp_path / "var")
    assert code == 0, err
    var = tmp_path / "var"
    assert np.array_equal(png(var / "projection.png"), png(tmp_path / "proj" / "proj.png"))
    # Rows: the seeds, then coarse and middle (a 32x32 model has no fine layers); columns: projection + 3 seeds.
    assert png(var / "styles.png").shape == (3 * 32 + 2 * 2, 4 * 32 + 3 * 2, 3)
    assert png(var / "truncation.png").shape == (32, 3 * 32 + 2 * 2, 3)
    assert np.array_equal(png(var / "truncation" / "psi1.png"), png(var / "projection.png"))
    assert png(var / "noise.png").shape == (32, 4 * 32 + 3 * 2, 3)
    assert sorted(p.name for p in (var / "styles").iterdir())[:3] == [
        "coarse-seed0001.png", "coarse-seed0002.png", "coarse-seed0003.png"]
    # A style image differs from the projection; the psi=0 image is the average face, not the projection.
    assert not np.array_equal(png(var / "styles" / "middle-seed0002.png"), png(var / "projection.png"))
    assert not np.array_equal(png(var / "truncation" / "psi0.png"), png(var / "projection.png"))
    code, err = run(capsys, "variations", "--network", sg2_model, "--projected-w", tmp_path / "proj" / "projected_w.npz",
                    "--random", 2, "--grid-only", "--outdir", tmp_path / "rand")
    assert code == 0, err
    seeds = err.split("seeds: ")[1].split()[0].split(",")
    assert len(seeds) == 2 and png(tmp_path / "rand" / "styles.png").shape[1] == 3 * 32 + 2 * 2
    assert not (tmp_path / "rand" / "styles").exists()


def test_stylegan3_project_variations_and_edit(sg3_model, photos, tmp_path, capsys):
    code, err = run(capsys, "project", "--network", sg3_model, "--target", photos / "photo3.jpg", "--steps", 5,
                    "--outdir", tmp_path / "p")
    assert code == 0, err
    assert not any(k.startswith("noise.") for k in load_npz_extra(tmp_path / "p" / "projected_w.npz"))
    code, err = run(capsys, "variations", "--network", sg3_model, "--projected-w", tmp_path / "p" / "projected_w.npz",
                    "--seeds", "1,2", "--outdir", tmp_path / "v")
    assert code == 0, err
    assert "noise.png" not in err and not (tmp_path / "v" / "noise.png").exists()   # StyleGAN3 has no noise
    code, err = run(capsys, "directions", "--network", sg3_model, "--method", "sefa", "--num", 2,
                    "--out", tmp_path / "d.npz")
    assert code == 0, err
    code, err = run(capsys, "edit", "--network", sg3_model, "--projected-w", tmp_path / "p" / "projected_w.npz",
                    "--direction", tmp_path / "d.npz", "--strength", "-2:2:3", "--outdir", tmp_path / "e")
    assert code == 0, err
    strip = png(tmp_path / "e" / "projected_w-sefa-0.png")
    assert np.array_equal(strip[:, 34:66], png(tmp_path / "p" / "proj.png"))

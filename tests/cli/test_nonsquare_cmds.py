"""Every command loads a non-square model file (native format) and makes images of its shape: StyleGAN2 at
32x16 and StyleGAN3 at 16x32 (W x H); what cannot hold a non-square model says so in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from support.cli import run
from support.detectors import save_detector
from support.models import save_tiny

from stylegan.checkpoints import load_generator
from stylegan.cli.main import main

EMOJI = Path(__file__).parents[1] / "assets" / "emoji-unseen"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("rect")
    return {"stylegan2": save_tiny(d / "sg2-32x16.safetensors", "stylegan2", img_shape=(16, 32), channels=16),
            "stylegan3": save_tiny(d / "sg3-16x32.safetensors", "stylegan3", img_shape=(32, 16), channels=16)}


def size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


@pytest.mark.parametrize("generation", ["stylegan2", "stylegan3"])
def test_generation_commands_make_images_of_the_native_shape(tmp_path, capsys, models, generation):
    model = models[generation]
    G = load_generator(model)
    h, w = G.img_shape
    assert (h, w) == ((16, 32) if generation == "stylegan2" else (32, 16))
    with pytest.raises(SystemExit):
        main(["info", str(model)])
    assert f"resolution:    {w}x{h}, 3 channel(s) (non-square: width x height)" in capsys.readouterr().out
    code, err = run(capsys, "generate", "--network", model, "--seeds", "0-1", "--outdir", tmp_path / "g")
    assert code == 0, err
    assert size(tmp_path / "g" / "seed0000.png") == (w, h)
    code, err = run(capsys, "generate", "--network", model, "--seeds", "0", "--size", f"{2 * w}x{h}",
                    "--outdir", tmp_path / "wide")                    # a canvas from the native shape
    assert code == 0, err
    assert size(tmp_path / "wide" / "seed0000.png") == (2 * w, h)
    code, err = run(capsys, "mix", "--network", model, "--rows", "1,2", "--cols", "3", "--outdir", tmp_path / "m")
    assert code == 0, err
    assert size(tmp_path / "m" / "grid.png") == (2 * w, 3 * h)       # a blank corner, the columns, the rows
    code, err = run(capsys, "video", "--network", model, "--seeds", "0-1", "--num-keyframes", "2", "--w-frames", "2",
                    "--output", tmp_path / "v.gif")
    assert code == 0 and f"(4 frames, {w}x{h}," in err, err
    code, err = run(capsys, "latent", "from-seeds", "--network", model, "--seeds", "0-1", "--output",
                    tmp_path / "w.npz")
    assert code == 0, err
    code, err = run(capsys, "generate", "--network", model, "--ws", tmp_path / "w.npz", "--outdir", tmp_path / "gw")
    assert code == 0 and len(list((tmp_path / "gw").glob("*.png"))) == 2, err
    assert np.array_equal(np.asarray(Image.open(next((tmp_path / "gw").glob("*0.png")))),
                          np.asarray(Image.open(tmp_path / "g" / "seed0000.png")))
    code, err = run(capsys, "directions", "--network", model, "--method", "sefa", "--out", tmp_path / "d.npz")
    assert code == 0, err
    code, err = run(capsys, "edit", "--network", model, "--seeds", "1", "--direction", tmp_path / "d.npz",
                    "--strength", "-2,0,2", "--outdir", tmp_path / "e")
    assert code == 0, err
    (strip,) = (tmp_path / "e").glob("*.png")
    assert size(strip)[1] == h


def test_projection_prepares_targets_at_the_model_shape_and_variations_follow(tmp_path, capsys, models):
    model = models["stylegan2"]
    code, err = run(capsys, "project", "--network", model, "--target", EMOJI / "cat.png", "--num-steps", "2",
                    "--outdir", tmp_path / "p")
    assert code == 0, err
    target = np.asarray(Image.open(tmp_path / "p" / "target.png"))
    cat = np.asarray(Image.open(EMOJI / "cat.png"))
    assert target.shape == (16, 32, 3) and np.array_equal(target, cat[8:24])   # the centre 32x16 of the 32x32 cat
    assert size(tmp_path / "p" / "proj.png") == (32, 16)
    code, err = run(capsys, "variations", "--network", model, "--projected-w", tmp_path / "p" / "projected_w.npz",
                    "--seeds", "1-2", "--outdir", tmp_path / "var")
    assert code == 0, err
    assert size(tmp_path / "var" / "projection.png") == (32, 16)


def test_metrics_and_serve_load_it_and_refusals_are_one_line(tmp_path, capsys, models):
    model = models["stylegan2"]
    data = tmp_path / "emoji.zip"
    assert run(capsys, "dataset", "--source", EMOJI, "--dest", data, "--resolution", "32x16")[0] == 0
    inception = save_detector("inception", tmp_path / "inception-2015-12-05.pt")
    with pytest.raises(SystemExit):
        main(["metrics", "--network", str(model), "--metrics", "fid50k_full", "--data", str(data),
              "--detector", f"inception={inception}", "--num-gen", "8", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["metric"] == "fid8_full"
    code, err = run(capsys, "metrics", "--network", model, "--metrics", "fid50k_full", "--data", EMOJI,
                    "--detector", f"inception={inception}", "--num-gen", "8")
    assert code == 1 and "are 32x32 but the model makes 32x16; make a dataset at the model's size " \
                         "(stylegan dataset --resolution 32x16)" in err, err
    code, err = run(capsys, "metrics", "--network", models["stylegan3"], "--metrics", "eqt50k_int", "--num-gen", "4")
    assert code == 1 and "measured on square models only (this one draws 16x32)" in err, err
    code, err = run(capsys, "convert", model, tmp_path / "r.pt", "--to", "rosinality")
    assert code == 1 and "cannot write a rosinality checkpoint of a non-square (32x16) model" in err, err
    assert not (tmp_path / "r.pt").exists()
    Image.fromarray(np.full([16, 32], 255, np.uint8)).save(tmp_path / "mask.png")      # the model's own size
    code, err = run(capsys, "drag", "--network", model, "--seed", "0", "--points", "26,8>28,8", "--steps", "2",
                    "--mask", tmp_path / "mask.png", "--outdir", tmp_path / "drag")       # x beyond the height
    assert code == 0, err
    assert size(tmp_path / "drag" / "dragged.png") == (32, 16)
    Image.fromarray(np.full([32, 32], 255, np.uint8)).save(tmp_path / "square.png")
    code, err = run(capsys, "drag", "--network", model, "--seed", "0", "--points", "4,4>6,6",
                    "--mask", tmp_path / "square.png", "--outdir", tmp_path / "drag2")
    assert code == 1 and err.strip().splitlines() == ["error: --mask square.png is 32x32; it must be the image "
                                                      "size, 32x16"], err
    code, err = run(capsys, "drag", "--network", model, "--seed", "0", "--points", "4,20>6,6",
                    "--outdir", tmp_path / "drag3")
    assert code == 1 and "outside the 32x16 image (x must be 0..31, y 0..15)" in err, err
    code, err = run(capsys, "encoder", "train", "--network", model, "--out", tmp_path / "enc.safetensors",
                    "--kimg", "0.01")
    assert code == 1 and "encoders are made for square models; this one draws 32x16" in err, err
    code, err = run(capsys, "project", "--network", model, "--target", EMOJI / "cat.png", "--encoder", "builtin",
                    "--outdir", tmp_path / "pe")
    assert code == 1 and "encoders are made for square models" in err, err

    from stylegan.web.app import create_app
    app = create_app(model, model.parent, device="cpu")

    async def render():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            info = (await c.get("/api/model")).json()
            renders = [await c.post("/api/render", json={"latent": {"seed": 3}, **extra})
                       for extra in ({}, {"canvas": "32x16"}, {"canvas": "64x16"})]
            dragged = await c.post("/api/drag", json={"render": {"latent": {"seed": 3}, "noise_mode": "const"},
                                                       "handles": [[26, 8]], "targets": [[28, 9]], "steps": 2,
                                                       "session": "ns"})
            return (await c.get("/api/info")).status_code, info, renders, dragged
    status, info, (r, same, wide), dragged = asyncio.run(render())
    lines = [json.loads(line) for line in dragged.text.splitlines()]
    assert dragged.status_code == 200 and "result" in lines[-1], dragged.text
    assert size(__import__("io").BytesIO(__import__("base64").b64decode(lines[0]["png"]))) == (32, 16)
    assert status == 200 and r.status_code == 200, r.text
    assert size(__import__("io").BytesIO(r.content)) == (32, 16)
    assert info["img_shape"] == [16, 32] and info["canvas"]["presets"][0]["size"] == [32, 16], info
    assert same.content == r.content                     # the native shape is the ordinary path
    assert size(__import__("io").BytesIO(wide.content)) == (64, 16), wide.text

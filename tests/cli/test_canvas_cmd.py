"""``--size WxH`` in generate, video, mix, variations and edit, and the API's ``canvas=``: the asked
size, the rounding said once, the default size byte for byte the old output, one-line errors."""

import numpy as np
import pytest
import torch
from support.cli import png, run

from stylegan.api import generate_images, style_mix, video_frames
from stylegan.checkpoints import load_generator
from stylegan.latent.io import save_ws
from stylegan.latent.projection import noise_to_npz
from stylegan.latent.sampling import GenerationRequest
from stylegan.render.video import read_video, video_info


def test_generate_size_writes_the_asked_size_and_says_the_rounding_once(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "0-2", "--size", "64x36",
                    "--outdir", tmp_path / "wide")
    assert code == 0, err
    assert err.count("rendered at 64x40 and its centre 64x36 kept") == 1
    images = [png(tmp_path / "wide" / f"seed{s:04d}.png") for s in range(3)]
    assert all(im.shape == (36, 64, 3) for im in images)
    api = generate_images(load_generator(sg2_model), [0, 1, 2], canvas="64x36")
    assert all(np.array_equal(a, b) for a, b in zip(api.arrays, images))
    assert np.array_equal(generate_images(load_generator(sg2_model), [0], canvas=(36, 64)).arrays[0], images[0])
    reflected = generate_images(load_generator(sg2_model), [0], canvas=(36, 64), extension="reflect").arrays[0]
    assert reflected.shape == images[0].shape and not np.array_equal(reflected, images[0])


def test_the_models_own_size_is_the_old_output_byte_for_byte(sg2_model, sg3_model, tmp_path, capsys):
    for model in (sg2_model, sg3_model):
        assert run(capsys, "generate", "--network", model, "--seeds", "3,4", "--outdir", tmp_path / "plain")[0] == 0
        code, err = run(capsys, "generate", "--network", model, "--seeds", "3,4", "--size", "32x32",
                        "--outdir", tmp_path / "sized")
        assert code == 0 and "centre" not in err
        for name in ("seed0003.png", "seed0004.png"):
            assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "sized" / name).read_bytes()


def test_stylegan3_size_is_a_wider_view_of_the_same_image(sg3_model, tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", sg3_model, "--seeds", "7", "--size", "64x36",
                    "--outdir", tmp_path / "wide")
    assert code == 0 and "centre" not in err                  # even sides: nothing to round for StyleGAN3
    wide = png(tmp_path / "wide" / "seed0007.png").astype(int)
    plain = generate_images(load_generator(sg3_model), [7]).arrays[0].astype(int)
    assert wide.shape == (36, 64, 3)
    # The tiny test network has 4-sample margins: the centre matches to about one level (~49 dB).
    assert np.abs(wide[2:34, 16:48] - plain).mean() < 1.5
    assert np.abs(wide[2:34, :32] - plain).mean() > 5                  # elsewhere: other parts of the scene
    code, err = run(capsys, "generate", "--network", sg3_model, "--seeds", "7", "--size", "63x35",
                    "--outdir", tmp_path / "odd")
    assert code == 0 and err.count("rendered at 64x36 and its centre 63x35 kept") == 1
    assert png(tmp_path / "odd" / "seed0007.png").shape == (35, 63, 3)


@pytest.mark.parametrize("args, message", [
    (["--size", "1920"], "size must be WIDTHxHEIGHT in pixels, e.g. 1920x1080, got '1920'"),
    (["--size", "wide"], "size must be WIDTHxHEIGHT"),
    (["--size", "0x10"], "canvas must be two positive integers (height, width), got (10, 0)"),
    (["--size", "20000x1080"], "canvas 20000x1080 (width x height) is too large: at most 16384 pixels a side"),
    (["--size", "64x36", "--extend", "reflect", "--sg3"], "StyleGAN3 has no constant to extend"),
])
def test_size_errors_are_one_line(sg2_model, sg3_model, tmp_path, capsys, args, message):
    model = sg3_model if "--sg3" in args else sg2_model
    args = [a for a in args if a != "--sg3"]
    code, err = run(capsys, "generate", "--network", model, "--seeds", "0", *args, "--outdir", tmp_path / "o")
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_video_size_pans_through_the_wider_stylegan3_field(sg3_model, tmp_path, capsys):
    out = tmp_path / "pan.mp4"
    code, err = run(capsys, "video", "--network", sg3_model, "--seeds", "0,1", "--frames", 6, "--size", "64x36",
                    "--translate-anim", "0.5,0", "--lossless", "--output", out)
    assert code == 0 and "64x36" in err, err
    assert video_info(out)["size"] == (64, 36)
    frames = read_video(out)
    assert len(frames) == 6
    G = load_generator(sg3_model)
    plan = video_frames(G, "0,1", frames_per_transition=3, canvas=(36, 64), translate_anim=(0.5, 0))
    expected = list(plan)
    assert plan.frame_size == (64, 36)
    assert all(np.abs(f.astype(int) - e.astype(int)).max() <= 1 for f, e in zip(frames, expected))
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 3       # the camera moved


def test_video_and_mix_size_for_stylegan2(sg2_model, tmp_path, capsys):
    out = tmp_path / "walk.mp4"
    code, err = run(capsys, "video", "--network", sg2_model, "--seeds", "0,1", "--frames", 4, "--size", "48x32",
                    "--extend", "reflect", "--output", out)
    assert code == 0 and err.count("centre 48x32 kept") == 0, err          # 48 and 32 are multiples of 8
    assert video_info(out)["size"] == (48, 32)
    code, err = run(capsys, "mix", "--network", sg2_model, "--rows", "1,2", "--cols", "3,4,5", "--size", "60x32",
                    "--outdir", tmp_path / "mix")
    assert code == 0 and err.count("rendered at 64x32 and its centre 60x32 kept") == 1, err
    assert png(tmp_path / "mix" / "grid.png").shape == (3 * 32, 4 * 60, 3)
    api = style_mix(load_generator(sg2_model), [1, 2], [3, 4, 5], canvas=(32, 60))
    assert np.array_equal(np.asarray(api.images["1-3"]), png(tmp_path / "mix" / "1-3.png"))


def test_variations_and_edit_with_projected_noise_on_a_canvas(sg2_model, tmp_path, capsys):
    G = load_generator(sg2_model)
    ws = GenerationRequest(G).seed_latents([5]).ws
    noise = {k: torch.randn([1, 1, *v.shape], generator=torch.Generator().manual_seed(1))
             for k, v in G.synthesis.noise_maps().items()}
    save_ws(tmp_path / "projected_w.npz", ws, **noise_to_npz(noise))
    code, err = run(capsys, "variations", "--network", sg2_model, "--projected-w", tmp_path / "projected_w.npz",
                    "--seeds", "1-2", "--trunc", "1,0", "--noise-samples", 2, "--size", "64x32",
                    "--outdir", tmp_path / "var")
    assert code == 0, err
    proj = png(tmp_path / "var" / "projection.png")
    assert proj.shape == (32, 64, 3)
    # The projection's own (square) noise maps are continued over the canvas: not the stored const maps.
    const = GenerationRequest(G, canvas=(32, 64)).images(ws)[0]
    assert not np.array_equal(proj, const)
    with_noise = GenerationRequest(G, canvas=(32, 64)).images(ws, noise=noise)[0]
    assert np.array_equal(proj, with_noise)
    assert png(tmp_path / "var" / "noise.png").shape == (32, 2 * 64 + 2, 3)
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "sefa", "--num", 2,
                    "--out", tmp_path / "sefa.npz")
    assert code == 0, err
    code, err = run(capsys, "edit", "--network", sg2_model, "--projected-w", tmp_path / "projected_w.npz",
                    "--direction", tmp_path / "sefa.npz", "--index", "0", "--strength", "-2:2:3", "--size", "64x32",
                    "--outdir", tmp_path / "edit")
    assert code == 0, err
    strip = png(tmp_path / "edit" / "projected_w-sefa-0.png")
    assert strip.shape == (32, 3 * 64 + 2 * 2, 3)
    assert np.array_equal(strip[:, 66:130], proj)                          # strength 0 = the projection

"""``stylegan generate``: files, grids, saved latents, determinism, and one-line errors."""

import shutil

import numpy as np
import pytest
from support.cli import png, run

from stylegan.checkpoints import load_generator
from stylegan.latent.io import load_npz_extra
from stylegan.api import generate_images
from stylegan.latent.seeds import z_from_seed


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_one_png_per_seed_reproducibly(sg2_model, tmp_path, capsys):
    args = ["generate", "--network", sg2_model, "--seeds", "0-2,5", "--trunc", "0.7", "--batch", "3"]
    assert run(capsys, *args, "--outdir", tmp_path / "a")[0] == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"seed{s:04d}.png" for s in (0, 1, 2, 5)]
    ref = generate_images(load_generator(sg2_model), [5], truncation_psi=0.7)      # NVIDIA: one seed at a time
    assert same_pixels(png(tmp_path / "a" / "seed0005.png"), ref.arrays[0])
    run(capsys, *args, "--outdir", tmp_path / "b")
    for s in (0, 1, 2, 5):
        assert (tmp_path / "a" / f"seed{s:04d}.png").read_bytes() == (tmp_path / "b" / f"seed{s:04d}.png").read_bytes()


def test_other_batch_sizes_differ_by_float_rounding_at_most(sg2_model, tmp_path, capsys):
    for batch in ("4", "1"):
        run(capsys, "generate", "--network", sg2_model, "--seeds", "0-3", "--batch", batch, "--outdir", tmp_path / batch)
    for s in range(4):
        assert same_pixels(png(tmp_path / "4" / f"seed{s:04d}.png"), png(tmp_path / "1" / f"seed{s:04d}.png"))


def test_grid_is_one_image_of_rows_by_columns(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "0-4", "--grid", "2x3",
                    "--outdir", tmp_path)
    assert code == 0 and "wrote grid.png" in err
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    grid = png(tmp_path / "grid.png")
    assert grid.shape == (2 * 32, 3 * 32, 3)
    G = load_generator(sg2_model)
    assert same_pixels(grid[32:, 32:64], generate_images(G, [4]).arrays[0])    # row 1, column 1
    assert same_pixels(grid[:32, 64:], generate_images(G, [2]).arrays[0])      # row 0, column 2
    assert (grid[32:, 64:] == 0).all()                        # the sixth cell is blank


def test_saved_latents_render_back_to_the_same_file(sg2_model, tmp_path, capsys):
    run(capsys, "generate", "--network", sg2_model, "--seeds", "3,4", "--trunc", "0.5", "--save-ws",
        "--outdir", tmp_path / "seeds")
    data = load_npz_extra(tmp_path / "seeds" / "seed0003.npz")
    assert data["ws"].shape == (1, 8, 32) and data["seeds"].tolist() == [3] and float(data["psi"]) == 0.5
    assert np.allclose(data["z"][0], z_from_seed(3, 32))
    code, _ = run(capsys, "generate", "--network", sg2_model, "--ws", tmp_path / "seeds" / "seed0003.npz",
                  "--projected-w", tmp_path / "seeds" / "seed0004.npz", "--outdir", tmp_path / "again")
    assert code == 0
    for name in ("seed0003.png", "seed0004.png"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "seeds" / name).read_bytes()


def test_nvidia_projected_w_file(sg2_model, tmp_path, capsys):
    G = load_generator(sg2_model)
    w = generate_images(G, [7, 8]).ws
    np.savez(tmp_path / "projected_w.npz", w=w)               # what NVIDIA's projector writes
    run(capsys, "generate", "--network", sg2_model, "--projected-w", tmp_path / "projected_w.npz",
        "--outdir", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["projected_w-00.png", "projected_w-01.png"]
    assert same_pixels(png(tmp_path / "out" / "projected_w-01.png"), generate_images(G, [8]).arrays[0])


def test_random_noise_is_seeded_per_image(sg2_model, tmp_path, capsys):
    for batch, out in (("4", "a"), ("1", "b")):
        run(capsys, "generate", "--network", sg2_model, "--seeds", "1-2", "--noise-mode", "random",
            "--batch", batch, "--outdir", tmp_path / out)
    assert (tmp_path / "a" / "seed0002.png").read_bytes() == (tmp_path / "b" / "seed0002.png").read_bytes()
    const = generate_images(load_generator(sg2_model), [2]).arrays[0]
    assert not np.array_equal(png(tmp_path / "a" / "seed0002.png"), const)


def test_random_seeds_are_printed(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", sg2_model, "--random", "3", "--outdir", tmp_path)
    seeds = [int(s) for s in err.split("random seeds: ")[1].split()[0].split(",")]
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == sorted(f"seed{s:04d}.png" for s in seeds)


def test_class_labels_of_a_conditional_model(cond_model, tmp_path, capsys):
    for c in ("0", "3"):
        assert run(capsys, "generate", "--network", cond_model, "--seeds", "1", "--class", c,
                   "--outdir", tmp_path / c)[0] == 0
    assert not np.array_equal(png(tmp_path / "0" / "seed0001.png"), png(tmp_path / "3" / "seed0001.png"))


def test_stylegan3_translate_and_rotate(sg3_model, tmp_path, capsys):
    run(capsys, "generate", "--network", sg3_model, "--seeds", "2", "--translate", "0.2,-0.1", "--rotate", "30",
        "--outdir", tmp_path)
    G = load_generator(sg3_model)
    moved = generate_images(G, [2], translate=(0.2, -0.1), rotate=30).arrays[0]
    assert np.array_equal(png(tmp_path / "seed0002.png"), moved)
    assert not np.array_equal(moved, generate_images(G, [2]).arrays[0])


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1-x"], "invalid seed list '1-x'"),
    (["--seeds", "9-3"], "the end is smaller than the start"),
    (["--seeds", "1", "--trunc", "2.5"], "truncation psi 2.5 is out of range"),
    (["--seeds", "1", "--trunc-cutoff", "9"], "truncation cutoff 9 is out of range"),
    (["--seeds", "1", "--class", "2"], "this model is unconditional"),
    (["--seeds", "0-9", "--grid", "2x2"], "a 2x2 grid holds 4 images, got 10 seeds"),
    (["--seeds", "1", "--grid", "2by2"], "invalid grid '2by2'"),
    (["--seeds", "1", "--random", "2"], "give exactly one of"),
    (["--seeds", "1", "--rotate", "10"], "need a StyleGAN3 model"),
    (["--ws", "missing.npz"], "file not found: missing.npz"),
    (["--ws", "missing.npz", "--save-ws"], "already in the files"),
    (["--seeds", "1", "--fp16", "--device", "cpu"], "--fp16 needs a CUDA GPU"),
])
def test_bad_input_is_one_line_and_leaves_nothing(sg2_model, tmp_path, capsys, args, message):
    code, err = run(capsys, "generate", "--network", sg2_model, *args, "--outdir", tmp_path / "out")
    assert code == 1
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_unwritable_outdir(sg2_model, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "1", "--outdir", tmp_path / "file" / "out")
    assert code == 1 and err.startswith("error: cannot create output folder") and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_synthesis_writes_the_same_images(sg2_model, tmp_path, capsys):
    import torch._dynamo
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert run(capsys, "generate", "--network", sg2_model, "--seeds", "3", "--compile", "--outdir", tmp_path / "c")[0] == 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it really ran compiled
    run(capsys, "generate", "--network", sg2_model, "--seeds", "3", "--outdir", tmp_path / "e")
    assert same_pixels(png(tmp_path / "c" / "seed0003.png"), png(tmp_path / "e" / "seed0003.png"))


def test_compile_without_a_cpu_compiler_is_one_line(sg2_model, tmp_path, capsys, monkeypatch):
    import stylegan.networks.generator as generator
    monkeypatch.setattr(generator.shutil, "which", lambda name: None)
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "1", "--compile", "--device", "cpu",
                    "--outdir", tmp_path / "out")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: --compile: compiling for the CPU needs a C++ compiler")
    assert not (tmp_path / "out").exists()

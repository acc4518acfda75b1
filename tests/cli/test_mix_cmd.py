"""``stylegan mix``: NVIDIA's file names and grid, the chosen layers, one-line errors."""

import numpy as np
import pytest
import torch
from support.cli import png, run

from stylegan.checkpoints import load_generator
from stylegan.api import generate_images
from stylegan.latent.sampling import GenerationRequest


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_mixing_grid_and_files(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "mix", "--network", sg2_model, "--rows", "10,11", "--cols", "20,21,22",
                    "--styles", "coarse", "--trunc", "0.8", "--outdir", tmp_path)
    assert code == 0 and "styles coarse = ws 0-3 (4²-8²)" in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["grid.png", "10-10.png", "11-11.png", "20-20.png", "21-21.png", "22-22.png",
                            "10-20.png", "10-21.png", "10-22.png", "11-20.png", "11-21.png", "11-22.png"])
    G = load_generator(sg2_model)
    a, b = torch.from_numpy(GenerationRequest(G, 0.8).seed_latents([11, 22]).ws)
    mixed = torch.cat([b[:4], a[4:]])[None]                    # B's coarse layers, A's middle layers
    assert same_pixels(png(tmp_path / "11-22.png"), GenerationRequest(G).images(mixed)[0])
    assert same_pixels(png(tmp_path / "11-11.png"), generate_images(G, [11], truncation_psi=0.8).arrays[0])

    grid = png(tmp_path / "grid.png")
    assert grid.shape == (3 * 32, 4 * 32, 3)
    assert (grid[:32, :32] == 0).all()                          # blank corner
    assert np.array_equal(grid[:32, 96:], png(tmp_path / "22-22.png"))     # top row: column seeds
    assert np.array_equal(grid[64:, :32], png(tmp_path / "11-11.png"))     # left column: row seeds
    assert np.array_equal(grid[64:, 96:], png(tmp_path / "11-22.png"))


def test_latent_files_as_rows_and_saved_mixes(sg2_model, tmp_path, capsys):
    run(capsys, "generate", "--network", sg2_model, "--seeds", "5", "--save-ws", "--outdir", tmp_path / "g")
    code, _ = run(capsys, "mix", "--network", sg2_model, "--rows", tmp_path / "g" / "seed0005.npz", "--cols", "6",
                  "--styles", "4-", "--save-ws", "--grid-only", "--outdir", tmp_path / "m")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["grid.png", "seed0005-6.npz"]
    run(capsys, "generate", "--network", sg2_model, "--ws", tmp_path / "m" / "seed0005-6.npz",
        "--outdir", tmp_path / "r")
    assert same_pixels(png(tmp_path / "r" / "seed0005-6.png"), png(tmp_path / "m" / "grid.png")[32:, 32:])


@pytest.mark.parametrize("styles, message", [
    ("0-8", "layer 8 is out of range: this model has 8 ws (layers 0-7)"),
    ("fine", "this 32x32 model has no fine layers"),
    ("hair", "'hair' is not a layer"),
])
def test_bad_layers(sg2_model, tmp_path, capsys, styles, message):
    code, err = run(capsys, "mix", "--network", sg2_model, "--rows", "1", "--cols", "2", "--styles", styles,
                    "--outdir", tmp_path / "out")
    assert code == 1 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_seeds_and_psi(sg2_model, tmp_path, capsys):
    for args, message in ((["--rows", "1,,2", "--cols", "3"], "is not a seed"),
                          (["--rows", "1", "--cols", "3", "--trunc", "-3"], "out of range")):
        code, err = run(capsys, "mix", "--network", sg2_model, *args, "--outdir", tmp_path / "out")
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()

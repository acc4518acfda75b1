"""The model shipped inside the package: present, small, documented, loads without --network, and
actually learned its data (these checks fail for an untrained network)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from stylegan.checkpoints import builtin_model_path, load_network
from stylegan.latent.projection import ProjectionConfig, project
from stylegan.api import generate_images


@pytest.fixture(scope="module")
def builtin():
    path = builtin_model_path()
    assert path.exists(), "the package must ship its built-in model"
    return load_network(None)


def test_the_builtin_model_is_small_and_carries_its_model_card(builtin):
    assert builtin_model_path().stat().st_size <= 30 * 2**20
    meta = builtin.metadata
    assert meta.get("builtin") and "Apache" in meta["data_license"] and meta["kimg"] > 0
    assert (builtin_model_path().parent / "MODEL_CARD.md").exists()
    G = builtin.G_ema
    assert (G.img_resolution, G.img_channels, G.c_dim) == (32, 3, 0)


def test_generate_without_network_uses_the_builtin_model(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylegan.cli.main", "generate", "--seeds", "0-3", "--trunc", "0.7",
                        "--outdir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"seed000{i}.png" for i in range(4)]


def test_samples_look_like_the_training_data(builtin):
    """Emoji portraits on white: bright borders, a darker, colourful subject in the middle, and
    different seeds give different images. A randomly initialised generator fails all three."""
    images = generate_images(builtin.G_ema, list(range(64)), truncation_psi=0.7, batch_size=64).arrays
    x = images.astype(np.float32)
    border = np.concatenate([x[:, :2].reshape(64, -1, 3), x[:, -2:].reshape(64, -1, 3),
                             x[:, :, :2].reshape(64, -1, 3), x[:, :, -2:].reshape(64, -1, 3)], axis=1)
    centre = x[:, 8:24, 8:24].reshape(64, -1, 3)
    assert border.mean() > 200                       # white background
    assert centre.mean() < border.mean() - 40        # a subject in the middle
    assert centre.std(axis=1).mean() > 20            # with structure
    assert np.abs(x[:32] - x[32:]).mean() > 10       # seeds differ


def test_projection_recovers_an_image_of_the_trained_model(builtin):
    """A target the model generated from a known w is reconstructed: PSNR at least 30 dB after 150 W+
    steps (measured 36-38 dB for seeds 3, 7, 11; the start, w_avg, is 11-14 dB) on the CPU in seconds."""
    G = builtin.G_ema
    torch.manual_seed(0)
    target = generate_images(G, [7], truncation_psi=0.7).arrays
    result = project(G, target, config=ProjectionConfig(space="w+", num_steps=150, w_avg_samples=2000))
    assert result.psnr[0] >= 30 and result.psnr[0] > result.initial_psnr[0] + 8

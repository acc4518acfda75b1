"""Training-test helpers: a tiny real dataset, the tiny-model options, running the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan.data.dataset_tool import make_dataset

#: A StyleGAN2 small enough to train for real in seconds on one CPU core (16x16, 16 channels).
TINY = ["--cbase", "256", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map-depth", "2",
        "--mbstd-group", "4", "--gamma", "0.1"]


def make_blobs_dataset(root: Path, count: int = 64) -> Path:
    """``count`` 16x16 RGB images of coloured blobs, converted by the real dataset tool."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:24, 0:24]
    for i in range(count):
        cx, cy, r = rng.uniform(6, 18), rng.uniform(6, 18), rng.uniform(3, 7)
        img = np.zeros([24, 24, 3])
        img[(xs - cx) ** 2 + (ys - cy) ** 2 < r * r] = rng.uniform(60, 255, 3)
        (root / "src").mkdir(exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(root / "src" / f"{i:03d}.png")
    make_dataset(root / "src", root / "blobs.zip", resolution=16)
    return root / "blobs.zip"


def cli_env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", STYLEGAN_QUIET="1", PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def stylegan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "stylegan.cli.main", "-q", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(stylegan_cmd(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"stylegan {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def tiny_networks(cfg: str = "stylegan2", resolution: int = 16, c_dim: int = 0, seed: int = 0, **options):
    """(resolved TrainingOptions, G, D, G_ema) built exactly as ``stylegan train`` builds them, tiny."""
    import torch

    from stylegan.train.config import (
        TrainingOptions,
        build_networks,
        discriminator_config,
        generator_config,
    )
    sizes = {"cbase": 256, "cmax": 16, "z_dim": 16, "w_dim": 16, "map_depth": 2, "batch": 4, "gamma": 0.1}
    if cfg != "stylegan2":
        sizes.update(cbase=512)
    opts = TrainingOptions(cfg=cfg, **{**sizes, **options}).resolved(resolution)
    torch.manual_seed(seed)
    G, D, G_ema = build_networks(generator_config(opts, resolution, 3, c_dim),
                                 discriminator_config(opts, resolution, 3, c_dim))
    return opts, G, D, G_ema

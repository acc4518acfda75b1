"""The trainer really learns: a tiny conditional StyleGAN2 trained for about two minutes on
scikit-learn's handwritten digits makes digits a classifier recognises as the asked-for class."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from support.training import run_cli

from stylegan.checkpoints import load_network

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits
from sklearn.svm import SVC


def downsample(images: np.ndarray) -> np.ndarray:
    """[N, 16, 16] in [0, 1] -> [N, 64]: back to the digits' native 8x8 by 2x2 averaging."""
    return images.reshape(len(images), 8, 2, 8, 2).mean(axis=(2, 4)).reshape(len(images), -1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def generate(snapshot, per_class=50) -> np.ndarray:
    G = load_network(snapshot, which=("G_ema",)).G_ema
    torch.manual_seed(123)
    c = torch.eye(10).repeat_interleave(per_class, 0)
    with torch.no_grad():
        img = G(torch.randn(len(c), G.z_dim), c, noise_mode="const")
    return ((img[:, 0].clamp(-1, 1) + 1) / 2).numpy()


@pytest.mark.slow
def test_conditional_digits_are_learned_in_two_minutes(tmp_path):
    digits = load_digits()
    for i, (img, target) in enumerate(zip(digits.images, digits.target)):
        folder = tmp_path / "digits" / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img / 16 * 255).astype(np.uint8), "L").save(folder / f"{i:04d}.png")
    data = tmp_path / "digits.zip"
    run_cli("dataset", "--source", str(tmp_path / "digits"), "--dest", str(data), "--resolution", "16",
            "--mode", "gray", "--labels", "folders")
    run_cli("train", "--data", str(data), "--outdir", str(tmp_path / "runs"), "--cond", "--cbase", "512",
            "--cmax", "64", "--z-dim", "32", "--w-dim", "32", "--map-depth", "2", "--batch", "32",
            "--glr", "0.0025", "--dlr", "0.0025", "--gamma", "0.05", "--kimg", "12", "--tick", "4", "--snap", "3",
            "--grid", "10x10", timeout=900)
    (run,) = (tmp_path / "runs").iterdir()
    first, last = run / "network-snapshot-000000.safetensors", run / "network-snapshot-000012.safetensors"
    assert (run / "fakes_init.png").exists() and (run / "fakes000012.png").exists()

    # A classifier of the real digits, seen exactly as the generated ones will be.
    with zipfile.ZipFile(data) as z:
        table = json.loads(z.read("dataset.json"))["labels"]
        real = np.stack([np.asarray(Image.open(io.BytesIO(z.read(name))), np.float32) / 255 for name, _ in table])
        labels = np.array([label for _, label in table])
    clf = SVC(gamma="scale").fit(downsample(real), labels)
    wanted = np.repeat(np.arange(10), 50)

    scores = {}
    for name, snap in (("init", first), ("trained", last)):
        fake = generate(snap)
        scores[name] = ((clf.predict(downsample(fake)) == wanted).mean(),
                        frechet_distance(downsample(real), downsample(fake)))
    (acc0, fd0), (acc1, fd1) = scores["init"], scores["trained"]
    print(f"class accuracy {acc0:.3f} -> {acc1:.3f}; Frechet distance (8x8 pixels) {fd0:.2f} -> {fd1:.2f}")
    assert acc0 < 0.2                 # chance is 0.1
    assert acc1 > 0.35 and acc1 > 2 * acc0
    assert fd1 < 0.5 * fd0

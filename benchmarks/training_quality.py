"""Training quality on a real dataset, measured on held-out images, with NVIDIA's algorithm (our defaults).

scikit-learn's handwritten digits (1,797 8x8 scans of 10 classes, shipped with scikit-learn, no
download) are split once: every 6th image is held out, the rest (about 1,500) becomes the training
dataset (16x16 grey, one class per folder, made by the real ``stylegan dataset``). A small conditional
StyleGAN2 is trained with the real ``stylegan train`` (defaults = NVIDIA's algorithm: per-minibatch
style mixing, path-length mean updated with the current batch, lazy R1/PL, EMA ramp-up, ADA), once per
seed. Each snapshot's G_ema draws 100 digits per class, scored against the *held-out* digits:

- FD: Frechet distance in the digits' native 8x8 pixel space (2x2 box-averaged), generated vs held-out.
  Floor: the training digits vs the held-out digits.
- class accuracy: an SVM trained on the training digits recognises the requested class. Ceiling: the
  SVM's accuracy on the held-out digits. Chance is 0.10.

    python benchmarks/training_quality.py                          # 3 seeds x 24 kimg on the CPU
    python benchmarks/training_quality.py --seeds 5 --kimg 48 --device cuda
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_digits(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (img, label) in enumerate(zip(images, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img / 16 * 255).astype(np.uint8), "L").save(folder / str(label) / f"{i:04d}.png")


def read_zip(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A dataset zip's images as [N, 16, 16] floats in [0, 1] and its labels."""
    with zipfile.ZipFile(path) as z:
        table = json.loads(z.read("dataset.json"))["labels"]
        imgs = [np.asarray(Image.open(io.BytesIO(z.read(name))), np.float32) / 255 for name, _ in table]
    return np.stack(imgs), np.array([label for _, label in table])


def to_8x8(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), 8, 2, 8, 2).mean(axis=(2, 4)).reshape(len(images), -1).astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from stylegan.metrics.fid import frechet_distance
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def generate(snapshot: Path, per_class: int = 100) -> np.ndarray:
    from stylegan.checkpoints import load_network
    G = load_network(snapshot, which=("G_ema",)).G_ema
    torch.manual_seed(123)
    c = torch.eye(10).repeat_interleave(per_class, 0)
    with torch.no_grad():
        img = torch.cat([G(z, cc, noise_mode="const") for z, cc in zip(torch.randn(len(c), G.z_dim).split(250),
                                                                       c.split(250))])
    return ((img[:, 0].clamp(-1, 1) + 1) / 2).numpy()


def prepare(tmp: Path, cli: list[str], env: dict) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    held = np.arange(len(digits.target)) % 6 == 0
    for name, mask in (("train", ~held), ("heldout", held)):
        write_digits(tmp / name, digits.images[mask], digits.target[mask])
        subprocess.run(cli + ["dataset", "--source", str(tmp / name), "--dest", str(tmp / f"{name}.zip"),
                              "--resolution", "16", "--mode", "gray", "--labels", "folders"],
                       check=True, env=env, capture_output=True)
    train_x, train_y = read_zip(tmp / "train.zip")
    held_x, held_y = read_zip(tmp / "heldout.zip")
    return tmp / "train.zip", train_x, train_y, held_x, held_y


def standard_error(values) -> float:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--kimg", type=float, default=24)
    p.add_argument("--snap-kimg", type=float, default=8, help="score every this many kimg")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from sklearn.svm import SVC
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    torch.set_num_threads(args.threads)      # scoring here too: spinning OpenMP threads crawl on a busy machine
    cli = [sys.executable, "-m", "stylegan.cli.main", "-q"]
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start, torch "
          f"{torch.__version__}, device {args.device}, {args.threads} thread(s)")
    results: dict[float, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, train_x, train_y, held_x, held_y = prepare(tmp, cli, env)
        clf = SVC(gamma="scale").fit(to_8x8(train_x), train_y)
        floor = frechet(to_8x8(train_x), to_8x8(held_x))
        ceiling = float((clf.predict(to_8x8(held_x)) == held_y).mean())
        print(f"data: {len(train_y)} training digits, {len(held_y)} held out; floor FD(train, held-out) "
              f"{floor:.3f}; SVM accuracy on held-out digits {ceiling:.3f}")
        wanted = np.repeat(np.arange(10), 100)
        for seed in range(args.seeds):
            started = time.time()
            out = tmp / f"runs{seed}"
            subprocess.run(cli + ["train", "--data", str(data), "--outdir", str(out), "--cond", "--cbase", "512",
                                  "--cmax", "64", "--z-dim", "32", "--w-dim", "32", "--map-depth", "2", "--batch",
                                  "32", "--glr", "0.0025", "--dlr", "0.0025", "--gamma", "0.05", "--kimg",
                                  str(args.kimg), "--tick", str(args.snap_kimg), "--snap", "1", "--seed", str(seed),
                                  "--grid", "10x10", "--metrics", "none", "--device", args.device],
                           check=True, env=env, capture_output=True)
            (run,) = out.iterdir()
            line = []
            for snap in sorted(run.glob("network-snapshot-*.safetensors")):
                kimg = int(snap.stem.rsplit("-", 1)[1])
                fake = to_8x8(generate(snap))
                score = (frechet(fake, to_8x8(held_x)), float((clf.predict(fake) == wanted).mean()))
                results.setdefault(kimg, []).append(score)
                line.append(f"{kimg} kimg: FD {score[0]:.3f} acc {score[1]:.3f}")
            print(f"seed {seed} ({time.time() - started:.0f}s, load {os.getloadavg()[0]:.1f}): " + "; ".join(line))
    print("kimg | FD vs held-out (mean +- s.e.) | class accuracy (mean +- s.e.) | seeds")
    for kimg, scores in sorted(results.items()):
        fd, acc = zip(*scores)
        print(f"{kimg:4d} | {statistics.mean(fd):.3f} +- {standard_error(fd):.3f} | {statistics.mean(acc):.3f} +- "
              f"{standard_error(acc):.3f} "
              f"| {len(scores)}")


if __name__ == "__main__":
    main()

"""Quality figures that need no downloaded detector network (used for the built-in model's card).

- FD16: Fréchet distance between real and generated images in a plain feature space: images
  box-downsampled to 16x16 RGB (768 numbers). Real-vs-real (two halves of the dataset) gives the
  floor for this many samples.
- Real-vs-fake accuracy: a logistic-regression classifier on those features, trained on half and
  scored on the other half; 50% means it cannot tell generated images from real ones.

These are crude next to FID with Inception features (which needs NVIDIA's detector file), but they
are honest, reproducible anywhere, and move clearly as a model learns.

    python benchmarks/quality_without_detector.py --network MODEL [--network OTHER ...] --data DATASET.zip [--json OUT]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F


def features(images_u8: np.ndarray) -> np.ndarray:
    """[N, H, W, C] uint8 -> [N, 768] box-downsampled 16x16 RGB in [0, 1]."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 255
    x = F.adaptive_avg_pool2d(x, 16)
    return x.flatten(1).numpy().astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from stylegan.metrics.fid import frechet_distance
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def real_vs_fake_accuracy(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    x = np.concatenate([real[rng.permutation(len(real))[:n]], fake[rng.permutation(len(fake))[:n]]])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    order = rng.permutation(2 * n)
    x, y = x[order], y[order]
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(x[:n], y[:n])   # train on half, score on the other
    return float(clf.score(x[n:], y[n:]))


def real_images(path: str) -> np.ndarray:
    from stylegan.data.dataset import ImageDataset
    ds = ImageDataset(path)
    return np.asarray(ds.get_images(np.arange(len(ds)))).transpose(0, 2, 3, 1)  # NCHW -> NHWC


def generated_images(network: str, count: int, psi: float) -> np.ndarray:
    from stylegan.api import generate_images
    return generate_images(network, seeds=range(count), truncation_psi=psi, batch_size=64, device="cpu").arrays


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", action="append", required=True, help="model file(s) to score")
    p.add_argument("--data", required=True)
    p.add_argument("--num", type=int, default=2000)
    p.add_argument("--trunc", type=float, default=1.0)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest on a busy machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    real = features(real_images(args.data))
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(real))
    a, b = real[perm[: len(real) // 2]], real[perm[len(real) // 2:]]
    print(f"real images: {len(real)}; generated per model: {args.num}; psi {args.trunc}")
    print(f"{'model':<60} {'FD16':>8} {'real-vs-fake acc':>17}")
    floor = {"fd16": frechet(a, b), "real_vs_fake_accuracy": real_vs_fake_accuracy(a, b)}
    print(f"{'real vs real (two halves)':<60} {floor['fd16']:>8.2f} {floor['real_vs_fake_accuracy']:>17.3f}")
    report = {"real_images": len(real), "generated": args.num, "truncation_psi": args.trunc,
              "features": "16x16 box-downsampled RGB", "real_vs_real": floor, "models": {}}
    for net in args.network:
        fake = features(generated_images(net, args.num, args.trunc))
        row = {"fd16": frechet(real, fake), "real_vs_fake_accuracy": real_vs_fake_accuracy(real, fake)}
        report["models"][net] = row
        print(f"{net[-60:]:<60} {row['fd16']:>8.2f} {row['real_vs_fake_accuracy']:>17.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

"""FID and KID over many seeds per sampling setting: mean ± standard error, to tell a systematic
difference between two ways of sampling the generated images from seed-to-seed noise.

Settings (interleaved seed by seed, so that machine load affects all alike):

- ``ours``: the generated images of ``stylegan.metrics`` as shipped (per-batch seeded streams,
  NVIDIA's steps), through the shipped feature statistics, FID and KID.
- ``nvidia-procedure``: the generated side re-done here literally as NVIDIA's metric code samples it
  (docs/metrics.md): one global torch generator seeded once, z then the noise inputs drawn from it
  chunk by chunk (4 samples), labels from NumPy's global generator.
- ``v1``: how our code sampled before this change (z and the noise inputs from two generators
  seeded with the same seed, so noise maps repeated latent values; whole batches through G).
- ``psi-0.9``: a deliberately different setting (truncation psi 0.9), to show the size of a real
  change at this sample count; ``noise-const`` (constant noise inputs) is another.

The detector is NOT NVIDIA's Inception (it cannot be downloaded here): it is a small TorchScript
network with fixed random weights (:func:`random_feature_net`), 256 features, the images resized to
64x64 inside it as Inception resizes to 299. Its FID values are not comparable with published FIDs;
what the benchmark measures is whether two sampling procedures give the same FID distribution.

    python benchmarks/metrics_seeds.py --data faces32.zip [--network builtin] [--num-gen 2000] [--seeds 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class RandomFeatureNet(nn.Module):
    """uint8 [N, 3, H, W] -> resize to 64x64 -> 4 conv(3x3, stride 2) + ReLU -> mean over space: 256-d."""

    def __init__(self, seed: int = 2024):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        widths = [3, 32, 64, 128, 256]
        self.w = nn.ParameterList([nn.Parameter(torch.randn([o, i, 3, 3], generator=g) * (2 / (9 * i)) ** 0.5)
                                   for i, o in itertools.pairwise(widths)])

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(img.to(torch.float32) / 127.5 - 1, size=[64, 64], mode="bilinear", align_corners=False)
        for w in self.w:
            x = F.relu(F.conv2d(x, w, stride=2, padding=1))
        return x.mean(dim=[2, 3])


def random_feature_net(folder: Path) -> Path:
    path = folder / "random-features-256.pt"
    torch.jit.save(torch.jit.script(RandomFeatureNet().eval()), str(path))
    return path


class Truncated(nn.Module):
    """``G`` with truncation psi applied in every call (for the deliberately different setting)."""

    def __init__(self, G, psi: float):
        super().__init__()
        self.G, self.psi, self.z_dim, self.c_dim = G, psi, G.z_dim, G.c_dim

    def forward(self, z, c, truncation_psi=1, **kwargs):
        return self.G(z, c, truncation_psi=self.psi * truncation_psi, **kwargs)


def v1_images(G, num, batch, seed, labels):
    """The generated images of the previous implementation (z and noise from the same seed)."""
    from stylegan.metrics.features import random_labels, to_uint8
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.RandomState(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, num, batch):
            n = min(batch, num - start)
            z = torch.randn([n, G.z_dim], generator=gen)
            with torch.no_grad():
                yield to_uint8(G(z, random_labels(G.c_dim, n, rng, labels), noise_mode="random"))


def nvidia_procedure_images(G, num, batch, seed, labels):
    """NVIDIA's procedure: a global generator seeded once; per chunk of 4, z = randn, label of a
    uniformly drawn dataset image (np.random), G(z, c) with random noise drawn from the same global
    generator; uint8 by truncation; detector batches of ``batch``."""
    from stylegan.metrics.features import to_uint8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np_state = np.random.get_state()
        np.random.seed(seed)
        try:
            for start in range(0, num, batch):
                out = []
                for _ in range(batch // 4):
                    z = torch.randn([4, G.z_dim])
                    c = (torch.from_numpy(labels[np.random.randint(len(labels), size=4)]) if G.c_dim
                         else torch.zeros([4, 0]))
                    with torch.no_grad():
                        out.append(to_uint8(G(z, c, noise_mode="random")))
                yield torch.cat(out)[:num - start]
        finally:
            np.random.set_state(np_state)


def fid_kid(gen_batches, detector, real_all, real_mean_cov, seed):
    from stylegan.metrics.features import FeatureStats
    from stylegan.metrics.fid import frechet_distance
    from stylegan.metrics.kid import kernel_inception_distance
    stats = FeatureStats(capture_all=True, capture_mean_cov=True)
    for images in gen_batches:
        stats.append(detector.features(images))
    fid = frechet_distance(*stats.get_mean_cov(), *real_mean_cov)
    return fid, kernel_inception_distance(stats.get_all(), real_all, seed=seed), stats.get_all()


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="real images: dataset folder or zip at the model's resolution")
    ap.add_argument("--network", default="builtin")
    ap.add_argument("--num-gen", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--settings", default="ours,nvidia-procedure,psi-0.9",
                    help="comma-separated, from: ours, nvidia-procedure, v1, psi-0.9, noise-const")
    ap.add_argument("--json", default=None, help="write every value here")
    args = ap.parse_args()

    from stylegan.checkpoints import load_generator
    from stylegan.metrics.data import open_images
    from stylegan.metrics.features import generated_images, real_features
    from stylegan.metrics.kid import kernel_inception_distance
    from stylegan.perception.detectors import load_detector

    G = load_generator(args.network).eval()
    det = load_detector(random_feature_net(Path(tempfile.mkdtemp())), kind="inception")
    real_src = open_images(args.data, resolution=G.img_resolution, channels=G.img_channels, use_labels=G.c_dim > 0)
    real = real_features(real_src, det, capture_all=True, capture_mean_cov=True, cache=False)
    real_all, real_mc = real.get_all(), real.get_mean_cov()
    labels = real_src.labels
    samplers = {
        "ours": lambda s: generated_images(G, args.num_gen, seed=s, labels=labels),
        "nvidia-procedure": lambda s: nvidia_procedure_images(G, args.num_gen, 64, s, labels),
        "v1": lambda s: v1_images(G, args.num_gen, 64, s, labels),
        "noise-const": lambda s: generated_images(G, args.num_gen, seed=s, labels=labels, noise_mode="const"),
        "psi-0.9": lambda s: generated_images(Truncated(G, 0.9), args.num_gen, seed=s, labels=labels),
    }
    settings = args.settings.split(",")
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f} at start")
    print(f"network {args.network}, data {args.data} ({real.num_items} real images), {args.num_gen} generated, "
          f"detector {det.name} (random weights, 256-d), seeds 0-{args.seeds - 1}")
    values = {s: {"fid": [], "kid": []} for s in settings}
    kid32_diff = []
    start = time.time()
    for seed in range(args.seeds):
        for name in settings:
            fid, kid, gen = fid_kid(samplers[name](seed), det, real_all, real_mc, seed)
            values[name]["fid"].append(fid)
            values[name]["kid"].append(kid)
            if name == settings[0]:     # NVIDIA's float32 KID arithmetic on the same features and subsets
                kid32_diff.append(abs(kernel_inception_distance(gen, real_all, seed=seed, dtype=np.float32) - kid))
        print(f"seed {seed} ({time.time() - start:.0f}s, load {os.getloadavg()[0]:.1f}): " + ", ".join(
            f"{n} FID {values[n]['fid'][-1]:.4f} KID {values[n]['kid'][-1]:.6f}" for n in settings), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": machine(), "detector": det.name, "values": values,
                                                   "kid_float32_minus_float64": kid32_diff}, indent=1))
    print(f"\n| setting | FID{args.num_gen} (mean ± s.e.) | KID{args.num_gen} ×1000 (mean ± s.e.) |")
    print("| --- | --- | --- |")
    for name in settings:
        v = {k: np.asarray(x) for k, x in values[name].items()}
        se = lambda a: a.std(ddof=1) / np.sqrt(len(a))
        print(f"| {name} | {v['fid'].mean():.3f} ± {se(v['fid']):.3f} | {1000 * v['kid'].mean():.3f} ± "
              f"{1000 * se(v['kid']):.3f} |")
    print(f"\nKID in float32 minus float64 ({settings[0]}): at most {max(kid32_diff):.1e}")
    print(f"load {os.getloadavg()[0]:.1f} at the end; {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()

"""EQ-R's own ceiling, and the band-limited rotation of this version against an earlier one.

1. Exactly rotation-equivariant test images: random plane waves (amplitude ∝ 1/f, frequencies up to
   ``f_max`` cycles/pixel) evaluated on the pixel grid and on the rotated grid. An ideal generator
   would produce exactly these; the PSNR EQ-R reports for them is the metric's ceiling.
2. With ``--rev REV``: the same images, and (with ``--reference DIR``) StyleGAN3 reference networks
   on identical samples and angles, through the rotation filter of the git revision REV (e.g.
   02fc8b4, the disc/jinc filter used before NVIDIA's construction).

    python benchmarks/metrics_eqr.py [--rev 02fc8b4] [--reference ../shared/reference]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

import stylegan.metrics.equivariance as eq
from stylegan.latent.sampling import transform_matrix

REPO = Path(__file__).resolve().parents[1]


def old_rotation(rev: str):
    """``rotate_bandlimited`` of revision ``rev`` (our earlier EQ-R filter), loaded from git."""
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:src/stylegan/metrics/equivariance.py"],
                         capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"equivariance_{rev}")
    module.__dict__.update(torch=torch, math=math, np=np, LANCZOS_A=3,
                           warnings=__import__("warnings"), functools=__import__("functools"))
    exec(src[src.index("ROTATION_CUTOFF = "):src.index("def psnr(")], module.__dict__)   # noqa: S102 - our own code
    rotate = module.rotate_bandlimited
    return lambda ref, img, angle: (rotate(ref, angle), rotate(img, 0.0))


def new_rotation(ref, img, angle):
    return eq.rotate_reference(ref, angle), eq.pseudo_rotate(img, angle)


def waves(rng, f_max: float, size: int = 64):
    """A random wave image as a function of the rotation angle (degrees, StyleGAN3's direction)."""
    f = np.sqrt(rng.rand(200)) * f_max
    th, ph = rng.rand(200) * 2 * np.pi, rng.rand(200) * 2 * np.pi
    amp = 0.005 / np.maximum(f, 0.02)
    yy, xx = np.meshgrid(np.arange(size) - (size - 1) / 2, np.arange(size) - (size - 1) / 2, indexing="ij")

    def image(angle: float) -> torch.Tensor:
        a = math.radians(angle)
        u, v = math.cos(a) * xx - math.sin(a) * yy, math.sin(a) * xx + math.cos(a) * yy
        phase = 2 * np.pi * (f[:, None, None] * (np.cos(th)[:, None, None] * u + np.sin(th)[:, None, None] * v))
        return torch.from_numpy((amp[:, None, None] * np.sin(phase + ph[:, None, None])).sum(0))[None, None]
    return image


def pooled_psnr(pairs) -> float:
    sq = count = 0.0
    for (ref, rmask), (img, imask) in pairs:
        m = rmask * imask
        sq += float(((ref.double() - img.double()).square() * m).sum())
        count += float(m.sum()) * ref.shape[1]
    return eq.psnr(sq, count)


def wave_ceiling(rotations: dict, f_maxes=(0.25, 0.35, 0.45), images: int = 8) -> None:
    for f_max in f_maxes:
        row = []
        for name, rotate in rotations.items():
            rng = np.random.RandomState(0)
            pairs = []
            for _ in range(images):
                image = waves(rng, f_max)
                angle = float(rng.uniform(-180, 180))
                pairs.append(rotate(image(0.0), image(angle), angle))
            row.append(f"{name} {pooled_psnr(pairs):.1f} dB")
        print(f"waves up to {f_max} cycles/px: " + ", ".join(row), flush=True)


def reference_networks(rotations: dict, reference: Path, batches: int = 16) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from support import models
    models.REFERENCE_DIR = reference
    for net in ("sg3t", "sg3r"):
        G = models.reference_checkpoint(net).G_ema
        gen = torch.Generator().manual_seed(0)
        buf = G.synthesis.input.transform
        pairs = {name: [] for name in rotations}
        for _ in range(batches):
            z = torch.randn([4, G.z_dim], generator=gen)
            angle = float((torch.rand([], generator=gen, dtype=torch.float64) * 2 - 1) * 180)
            with torch.no_grad():
                ws = G.mapping(z, None)
                buf.copy_(torch.eye(3))
                ref = G.synthesis(ws, force_fp32=True).double()
                buf.copy_(torch.from_numpy(transform_matrix(rotate=angle)).to(buf))
                img = G.synthesis(ws, force_fp32=True).double()
                buf.copy_(torch.eye(3))
            for name, rotate in rotations.items():
                pairs[name].append(rotate(ref, img, angle))
        print(f"{net}, {4 * batches} samples: " + ", ".join(f"{n} {pooled_psnr(p):.2f} dB" for n, p in pairs.items()),
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", default=None, help="also run the EQ-R filter of this git revision")
    ap.add_argument("--reference", type=Path, default=None, help="folder of the official reference networks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rotations = {"now": new_rotation}
    if args.rev:
        rotations[args.rev] = old_rotation(args.rev)
    wave_ceiling(rotations)
    if args.reference:
        reference_networks(rotations, args.reference)


if __name__ == "__main__":
    main()

"""Training speed: seconds per kimg (thousand real images shown) for a small configuration.

Runs the real ``stylegan train`` command on a synthetic 32x32 dataset (coloured discs and squares
written as PNGs and packed by ``stylegan dataset``), then reads the trainer's own timing from
``stats.jsonl`` (ticks after the first, which includes start-up). Lazy R1 and path-length
regularisation steps are included in the average, as in a real run.

    python benchmarks/training.py                       # CPU, the built-in model's size
    python benchmarks/training.py --device cuda --kimg 8 --cbase 16384 --cmax 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def make_images(folder: Path, count: int, size: int = 32, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 8, 2)
            w, h = rng.integers(6, size // 2, 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        img.save(folder / f"{i:05d}.png")


def _value(stats: dict, key: str) -> float:
    """A stats.jsonl entry: NVIDIA's layout stores {"num", "mean", "std"} per key."""
    v = stats.get(key, 0)
    return float(v["mean"] if isinstance(v, dict) else v)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--kimg", type=float, default=2.0, help="length of the measured run")
    p.add_argument("--tick", type=float, default=0.4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--cbase", type=int, default=2048)
    p.add_argument("--cmax", type=int, default=128)
    p.add_argument("--cfg", default="stylegan2")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cli = [sys.executable, "-m", "stylegan.cli.main", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "images", 256)
        subprocess.run(cli + ["dataset", "--source", str(tmp / "images"), "--dest", str(tmp / "data.zip")],
                       check=True, env=env, capture_output=True)
        cmd = cli + ["train", "--data", str(tmp / "data.zip"), "--outdir", str(tmp / "runs"), "--cfg", args.cfg,
                     "--cbase", str(args.cbase), "--cmax", str(args.cmax), "--z-dim", "128", "--w-dim", "128",
                     "--map-depth", "4", "--batch", str(args.batch), "--kimg", str(args.kimg),
                     "--tick", str(args.tick), "--snap", "1000", "--metrics", "none", "--device", args.device]
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        stats = [json.loads(line) for line in next((tmp / "runs").iterdir()).joinpath("stats.jsonl").open()]
        per_kimg = [v for s in stats[1:] if (v := _value(s, "Timing/sec_per_kimg")) > 0]
        mem = max(_value(s, "Resources/cpu_mem_gb") for s in stats)
        gpu_mem = max(_value(s, "Resources/peak_gpu_mem_gb") for s in stats)
    import torch
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}")
    print(f"config: {args.cfg} 32x32, --cbase {args.cbase} --cmax {args.cmax}, z/w 128, batch {args.batch}")
    print(f"sec/kimg: median {statistics.median(per_kimg):.1f} over {len(per_kimg)} ticks "
          f"(min {min(per_kimg):.1f}, max {max(per_kimg):.1f}); peak CPU memory {mem:.2f} GB"
          + (f", peak GPU memory {gpu_mem:.2f} GB" if args.device != "cpu" else ""))


if __name__ == "__main__":
    main()

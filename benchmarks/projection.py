"""Projection speed and quality: seconds per step, final loss and PSNR, for W and W+.

The target is an image the model generated itself (a known w, the model's constant noise); the projection
starts from the mean w, exactly as ``stylegan project`` runs (noise maps optimised, no-download loss with
the model's discriminator unless ``--vgg`` is given).

    python benchmarks/projection.py                                  # reference net, CPU (+ CUDA if present)
    python benchmarks/projection.py --models ref,sg2-256 --steps 100 --devices cpu,cuda
    python benchmarks/projection.py --vgg ~/vgg16.pt --json results.json

``ref`` is the official StyleGAN2 reference network (64x64, ../shared/reference): its images are
structured, so its PSNR means something. ``sg2-<res>`` / ``sg3t-<res>`` are the published architectures
with random weights: their timings are real, their PSNR is not a quality measure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from stylegan.perception.lpips import load_perceptual
from stylegan.latent.projection import ProjectionConfig, project
from stylegan.latent.seeds import z_from_seeds
from stylegan.networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                               StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)
from stylegan.render.images import to_uint8


def build(model: str):
    """(G, D) for a model name."""
    if model == "ref":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from support.models import REFERENCE_DIR, reference_checkpoint
        if not REFERENCE_DIR.is_dir():
            raise SystemExit(f"the reference networks are not at {REFERENCE_DIR}")
        ckpt = reference_checkpoint("sg2")
        return ckpt.G_ema, ckpt.D
    kind, res = model.split("-")
    res = int(res)
    torch.manual_seed(0)
    if kind == "sg2":
        cfg = GeneratorConfig("stylegan2", img_resolution=res, synthesis=StyleGAN2SynthesisConfig(channel_base=32768))
    elif kind == "sg3t":
        cfg = GeneratorConfig("stylegan3", img_resolution=res, mapping=MappingConfig(num_layers=2),
                              synthesis=StyleGAN3SynthesisConfig())
    else:
        raise SystemExit(f"unknown model {model!r}: use ref, sg2-<res> or sg3t-<res>")
    G = Generator(cfg).eval().requires_grad_(False)
    D = Discriminator(DiscriminatorConfig(img_resolution=res, channel_base=32768)).eval().requires_grad_(False)
    return G, D


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def run(model: str, device: torch.device, space: str, steps: int, seeds: list[int], vgg: str | None) -> dict:
    G, D = build(model)
    G, D = G.to(device), D.to(device)
    ws = G.mapping(z_from_seeds(seeds, G.z_dim, device), None)
    with torch.no_grad():
        target = to_uint8(G.synthesis(ws, noise_mode="const"))
    loss = load_perceptual(vgg, D=None if vgg else D, device=device)
    project(G, target, loss, ProjectionConfig(space=space, num_steps=2, w_avg_samples=1000))   # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stamps = []

    def on_step(step, images, dist):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    res = project(G, target, loss, ProjectionConfig(space=space, num_steps=steps), on_step=on_step)
    total = time.perf_counter() - start
    # The median step: robust to other programs stealing the CPU for a while.
    median = statistics.median(b - a for a, b in itertools.pairwise(stamps))
    return {"model": model, "device": device.type, "machine": machine(device), "space": space, "steps": steps,
            "targets": len(seeds), "s_per_step": median, "mean_s_per_step": res.seconds_per_step, "total_s": total,
            "final_loss": float(res.final_loss.mean()), "psnr": [round(float(p), 2) for p in res.psnr],
            "start_psnr": [round(float(p), 2) for p in res.initial_psnr], "loss": res.loss_name}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="ref", help="ref, sg2-<res>, sg3t-<res> (comma list)")
    ap.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, and cuda when available)")
    ap.add_argument("--spaces", default="w,w+")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seeds", default="0,3,7,11", help="targets: images of these seeds, projected as one batch")
    ap.add_argument("--vgg", default=None, help="LPIPS VGG16 weights (default: the no-download loss)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    print(f"{'model':8} {'device':6} {'space':5} {'steps':>5} {'s/step':>8} {'loss':>8} {'PSNR dB (start -> end)':30}  "
          f"machine")
    for model in args.models.split(","):
        for dev in devices:
            for space in args.spaces.split(","):
                r = run(model, torch.device(dev), space, args.steps, seeds, args.vgg)
                rows.append(r)
                psnr = " ".join(f"{a:.1f}->{b:.1f}" for a, b in zip(r["start_psnr"], r["psnr"]))
                print(f"{model:8} {dev:6} {space:5} {r['steps']:5d} {r['s_per_step']:8.4f} {r['final_loss']:8.4f} "
                      f"{psnr:30}  {r['machine']}", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"loss: {rows[0]['loss']}; {len(seeds)} targets per batch (seeds {args.seeds}); s/step = median step "
          f"time of the batch; load average {load:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

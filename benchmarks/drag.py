"""Seconds per step of ``stylegan drag`` (:func:`stylegan.latent.drag.drag`): one handle, tolerance 0 so that
every run takes exactly ``--steps`` steps, timed after one warm-up step, the models interleaved round by round.

    python benchmarks/drag.py                                   # builtin (32x32) and sg2-256 on the CPU
    python benchmarks/drag.py --models builtin,sg2-256,sg2-1024 --devices cpu,cuda --rounds 3

``builtin`` is the shipped model; ``sg2-<res>`` is StyleGAN2 config-f at that resolution (channel_base 32768,
channel_max 512, 8 mapping layers: the architecture of NVIDIA's published 256x256 LSUN and 1024x1024 FFHQ
models) with random weights: its timings are real, its images are not. A step = one synthesis forward with
gradients, the feature capture and resize, point tracking, the loss and one backward pass into the ws.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import machine

from stylegan.checkpoints import load_generator
from stylegan.latent.drag import drag, feature_layer
from stylegan.latent.sampling import GenerationRequest
from stylegan.networks import Generator, GeneratorConfig, StyleGAN2SynthesisConfig


def build(model: str, device: str) -> Generator:
    if model == "builtin":
        return load_generator("builtin", device=device)
    kind, res = model.split("-")
    if kind != "sg2":
        raise SystemExit(f"unknown model {model!r}: use builtin or sg2-<res>")
    torch.manual_seed(0)
    cfg = GeneratorConfig("stylegan2", img_resolution=int(res), synthesis=StyleGAN2SynthesisConfig(channel_base=32768))
    return Generator(cfg).eval().requires_grad_(False).to(device)


def seconds_per_step(G: Generator, steps: int) -> tuple[float, float]:
    """(wall, CPU time of this process) seconds per step."""
    R = G.img_resolution
    ws = GenerationRequest(G).seed_latents([0]).ws
    run = drag(G, ws, [[R * 3 // 8, R // 2]], [[R * 5 // 8, R // 2]], steps=steps + 1, tolerance=0)
    next(run)                                 # step 0: the first render (and lazy allocations)
    next(run)                                 # warm-up step
    if next(G.parameters()).is_cuda:
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in run:
        pass
    if next(G.parameters()).is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="builtin,sg2-256")
    p.add_argument("--devices", default="cpu")
    p.add_argument("--steps", type=int, default=10, help="Timed steps per run.")
    p.add_argument("--rounds", type=int, default=2, help="Rounds; each round runs every model once.")
    args = p.parse_args()
    print(f"machine: {machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    nets = {(m, d): build(m, d) for m in args.models.split(",") for d in args.devices.split(",")}
    times: dict = {k: [] for k in nets}
    for r in range(args.rounds):
        for key, G in nets.items():
            wall, cpu = seconds_per_step(G, args.steps)
            times[key].append(wall)
            print(f"round {r}: {key[0]} on {key[1]}: {wall:.3f} s/step wall, {cpu:.3f} s/step CPU time of this "
                  f"process (load {os.getloadavg()[0]:.2f})", flush=True)
    for (model, device), t in times.items():
        G = nets[(model, device)]
        print(f"{model} ({G.img_resolution}x{G.img_resolution}, feature {feature_layer(G).name}) on {device}: "
              f"best {min(t):.3f} s/step wall, median {sorted(t)[len(t) // 2]:.3f} over {len(t)} rounds "
              f"of {args.steps} steps")
    print(f"load {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

"""Seconds per frame and peak memory of a 1920x1080 canvas (``G.synthesis(ws, canvas=(1080, 1920))``)
next to the model's own square, for the published StyleGAN2 (config F) and StyleGAN3-T architectures.

    python benchmarks/canvas.py                                   # sg2 and sg3t at 1024, CPU
    python benchmarks/canvas.py --models sg3t --res 1024 --size 1920x1080 --reps 2 --device cuda
    python benchmarks/canvas.py --extensions 64               # the built-in model's constant extensions

Weights are random (speed and memory do not depend on their values). Each measurement runs in its own
child process (so its peak resident memory is its own: weights + activations), the square and the
canvas interleaved rep by rep; the first call of each child is a warm-up and is not timed. Wall time
and the process's CPU time are both printed: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks")]

from inference import machine, published_config, sync

from stylegan.networks import Generator


def child(model: str, res: int, canvas: tuple[int, int] | None, device: str) -> dict:
    """One timed frame after a warm-up, in this process: seconds, peak RSS, output shape."""
    dev = torch.device(device)
    torch.manual_seed(0)
    G = Generator(published_config(model, res)).eval().requires_grad_(False).to(dev)
    ws = G.mapping(torch.randn([1, G.z_dim], device=dev), None, truncation_psi=0.7)
    kw = {} if canvas is None else {"canvas": canvas}
    with torch.inference_mode():
        G.synthesis(ws, noise_mode="const", **kw)
        sync(dev)
        start, cpu_start = time.perf_counter(), time.process_time()
        img = G.synthesis(ws, noise_mode="const", **kw)
        sync(dev)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    rendered = G.synthesis.canvas_size(canvas)
    return dict(seconds=seconds, cpu_seconds=cpu_seconds, peak_bytes=int(peak), shape=list(img.shape), rendered=list(rendered),
                dtype=str(img.dtype))


def extension_report(count: int) -> None:
    """For the built-in model, each StyleGAN2 constant extension on canvases at the model's scale: how far
    the part of the canvas drawn from the original 4x4 constant is from the normal render of the same
    seed (mean absolute difference in uint8 levels: how much of the subject survives the extension),
    next to the difference between the normal renders of different seeds."""
    from stylegan.checkpoints import load_generator
    from stylegan.latent.sampling import GenerationRequest
    from stylegan.networks.options import CONST_EXTENSIONS
    G = load_generator(None, device="cpu")
    S, R = G.synthesis, G.img_resolution
    lat = GenerationRequest(G, 0.7).seed_latents(list(range(count)))
    square = GenerationRequest(G).images(lat.ws).astype(int)
    print(f"built-in model, {count} seeds at psi 0.7; normal renders of different seeds differ by "
          f"{abs(square - square[list(range(1, count)) + [0]]).mean():.1f} levels")
    for h, w in [(R, 2 * R), (R * 3 // 2, 2 * R), (2 * R, 2 * R), (2 * R, 4 * R)]:
        cells, (rh, rw) = S.const_cells((h, w)), S.canvas_size((h, w))
        top = (cells[0] - 4) // 2 * S.canvas_stride - (rh - h) // 2
        left = (cells[1] - 4) // 2 * S.canvas_stride - (rw - w) // 2
        row = []
        for ext in CONST_EXTENSIONS:
            imgs = GenerationRequest(G, canvas=(h, w), extension=ext).images(lat.ws).astype(int)
            row.append(f"{ext} {abs(imgs[:, top:top + R, left:left + R] - square).mean():5.1f}")
        print(f"  canvas {w}x{h}, the original constant's {R}x{R}: " + ", ".join(row) + " levels")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="sg2,sg3t")
    ap.add_argument("--res", type=int, default=1024)
    ap.add_argument("--size", default="1920x1080", help="WxH of the canvas")
    ap.add_argument("--reps", type=int, default=1, help="child processes per model and size")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--extensions", type=int, default=None, metavar="SEEDS",
                    help="instead: compare the StyleGAN1/2 constant extensions on the built-in model")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.extensions:
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
        extension_report(args.extensions)
        return
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        model, which = args.child.split(":")
        print(json.dumps(child(model, args.res, None if which == "square" else (h, w), args.device)))
        return
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"(uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()})")
    print(f"device {args.device}, fp32, batch 1, random weights, published architectures at {args.res}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    for model in args.models.split(","):
        results = {"square": [], "canvas": []}
        for _ in range(args.reps):
            for which in results:
                out = subprocess.run([sys.executable, __file__, "--child", f"{model}:{which}", "--res", str(args.res),
                                      "--size", args.size, "--device", args.device],
                                     capture_output=True, text=True, env=env, check=True)
                results[which].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for which, runs in results.items():
            best = min(r["seconds"] for r in runs)
            peak = max(r["peak_bytes"] for r in runs) / 2**30
            shape = runs[0]["shape"]
            label = f"{shape[3]}x{shape[2]}" + ("" if which == "square" else
                                               f" (rendered {runs[0]['rendered'][1]}x{runs[0]['rendered'][0]})")
            times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
            cpu = min(r["cpu_seconds"] for r in runs)
            print(f"{model}-{args.res} {label:32s} {best:8.2f} s/frame wall (best of {len(runs)}: {times}), "
                  f"{cpu:.2f} s of CPU time  peak {peak:.2f} GiB  {runs[0]['dtype']}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

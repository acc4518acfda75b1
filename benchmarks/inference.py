"""Inference speed: seconds per image for StyleGAN2 / StyleGAN3-T / StyleGAN3-R generators.

Compares our fast paths ("fast") with an official-equivalent baseline ("reference": the same math
executed the way NVIDIA's pure-PyTorch reference path does it — zero-stuffed upsampling, full-rate
filtering before subsampling, grouped convolutions for every batch). Prints s/img, images/s,
achieved GFLOP/s against this machine's measured fp32 matmul peak, and peak memory (CPU: the process's
peak resident set during the timed calls, weights included; CUDA: the allocator's peak).

    python benchmarks/inference.py --models sg2,sg3t,sg3r --res 256 --batch 1,8
    python benchmarks/inference.py --device cuda --res 256,1024 --batch 32 --precision fp16 --compile

Weights are random (speed does not depend on their values); architectures are the published ones.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from stylegan.networks import (Generator, GeneratorConfig, MappingConfig, StyleGAN2SynthesisConfig,
                               StyleGAN3SynthesisConfig)


def published_config(model: str, res: int) -> GeneratorConfig:
    if model == "sg2":  # config F (NVIDIA's published StyleGAN2 FFHQ networks): channel_base 32768
        cbase = 32768
        return GeneratorConfig("stylegan2", img_resolution=res,
                               synthesis=StyleGAN2SynthesisConfig(channel_base=cbase))
    if model == "sg3t":
        return GeneratorConfig("stylegan3", img_resolution=res, mapping=MappingConfig(num_layers=2),
                               synthesis=StyleGAN3SynthesisConfig())
    if model == "sg3r":
        return GeneratorConfig("stylegan3", img_resolution=res, mapping=MappingConfig(num_layers=2),
                               synthesis=StyleGAN3SynthesisConfig(channel_base=65536, channel_max=1024,
                                                                  conv_kernel=1, use_radial_filters=True))
    raise SystemExit(f"unknown model {model}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def matmul_peak(device: torch.device, dtype=torch.float32, n: int = 2048, reps: int = 10) -> float:
    """Measured GFLOP/s of a large square matmul: the machine's practical peak."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def reset_peak_memory(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 to clear_refs resets the process's peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory(device) -> int:
    """Peak bytes since the last reset: CUDA allocator peak, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # since start (no reset possible)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_gflop(G, ws) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G.synthesis(ws[:1], noise_mode="const", fused_modconv=True)
    return counter.get_total_flops() / 1e9


def time_synthesis(G, ws, mode: str, reps: int, device) -> tuple[list[float], int]:
    """Seconds per call (after a warm-up call) and the peak memory they used."""
    times = []
    reset_peak_memory(device)
    with torch.inference_mode():
        G.synthesis(ws, noise_mode="const", impl=mode)  # warm-up
        for _ in range(reps):
            sync(device)
            t = time.perf_counter()
            G.synthesis(ws, noise_mode="const", impl=mode)
            sync(device)
            times.append(time.perf_counter() - t)
    return times, peak_memory(device)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="sg2,sg3t,sg3r")
    p.add_argument("--res", default="256")
    p.add_argument("--batch", default="1,8")
    p.add_argument("--modes", default="fast,reference", help="fast, reference, or both (interleaved)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--compile", action="store_true", help="torch.compile the synthesis network (fast mode)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peak = matmul_peak(device, torch.float16 if args.precision == "fp16" and device.type == "cuda" else torch.float32)
    print(f"machine: {machine()}" + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    print(f"measured matmul peak: {peak:,.0f} GFLOP/s ({args.precision if device.type == 'cuda' else 'fp32'})")
    print(f"{'model':<6} {'res':>5} {'batch':>5} {'mode':<10} {'s/img':>9} {'img/s':>9} {'GFLOP/img':>10} "
          f"{'GFLOP/s':>8} {'%peak':>6} {'peak mem':>10}")
    results = []
    for model in args.models.split(","):
        for res in (int(r) for r in args.res.split(",")):
            torch.manual_seed(0)
            G = Generator(published_config(model, res)).eval().requires_grad_(False).to(device)
            if args.precision != "fp32":
                G.set_half_dtype(torch.float16 if args.precision == "fp16" else torch.bfloat16)
            if args.compile:
                G.synthesis = torch.compile(G.synthesis)
            gflop = count_gflop(G, torch.zeros([1, G.num_ws, G.w_dim], device=device))
            for batch in (int(b) for b in args.batch.split(",")):
                ws = G.mapping(torch.randn([batch, G.z_dim], device=device), None).detach()
                if batch == 1 and "reference" in args.modes and not args.compile:
                    with torch.inference_mode():
                        a = G.synthesis(ws, noise_mode="const")
                        b = G.synthesis(ws, noise_mode="const", impl="reference")
                    print(f"{model:<6} {res:>5}  fast vs reference max |diff| = {(a - b).abs().max().item():.2e}")
                per_mode = {m: [] for m in args.modes.split(",")}
                mems = dict.fromkeys(per_mode, 0)
                for _ in range(args.reps):  # interleave modes so machine drift hits both alike
                    for m in per_mode:
                        times, mem = time_synthesis(G, ws, m, 1, device)
                        per_mode[m] += times
                        mems[m] = max(mems[m], mem)
                for m, times in per_mode.items():
                    s_img = statistics.median(times) / batch
                    mem = mems[m]
                    row = dict(model=model, res=res, batch=batch, mode=m, s_per_img=s_img, img_per_s=1 / s_img,
                               gflop_per_img=gflop, gflops=gflop / s_img, peak_fraction=gflop / s_img / peak,
                               peak_mem_bytes=mem, device=str(device), precision=args.precision,
                               compiled=args.compile)
                    results.append(row)
                    print(f"{model:<6} {res:>5} {batch:>5} {m:<10} {s_img:>9.3f} {1 / s_img:>9.2f} {gflop:>10.1f} "
                          f"{gflop / s_img:>8.1f} {100 * gflop / s_img / peak:>5.0f}% {mem / 2**30:>8.2f}GB",
                          flush=True)
                if len(per_mode) == 2 and "reference" in per_mode:
                    ref, fast = (statistics.median(per_mode[k]) for k in ("reference", "fast"))
                    print(f"{'':<6} {'':>5} {'':>5} speed-up reference/fast: {ref / fast:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "matmul_peak_gflops": peak, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()

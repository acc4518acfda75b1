"""CPU bfloat16 against CPU fp32: seconds per image, speed ratio and PSNR of the bf16 images.

    python benchmarks/cpu_bf16.py --models sg2,sg3t,sg3r --res 256,1024 --batch 1
    python benchmarks/cpu_bf16.py --force --res 64      # a CPU without native bf16: emulated (slow), numerics only

``--bf16`` runs the layers NVIDIA's networks build for half precision (the highest ``num_fp16_res``
resolutions, with ``conv_clamp``) in bfloat16, the rest in fp32, as on GPUs. The modes are
interleaved. The target (issue #15) is >= 1.7x the fp32 fast path at 256 and 1024 with >= 35 dB PSNR.
On a CPU without AVX512-BF16 / AMX-BF16 the script refuses unless ``--force``: bf16 is then emulated.
With ``--verbose-kernels`` oneDNN prints the kernel of every convolution / matmul (its ISA names, e.g.
``brg:avx512_core_amx``), which says which instructions really ran.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch
from inference import machine, published_config

from stylegan.devices import cpu_bf16_kernel, cpu_capability
from stylegan.networks import Generator


def timed(G, ws) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        start = time.perf_counter()
        img = G.synthesis(ws, noise_mode="const")
        return time.perf_counter() - start, img


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="sg2,sg3t,sg3r")
    p.add_argument("--res", default="256,1024")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--force", action="store_true", help="run even without native bf16 (emulated)")
    p.add_argument("--verbose-kernels", action="store_true", help="oneDNN prints the kernel of each primitive")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kernel = cpu_bf16_kernel()
    print(f"machine: {machine()}; load {os.getloadavg()}")
    print(f"native bf16: {kernel or 'none'}; PyTorch CPU level {cpu_capability()}; "
          f"oneDNN {'available' if torch.backends.mkldnn.is_available() else 'absent'}")
    if kernel is None and not args.force:
        sys.exit("this CPU has no native bf16 (AVX512-BF16 / AMX-BF16): bf16 would be emulated; --force to run anyway")
    print(f"{'model':<6} {'res':>5} {'batch':>5} {'fp32 s/img':>11} {'bf16 s/img':>11} {'ratio':>6} {'PSNR dB':>8} "
          f"{'max abs':>8}")
    for model in args.models.split(","):
        for res in (int(r) for r in args.res.split(",")):
            torch.manual_seed(0)
            G = Generator(published_config(model, res)).eval().requires_grad_(False)
            ws = G.mapping(torch.randn([args.batch, G.z_dim]), None, truncation_psi=0.7).detach()
            times = {"fp32": [], "bf16": []}
            images = {}
            for rep in range(args.reps + 1):            # the first round warms up; modes interleaved
                for mode, half in (("fp32", None), ("bf16", torch.bfloat16)):
                    G.set_half_dtype(half)
                    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON if args.verbose_kernels
                                                       and rep == 1 and half else torch.backends.mkldnn.VERBOSE_OFF):
                        seconds, images[mode] = timed(G, ws)
                    if rep:
                        times[mode].append(seconds / args.batch)
            fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
            print(f"{model:<6} {res:>5} {args.batch:>5} {fp32:>11.3f} {bf16:>11.3f} {fp32 / bf16:>5.2f}x "
                  f"{psnr(images['bf16'], images['fp32']):>8.1f} {float((images['bf16'] - images['fp32']).abs().max()):>8.4f}",
                  flush=True)


if __name__ == "__main__":
    main()

"""Projection speed and quality: seconds per step, final loss and PSNR, for W and W+; and inversion of the
built-in model's images: optimisation only, encoder only, encoder + refinement, + pivotal tuning.

The target is an image the model generated itself (a known w, the model's constant noise); the projection
starts from the mean w, exactly as ``stylegan project`` runs (noise maps optimised, no-download loss with
the model's discriminator unless ``--vgg`` is given).

    python benchmarks/projection.py                                  # reference net, CPU (+ CUDA if present)
    python benchmarks/projection.py --models ref,sg2-256 --steps 100 --devices cpu,cuda
    python benchmarks/projection.py --vgg ~/vgg16.pt --json results.json

    python benchmarks/projection.py --only inversion --steps 100 --json inv.json   # the inversion table

The inversion part (``--only inversion``) uses the built-in model and its shipped encoder (``--encoder``: another
file) on two target sets: 8 images the model generated from seeds no training step drew (known w), and the 8 real
emoji under tests/assets/emoji-unseen that neither the model nor the encoder saw. For each set it runs, one after
the other: plain optimisation (``stylegan project`` defaults, W, N steps), the encoder alone, the encoder with
``invert()``'s correction pass, the encoder + N/5 refinement steps (``invert()`` defaults), and pivotal tuning on
top (``--tune-steps 0``: none); it prints seconds and PSNR of each, the PSNR curves of plain optimisation and
refinement (every 5 steps), the first step at which refinement matches the PSNR plain optimisation reaches in N
steps, the step at which optimisation matches the refinement's, and what tuning does to an edit along the first
SeFa direction.

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


def _psnr_curve(G, target, every: int):
    """An on_step callback recording the PSNR of each step's image (before that step's update) every ``every`` steps."""
    from stylegan.latent.projection import psnr
    curve = {}

    def on_step(step, images, _dist):
        if step % every == every - 1:
            curve[step + 1] = float(psnr(to_uint8(images.clamp(-1, 1)), target).mean())
    return curve, on_step


def inversion_sets(G):
    """(name, uint8 targets): held-out generated images and real emoji the model never saw."""
    import numpy as np
    from PIL import Image
    z = torch.from_numpy(np.random.RandomState(2**31 - 1).randn(8, G.z_dim)).float()
    with torch.no_grad():
        generated = to_uint8(G.synthesis(G.mapping(z, None), noise_mode="const"))
    folder = Path(__file__).resolve().parents[1] / "tests" / "assets" / "emoji-unseen"
    emoji = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))])
    return [("generated (held out)", generated), ("real emoji (unseen)", emoji)]


def run_inversion(steps: int, tune_steps: int, encoder: str = "builtin") -> list[dict]:
    """Every inversion mode on both target sets of the built-in model (see the module docstring)."""
    from stylegan.checkpoints import load_network
    from stylegan.checkpoints.encoder import load_encoder
    from stylegan.latent.directions import sefa
    from stylegan.latent.editing import direction_offsets
    from stylegan.latent.inversion import corrected_start, encode, invert
    from stylegan.latent.projection import psnr
    from stylegan.latent.tuning import TuningConfig, edit_drift, tune_generator
    ckpt = load_network(None)
    G, D = ckpt.G_ema, ckpt.D
    E, meta = load_encoder(encoder)
    loss = load_perceptual(None, D=D)
    direction = sefa(G, num=1)
    rows = []
    for name, target in inversion_sets(G):
        row = {"targets": name, "n": len(target), "steps": steps, "encoder_kimg": meta.get("kimg")}
        curve, on_step = _psnr_curve(G, target, 5)
        t = time.perf_counter()
        plain = project(G, target, loss, ProjectionConfig(num_steps=steps), on_step=on_step)
        row["opt"] = {"s": time.perf_counter() - t, "psnr": float(plain.psnr.mean()),
                      "start_psnr": float(plain.initial_psnr.mean()), "curve": curve}
        t = time.perf_counter()
        enc = encode(G, target, E)
        row["encoder"] = {"s": time.perf_counter() - t, "psnr": float(enc.psnr.mean())}
        t = time.perf_counter()
        ws, kept = corrected_start(G, target, E, loss)
        with torch.no_grad():
            drawn = to_uint8(G.synthesis(ws, noise_mode="const"))
        row["encoder+correction"] = {"s": time.perf_counter() - t + row["encoder"]["s"], "kept": kept.tolist(),
                                     "psnr": float(psnr(drawn, target).mean())}
        curve, on_step = _psnr_curve(G, target, 5)
        t = time.perf_counter()
        ref = invert(G, target, E, loss, steps=max(steps // 5, 1), on_step=on_step)
        row["encoder+refine"] = {"s": time.perf_counter() - t, "steps": max(steps // 5, 1),
                                 "psnr": float(ref.psnr.mean()), "curve": curve}
        rows.append(row)
        if not tune_steps:
            _print_inversion(row)
            continue
        t = time.perf_counter()
        tuned = tune_generator(G, target, ref.ws, loss, TuningConfig(steps=tune_steps), noise=ref.noise)
        offset = direction_offsets(direction.vectors[0], G.num_ws, G.w_dim, direction.layers) * 2.0
        row["+pti"] = {"s": time.perf_counter() - t + row["encoder+refine"]["s"], "steps": tune_steps,
                       "psnr": float(tuned.psnr_after.mean()), "psnr_before": float(tuned.psnr_before.mean()),
                       "edit": edit_drift(G, tuned.G, ref.ws, offset), "locality_psnr": _locality_psnr(G, tuned.G)}
        _print_inversion(row)
    return rows


def _locality_psnr(G0, G1) -> float:
    """PSNR between the original and the tuned generator on 16 fresh samples (the rest of latent space)."""
    from stylegan.latent.projection import psnr
    z = z_from_seeds(list(range(1000, 1016)), G0.z_dim, "cpu")
    with torch.no_grad():
        ws = G0.mapping(z, None)
        return float(psnr(to_uint8(G0.synthesis(ws, noise_mode="const")),
                          to_uint8(G1.synthesis(ws, noise_mode="const"))).mean())


def _print_inversion(r: dict) -> None:
    opt, enc, cor, refn, pti = r["opt"], r["encoder"], r["encoder+correction"], r["encoder+refine"], r.get("+pti")
    target = opt["psnr"]
    reached = next((k for k, v in sorted(refn["curve"].items()) if v >= target), None)
    if reached is None and refn["psnr"] >= target:
        reached = refn["steps"]                     # after the last step's update
    print(f"{r['targets']} ({r['n']} targets, mean PSNR dB):")
    print(f"  optimisation only      {r['steps']:4d} steps {opt['s']:7.1f} s  {opt['start_psnr']:.2f} -> {opt['psnr']:.2f}")
    print(f"  encoder only              0 steps {enc['s']:7.3f} s  {enc['psnr']:.2f}")
    print(f"  encoder + correction      0 steps {cor['s']:7.3f} s  {cor['psnr']:.2f}  (kept for "
          f"{sum(cor['kept'])} of {r['n']} targets)")
    match = f"at step {reached}" if reached else f"not within {refn['steps']} steps"
    print(f"  encoder + refinement   {refn['steps']:4d} steps {refn['s']:7.1f} s  {refn['psnr']:.2f}  "
          f"(reaches the {r['steps']}-step optimisation's PSNR {match})")
    if pti:
        print(f"  + pivotal tuning       {pti['steps']:4d} steps {pti['s']:7.1f} s  {pti['psnr_before']:.2f} -> "
              f"{pti['psnr']:.2f}; other samples {pti['locality_psnr']:.1f} dB from the untuned model; SeFa-0 edit "
              f"(strength 2): relative change {pti['edit']['relative_error']:.2f}, outside the edited region "
              f"{pti['edit']['outside_change']:.2f} levels (untuned {pti['edit']['outside_change_original']:.2f}, "
              f"{100 * pti['edit']['outside_fraction']:.0f} % of pixels)")
    equal = next((k for k, v in sorted(opt["curve"].items()) if v >= refn["psnr"]), None)
    print(f"  optimisation reaches the refinement's {refn['psnr']:.2f} dB "
          + (f"at step {equal}: {equal / refn['steps']:.1f}x the refinement's steps" if equal else
             f"not within {r['steps']} steps"))
    print("  curves (step: PSNR): optimisation " + " ".join(f"{k}:{v:.1f}" for k, v in opt["curve"].items()))
    print("                       refinement   " + " ".join(f"{k}:{v:.1f}" for k, v in refn["curve"].items()))


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
    ap.add_argument("--only", choices=["projection", "inversion"], default=None, help="run one part only")
    ap.add_argument("--tune-steps", type=int, default=50, help="inversion: pivotal-tuning steps (0: no tuning)")
    ap.add_argument("--encoder", default="builtin", help="inversion: the encoder file (default: the shipped one)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    if args.only != "projection":
        rows += run_inversion(args.steps, args.tune_steps, args.encoder)
        print(f"machine: {machine(torch.device('cpu'))}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.only == "inversion":
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    seeds = [int(s) for s in args.seeds.split(",")]
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

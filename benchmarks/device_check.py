"""Device check: the one command to run first whenever an accelerator is at hand.

    python benchmarks/device_check.py --device cuda --out device-check     # <= 8 min on one H100/H200
    python benchmarks/device_check.py --device cpu --quick --out /tmp/dc  # tiny sizes: every part, ~2 CPU-minutes

Three sections, each item timed and recorded on its own (a failing item records its error and the
run goes on; a global ``--budget`` skips what no longer fits):

- correctness: the device's outputs against the CPU's fp32 outputs (and NVIDIA's, for the reference
  nets of tests/reference) in fp32 (pass: max abs <= 1e-3), with the published fp16 layers
  (num_fp16_res=4, conv_clamp=256) and in bf16 (max abs and PSNR): the reference nets and
  published-size nets (StyleGAN2 config-f, StyleGAN3-T/R at 1024, seeded random weights);
- commands: every command end to end with ``--device`` as real subprocesses (generate, mix, video,
  project, variations, directions, edit, dataset, train StyleGAN2 / StyleGAN3-T with mixed precision,
  torchrun train, metrics eq, one ``serve`` render over HTTP);
- speed: images/s at 256/512/1024 x batch 1/8/32 x fp32/fp16/bf16 (precisions interleaved), eager vs
  ``--compile`` on a subset, training s/kimg at 256^2 batch 32, peak memory of each.

It writes ``device-check.json`` and ``device-check.md`` under ``--out`` after every item, so a run that
is killed keeps what it measured. Weights of the published-size nets are random (speed and agreement
between devices do not depend on their values); the architectures are the published ones.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(Path(__file__).resolve().parent)]

import numpy as np
import torch
from inference import machine, peak_memory, published_config, reset_peak_memory, sync
from training import _value, make_images

SECTIONS = ("correctness", "commands", "speed")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
FP32_TOLERANCE = 1e-3
TINY_TRAIN = ["--cbase", "256", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map-depth", "2", "--gamma", "0.1"]


class Check:
    """The run: device, sizes, time budget, and the report it writes after every item."""

    def __init__(self, device: torch.device, out: Path, quick: bool, budget_s: float):
        self.device, self.out, self.quick = device, out, quick
        self.deadline = time.monotonic() + budget_s
        self.work = Path(tempfile.mkdtemp(prefix="device-check-"))
        self.report = {"machine": describe_machine(device), "load_before": os.getloadavg(), "device": str(device),
                       "quick": quick, "budget_s": budget_s, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                       "sections": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def section(self, name: str) -> dict:
        return self.report["sections"].setdefault(name, {"items": []})

    def item(self, section: str, name: str, fn: Callable[[], dict], need_s: float = 0.0) -> dict:
        """Run ``fn`` (which returns the item's fields, ``status`` defaulting to pass) and record it;
        skip it when the budget has less than ``need_s`` left; record any exception as an error."""
        row: dict = {"name": name}
        if self.left() < need_s:
            row.update(status="skipped", reason=f"time budget: {max(self.left(), 0):.0f} s left, needs ~{need_s:.0f} s")
        else:
            start = time.perf_counter()
            try:
                row.update(fn())
                row.setdefault("status", "pass")
            except Exception as exc:  # noqa: BLE001 - recorded; one failing part must not lose the rest
                row.update(status="error", error=f"{type(exc).__name__}: {exc}"[:2000],
                           traceback=traceback.format_exc(limit=6)[-3000:])
            row["seconds"] = round(time.perf_counter() - start, 3)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.section(section)["items"].append(row)
        print(f"[{section}] {name}: {row['status']} ({row.get('seconds', 0):.1f} s)"
              + (f" {row.get('error') or row.get('reason')}" if row["status"] not in ("pass", "measured") else ""),
              flush=True)
        self.save()
        return row

    def save(self) -> None:
        self.report["load_after"] = os.getloadavg()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "device-check.json").write_text(json.dumps(self.report, indent=1, default=str))
        (self.out / "device-check.md").write_text(markdown(self.report))


def describe_machine(device: torch.device) -> str:
    text = f"{machine()}, {platform.node()}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text += (f", {props.name} ({props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} visible), "
                 f"CUDA {torch.version.cuda}")
    return text


def compare(out: torch.Tensor, ref: torch.Tensor) -> dict:
    """Max abs difference and PSNR of images in [-1, 1] (peak-to-peak 2)."""
    diff = (out.double() - ref.double())
    mse = float(diff.square().mean())
    return {"max_abs": float(diff.abs().max()), "psnr_db": math.inf if mse == 0 else 10 * math.log10(4 / mse),
            "finite": bool(torch.isfinite(out).all())}


def synthesize(G, ws: torch.Tensor, device: torch.device, half: torch.dtype | None) -> torch.Tensor:
    net = copy.deepcopy(G).to(device).eval().set_half_dtype(half)
    with torch.inference_mode():
        img = net.synthesis(ws.to(device), noise_mode="const")
    return img.float().cpu()


def check_net(ck: Check, label: str, G, ws: torch.Tensor, nvidia: torch.Tensor | None) -> None:
    """One item per precision: the device's images against the CPU's fp32 images (and NVIDIA's)."""
    cpu: dict = {}

    def reference() -> torch.Tensor:
        if "img" not in cpu:
            cpu["img"] = synthesize(G, ws, torch.device("cpu"), None)
        return cpu["img"]

    for precision, half in PRECISIONS.items():
        def run(precision=precision, half=half) -> dict:
            if precision not in precisions(ck.device):
                return {"status": "skipped", "reason": no_half_reason(ck.device)}
            img = synthesize(G, ws, ck.device, half)
            row = compare(img, reference())
            if precision == "fp32":
                if nvidia is not None:
                    row["max_abs_vs_nvidia"] = compare(img, nvidia)["max_abs"]
                worst = max(row["max_abs"], row.get("max_abs_vs_nvidia", 0.0))
                row["status"] = "pass" if worst <= FP32_TOLERANCE else "fail"
            else:
                row["status"] = "measured" if row["finite"] else "fail"
                if ck.device.type != "cuda" and half is not torch.bfloat16:
                    row["note"] = "fp16 layers run on CUDA only: this ran fp32"
            return row
        ck.item("correctness", f"{label} {precision}", run, need_s=5)


def shrink(cfg, quick: bool):
    """The published config, or (``--quick``) the same architecture at 32^2 with few channels."""
    if not quick:
        return cfg
    syn = dataclasses.replace(cfg.synthesis, channel_base=512, channel_max=32)
    if hasattr(cfg.synthesis, "num_layers"):
        syn = dataclasses.replace(syn, num_layers=6, margin_size=4)
    return cfg.replace(img_resolution=32, z_dim=32, w_dim=32, synthesis=syn)


def random_generator(model: str, res: int, quick: bool):
    from stylegan.networks import Generator
    torch.manual_seed(0)
    G = Generator(shrink(published_config(model, res), quick)).eval().requires_grad_(False)
    with torch.no_grad():     # NVIDIA initialises noise strengths to 0; non-zero ones test the noise path too
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    return G


def correctness(ck: Check) -> None:
    from support.models import reference_checkpoint, reference_npz
    for name in ("sg2", "sg3t", "sg3r"):
        d = np.load(reference_npz(name))
        G = reference_checkpoint(name).G_ema
        n = 1 if ck.quick else len(d["ref/ws_psi07"])
        ws, nvidia = torch.from_numpy(d["ref/ws_psi07"][:n]), torch.from_numpy(d["ref/img_psi07_const"][:n])
        check_net(ck, f"reference {name} 64", G, ws, nvidia)
    res = 32 if ck.quick else 1024
    for model in ("sg2", "sg3t", "sg3r"):
        G = random_generator(model, res, ck.quick)
        z = torch.randn([1 if ck.quick else 2, G.z_dim], generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ws = G.mapping(z, None, truncation_psi=0.7)
        check_net(ck, f"published {model} {res}", G, ws, None)


def cli_env(ck: Check) -> dict:
    """The commands' environment: this checkout's package (``main`` puts it on PYTHONPATH), a private cache."""
    return dict(os.environ, STYLEGAN_QUIET="1", PYTHONUNBUFFERED="1", STYLEGAN_CACHE=str(ck.work / "cache"))


def stylegan(*args) -> list[str]:
    return [sys.executable, "-m", "stylegan.cli.main", "-q", *(str(a) for a in args)]


def run_command(ck: Check, argv: list[str], check: Callable[[], dict] | None = None, limit_s: float = 300) -> dict:
    """Run one command as a subprocess; pass when it exits 0 and ``check`` (its outputs) agrees."""
    timeout = max(1.0, min(limit_s, ck.left()))
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=cli_env(ck), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "fail", "error": f"timed out after {timeout:.0f} s", "command": " ".join(argv[2:])}
    row = {"command": " ".join(argv[2:]), "rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 2)}
    if proc.returncode != 0:
        return {**row, "status": "fail", "error": (proc.stderr or proc.stdout)[-1500:]}
    return {**row, **(check() if check else {})}


def expect_files(*paths: Path) -> Callable[[], dict]:
    def check() -> dict:
        missing = [str(p) for p in paths if not p.exists() or p.stat().st_size == 0]
        return {"status": "fail", "error": f"missing outputs: {missing}"} if missing else {}
    return check


def expect_glob(folder: Path, pattern: str) -> Callable[[], dict]:
    def check() -> dict:
        found = sorted(folder.rglob(pattern))
        return {"files": len(found)} if found else {"status": "fail", "error": f"no {pattern} under {folder}"}
    return check


def train_check(run_root: Path) -> Callable[[], dict]:
    """The run folder has a snapshot and stats.jsonl; reports its s/kimg and peak memory."""
    def check() -> dict:
        runs = sorted(run_root.iterdir()) if run_root.exists() else []
        if not runs or not list(runs[-1].glob("network-snapshot-*")):
            return {"status": "fail", "error": f"no snapshot under {run_root}"}
        stats = [json.loads(line) for line in (runs[-1] / "stats.jsonl").open()]
        per_kimg = [v for s in stats[1:] if (v := _value(s, "Timing/sec_per_kimg")) > 0]
        return {"ticks": len(stats), "sec_per_kimg": statistics.median(per_kimg) if per_kimg else None,
                "peak_gpu_mem_gb": max(_value(s, "Resources/peak_gpu_mem_gb") for s in stats),
                "peak_cpu_mem_gb": max(_value(s, "Resources/cpu_mem_gb") for s in stats)}
    return check


def make_dataset(ck: Check, res: int, count: int) -> Path:
    dest = ck.work / f"data{res}.zip"
    if not dest.exists():
        make_images(ck.work / f"images{res}", count, size=res)
        subprocess.run(stylegan("dataset", "--source", ck.work / f"images{res}", "--dest", dest), env=cli_env(ck),
                       check=True, capture_output=True, timeout=300)
    return dest


def train_args(ck: Check, cfg: str, data: Path, outdir: Path, kimg: float, batch: int, sizes: list[str]) -> list:
    if ck.quick and cfg != "stylegan2":      # StyleGAN3's filters need a few more channels than TINY_TRAIN's
        sizes = [*sizes, "--cbase", "512"]
    return ["train", "--data", data, "--outdir", outdir, "--cfg", cfg, "--kimg", kimg, "--tick", kimg / 4,
            "--snap", 1000, "--batch", batch, "--metrics", "none", "--workers", 2, "--grid", "2x2",
            "--device", ck.device, *sizes]


def save_models(ck: Check) -> dict[str, Path]:
    from support.models import reference_checkpoint

    from stylegan.checkpoints import save_network
    paths = {}
    for name in ("sg2", "sg3t"):
        paths[name] = ck.work / f"reference-{name}.safetensors"
        save_network(reference_checkpoint(name), paths[name])
    return paths


def commands(ck: Check) -> None:
    """Every command end to end as a subprocess on ``--device``."""
    w, dev, q = ck.work / "cmd", str(ck.device), ck.quick
    models = save_models(ck)
    net = ["--network", models["sg2"], "--device", dev]
    steps = 2 if q else 20
    runs = [
        ("generate", stylegan("generate", *net, "--seeds", "0-3", "--outdir", w / "gen"),
         expect_files(*(w / "gen" / f"seed{s:04d}.png" for s in range(4))), 30),
        ("mix", stylegan("mix", *net, "--rows", "0,1", "--cols", "2,3", "--outdir", w / "mix"),
         expect_files(w / "mix" / "grid.png"), 30),
        ("video", stylegan("video", *net, "--seeds", "0-2", "--frames", 4 if q else 60, "-o", w / "walk.mp4"),
         expect_files(w / "walk.mp4"), 30),
        (f"project {steps} steps", stylegan("project", *net, "--target", w / "gen" / "seed0000.png", "--steps", steps,
                                            "--outdir", w / "proj"),
         expect_files(w / "proj" / "projected_w.npz", w / "proj" / "proj.png"), 40),
        ("variations", stylegan("variations", *net, "--projected-w", w / "proj" / "projected_w.npz", "--seeds", "0-1",
                                "--trunc", "1,0", "--noise-samples", 1, "--outdir", w / "var"),
         expect_files(w / "var" / "styles.png"), 30),
        ("directions sefa", stylegan("directions", *net, "--method", "sefa", "--num", 3, "--out", w / "sefa.npz"),
         expect_files(w / "sefa.npz"), 20),
        ("edit", stylegan("edit", *net, "--seeds", "0", "--direction", w / "sefa.npz", "--strength", "-1,0,1",
                          "--outdir", w / "edit"), expect_glob(w / "edit", "*.png"), 30),
        ("metrics eqt_int", stylegan("metrics", "--network", models["sg3t"], "--device", dev, "--metrics", "eqt50k_int",
                                     "--num-gen", 8 if q else 1000, "--batch", 4 if q else 32), None, 120),
    ]
    for name, argv, check, need in runs:
        ck.item("commands", name, lambda argv=argv, check=check: run_command(ck, argv, check), need_s=need)
    train_commands(ck, w)
    ck.item("commands", "serve render", lambda: serve_render(ck, models["sg2"]), need_s=30)


def train_commands(ck: Check, w: Path) -> None:
    """Train StyleGAN2 and StyleGAN3-T (mixed precision on GPUs: the default) and one torchrun run."""
    res, kimg, batch = (16, 0.008, 4) if ck.quick else (64, 2, 32)
    sizes = TINY_TRAIN if ck.quick else ["--cbase", "16384", "--cmax", "256"]
    data = {}

    def dataset() -> dict:
        data["path"] = make_dataset(ck, res, 64 if ck.quick else 512)
        return {"dataset": str(data["path"]), "resolution": res}
    ck.item("commands", f"dataset {res}x{res}", dataset, need_s=10)
    if "path" not in data:
        return
    for cfg in ("stylegan2", "stylegan3-t"):
        out = w / f"train-{cfg}"
        argv = stylegan(*train_args(ck, cfg, data["path"], out, kimg, batch, sizes))
        ck.item("commands", f"train {cfg} {res}x{res} {kimg} kimg", lambda argv=argv, out=out:
                run_command(ck, argv, train_check(out), limit_s=240), need_s=60)
    nproc = max(1, min(2, torch.cuda.device_count())) if ck.device.type == "cuda" else 1
    out = w / "train-torchrun"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "stylegan.cli.main", "-q",
            *map(str, train_args(ck, "stylegan2", data["path"], out, kimg / 4 if not ck.quick else kimg, batch, sizes))]
    ck.item("commands", f"torchrun --nproc_per_node {nproc} train",
            lambda: {**run_command(ck, argv, train_check(out), limit_s=180), "processes": nproc}, need_s=40)


def serve_render(ck: Check, model: Path) -> dict:
    """Start ``stylegan serve`` (tests/support/web.py's server process), render one image over HTTP, stop it."""
    import httpx
    from support.web import serve_process
    with serve_process("--network", model, "--device", ck.device) as (base, _):
        start = time.perf_counter()
        r = httpx.post(f"{base}/api/render", json={"latent": {"kind": "seed", "seed": 3}, "psi": 0.7}, timeout=60)
        ok = r.status_code == 200 and r.content.startswith(b"\x89PNG")
        return {"status": "pass" if ok else "fail", "http_status": r.status_code, "bytes": len(r.content),
                "server_render_ms": r.headers.get("X-Render-Ms"), "request_s": round(time.perf_counter() - start, 3)}


def time_synthesis(G, ws: torch.Tensor, device: torch.device) -> tuple[float, int]:
    """Seconds of one synthesis call (synchronised) and the peak memory it used."""
    reset_peak_memory(device)
    with torch.inference_mode():
        sync(device)
        start = time.perf_counter()
        G.synthesis(ws, noise_mode="const")
        sync(device)
    return time.perf_counter() - start, peak_memory(device)


def interleaved(variants: dict[str, Callable[[], tuple[float, int]]], batch: int, reps: int) -> dict:
    """Time every variant once to warm up, then ``reps`` rounds of each in turn (drift hits all alike)."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    mems = dict.fromkeys(variants, 0)
    for fn in variants.values():
        fn()
    for _ in range(reps):
        for key, fn in variants.items():
            seconds, mem = fn()
            times[key].append(seconds)
            mems[key] = max(mems[key], mem)
    return {"img_per_s": {k: batch / statistics.median(v) for k, v in times.items()},
            "peak_mem_gb": {k: m / 2**30 for k, m in mems.items()}, "reps": reps}


def precisions(device: torch.device) -> dict[str, torch.dtype | None]:
    """The precisions worth timing on ``device``: bf16 where it is native (GPUs that have it; CPUs with
    AVX512-BF16 / AMX-BF16, where bf16 runs; elsewhere it would be emulated), fp16 (fp32 off CUDA)."""
    from stylegan.devices import cpu_bf16_kernel
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_bf16_kernel()
    return {k: v for k, v in PRECISIONS.items() if k != "bf16" or native}


def no_half_reason(device: torch.device) -> str:
    return "this GPU has no bfloat16" if device.type == "cuda" else "no native bf16 on this device (emulated: not run)"


def inference_speed(ck: Check) -> None:
    """images/s per model, resolution and batch, the precisions interleaved."""
    sizes, batches, reps = ((32,), (1, 2), 2) if ck.quick else ((256, 512, 1024), (1, 8, 32), 5)
    for model in ("sg2", "sg3t", "sg3r"):
        for res in sizes:
            nets = {}
            for batch in batches:
                def run(model=model, res=res, batch=batch, nets=nets) -> dict:
                    if "G" not in nets:
                        nets["G"] = random_generator(model, res, ck.quick).to(ck.device)
                    G = nets["G"]
                    ws = G.mapping(torch.randn([batch, G.z_dim], device=ck.device), None).detach()

                    def variant(half):
                        return lambda: time_synthesis(G.set_half_dtype(half), ws, ck.device)
                    row = interleaved({k: variant(h) for k, h in precisions(ck.device).items()}, batch, reps)
                    G.set_half_dtype(None)
                    return {"status": "measured", "model": model, "res": res, "batch": batch, **row}
                ck.item("speed", f"inference {model} {res} batch {batch}", run, need_s=4 + res * batch / 1024)
            nets.clear()


def compile_speed(ck: Check) -> None:
    """Eager against ``torch.compile`` (quick: the 'eager' backend, which traces but generates no code)."""
    cases = [("sg2", 32, 2, "fp32")] if ck.quick else [("sg2", 1024, 32, "fp16"), ("sg3t", 256, 32, "fp16")]
    options = {"backend": "eager"} if ck.quick else {}
    for model, res, batch, precision in cases:
        def run(model=model, res=res, batch=batch, precision=precision) -> dict:
            half = precisions(ck.device)[precision]
            eager = random_generator(model, res, ck.quick).to(ck.device).set_half_dtype(half)
            compiled = copy.deepcopy(eager).compile_synthesis(**options)
            ws = eager.mapping(torch.randn([batch, eager.z_dim], device=ck.device), None).detach()
            first, _ = time_synthesis(compiled, ws, ck.device)
            row = interleaved({"eager": lambda: time_synthesis(eager, ws, ck.device),
                               "compiled": lambda: time_synthesis(compiled, ws, ck.device)}, batch, 2 if ck.quick else 5)
            out = {}
            for G, key in ((eager, "eager"), (compiled, "compiled")):
                with torch.inference_mode():
                    out[key] = G.synthesis(ws, noise_mode="const").float().cpu()
            return {"status": "measured", "model": model, "res": res, "batch": batch, "precision": precision,
                    "backend": options.get("backend", "inductor"), "first_call_s": first,
                    "max_abs_compiled_vs_eager": compare(out["compiled"], out["eager"])["max_abs"], **row}
        ck.item("speed", f"compile {model} {res} batch {batch} {precision}", run, need_s=30 if ck.quick else 150)


def training_speed(ck: Check) -> None:
    """s/kimg at 256^2, batch 32, published sizes (StyleGAN3-R with NVIDIA's cbase 65536, cmax 1024)."""
    res, kimg, batch = (16, 0.008, 4) if ck.quick else (256, 0.8, 32)
    data = {}
    ck.item("speed", f"dataset {res}x{res}", lambda: {"path": str(data.setdefault("p", make_dataset(ck, res, 256)))},
            need_s=10)
    if "p" not in data:
        return
    configs = [("stylegan2", []), ("stylegan3-t", []), ("stylegan3-r", ["--cbase", "65536", "--cmax", "1024"])]
    for cfg, sizes in configs[-1:] if ck.quick else configs:     # quick: the code path once
        out = ck.work / f"speed-{cfg}"
        argv = stylegan(*train_args(ck, cfg, data["p"], out, kimg, batch, TINY_TRAIN if ck.quick else sizes))

        def run(argv=argv, out=out, cfg=cfg) -> dict:
            row = run_command(ck, argv, train_check(out), limit_s=240)
            return {**row, "cfg": cfg, "res": res, "batch": batch, "status": row.get("status", "measured")}
        ck.item("speed", f"train {cfg} {res}x{res} batch {batch}", run, need_s=90)


def speed(ck: Check) -> None:
    inference_speed(ck)
    training_speed(ck)
    compile_speed(ck)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)


SUMMARY_KEYS = ("max_abs", "max_abs_vs_nvidia", "psnr_db", "img_per_s", "peak_mem_gb", "sec_per_kimg",
                "peak_gpu_mem_gb", "first_call_s", "max_abs_compiled_vs_eager", "server_render_ms", "note",
                "reason", "error")


def markdown(report: dict) -> str:
    """The report as Markdown: one table per section, and the inference speed as a grid."""
    lines = [f"# Device check: {report['device']}{' (quick)' if report['quick'] else ''}", "",
             f"- machine: {report['machine']}", f"- started: {report['started']}",
             f"- load average before/after: {_short(report['load_before'])} / {_short(report.get('load_after'))}", ""]
    for name, section in report["sections"].items():
        items = section["items"]
        counts = {s: sum(i["status"] == s for i in items) for s in ("pass", "measured", "fail", "error", "skipped")}
        lines += [f"## {name}", "", ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing ran", ""]
        if section.get("error"):
            lines += [f"section error: `{section['error']}`", ""]
        lines += ["| item | status | s | result |", "| --- | --- | ---: | --- |"]
        for i in items:
            result = "; ".join(f"{k} {_short(i[k])}" for k in SUMMARY_KEYS if k in i and i[k] is not None)
            lines.append(f"| {i['name']} | {i['status']} | {i.get('seconds', 0):.1f} | "
                         f"{result.replace('|', '/').replace(chr(10), ' ')[:300]} |")
        lines.append("")
        grid = [i for i in items if "img_per_s" in i and "model" in i and "precision" not in i]
        if grid:
            precs = sorted({p for i in grid for p in i["img_per_s"]}, key=list(PRECISIONS).index)
            lines += ["### images/s (peak memory GiB)", "",
                      "| model | res | batch | " + " | ".join(precs) + " |", "| --- | ---: | ---: |" + " ---: |" * len(precs)]
            for i in grid:
                cells = [f"{i['img_per_s'][p]:.1f} ({i['peak_mem_gb'][p]:.2f})" if p in i["img_per_s"] else "-"
                         for p in precs]
                lines.append(f"| {i['model']} | {i['res']} | {i['batch']} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def run_sections(ck: Check, sections: dict[str, Callable[[Check], None]]) -> None:
    """Each section in turn; an exception outside any item is recorded on the section, and the next runs."""
    for name, fn in sections.items():
        ck.section(name)
        if ck.left() <= 0:
            ck.section(name)["skipped"] = "time budget spent"
            continue
        try:
            fn(ck)
        except Exception as exc:  # noqa: BLE001 - recorded; the other sections still run
            ck.section(name)["error"] = f"{type(exc).__name__}: {exc}"
            ck.section(name)["traceback"] = traceback.format_exc(limit=8)
        ck.save()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu or mps")
    p.add_argument("--out", type=Path, required=True, help="folder for device-check.json and device-check.md")
    p.add_argument("--quick", action="store_true", help="tiny sizes: every code path (about 2 CPU-minutes, mostly starting the commands)")
    p.add_argument("--budget", type=float, default=450, help="seconds; items that no longer fit are skipped")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = p.parse_args(argv)
    from stylegan.devices import pick_device
    device = pick_device(args.device)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ck = Check(device, args.out, args.quick, args.budget)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        p.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    print(f"machine: {ck.report['machine']}\nload: {os.getloadavg()}", flush=True)
    try:
        run_sections(ck, {name: globals()[name] for name in chosen})
    finally:
        shutil.rmtree(ck.work, ignore_errors=True)
    statuses = [i["status"] for s in ck.report["sections"].values() for i in s["items"]]
    bad = sum(s in ("fail", "error") for s in statuses) + sum("error" in s for s in ck.report["sections"].values())
    print(f"wrote {args.out / 'device-check.json'} and device-check.md: {len(statuses)} items, {bad} failed", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

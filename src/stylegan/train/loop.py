"""The training loop: phases, gradient accumulation, EMA, ADA, ticks, snapshots, exact resume.

Determinism by construction: every random number of a step (latents, labels, style mixing, noise
inputs, augmentations, path-length noise) comes from the torch RNG re-seeded from
``(seed, step, phase, micro-batch)``, and the real images from :func:`sample_indices` at the
current image count. Resuming therefore needs only the counters, and a global batch gives the
same result whether its micro-batches run in one process (accumulation) or in many (torchrun).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import CheckpointError, DatasetError, UserInputError
from ..progress import progress
from ..render.images import make_grid, save_image, to_uint8
from . import distributed
from .augment import AugmentPipe
from .checkpoint import (
    find_latest_state,
    is_training_state,
    list_states,
    load_training_state,
    prune_states,
    restore_rng,
    save_training_state,
    state_name,
)
from .config import TrainingOptions, build_networks, discriminator_config, generator_config
from ..data.dataset import ImageDataset, sample_indices
from .loss import StyleGAN2Loss
from .stats import Stats

#: Options that may change when a run is resumed exactly; all others come from the training state.
RESUME_OVERRIDES = {"kimg", "tick", "snap"}
#: Options that describe the network architecture (given explicitly, they override a transfer source's).
ARCH_OPTIONS = {"cbase", "cmax", "map_depth", "z_dim", "w_dim", "cfg"}


@dataclass
class Phase:
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


@dataclass
class RunResult:
    run_dir: Path | None
    cur_nimg: int
    state_path: Path | None
    stopped_early: bool = False
    snapshots: list[Path] = field(default_factory=list)


class _Log:
    """Print to stdout (around the progress bar) and append to ``log.txt`` (main process only)."""

    def __init__(self, path: Path | None, enabled: bool):
        self.path = path
        self.enabled = enabled

    def __call__(self, line: str = "") -> None:
        if not self.enabled:
            return
        tqdm.write(line, file=sys.stdout)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def _derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] & ((1 << 63) - 1))


def _grid_size(resolution: int) -> tuple[int, int]:
    return int(np.clip(7680 // resolution, 7, 32)), int(np.clip(4320 // resolution, 4, 32))


def _grid_indices(dataset: ImageDataset, gw: int, gh: int, seed: int) -> np.ndarray:
    """Real images for the grids: random ones, or one class per row for conditional datasets."""
    rnd = np.random.default_rng(seed)
    n = gw * gh
    if not dataset.has_labels:
        return np.resize(rnd.permutation(len(dataset)), n)
    labels = dataset.get_labels(np.arange(dataset.num_raw_images))
    keys = [tuple(row) for row in labels]
    groups: dict[tuple, list[int]] = {}
    for i in rnd.permutation(dataset.num_raw_images):
        groups.setdefault(keys[i], []).append(int(i))
    order = sorted(groups, reverse=True)  # one-hot rows: class 0 first
    rows = []
    for y in range(gh):
        members = groups[order[y % len(order)]]
        rows.append(np.resize(np.asarray(members), gw))
    return np.concatenate(rows)


def _run_dir_name(outdir: Path, opts: TrainingOptions, dataset_name: str, world: int, desc: str | None) -> Path:
    prev = [int(m.group(1)) for p in (outdir.iterdir() if outdir.is_dir() else [])
            if p.is_dir() and (m := re.match(r"^(\d+)-", p.name))]
    run_id = max(prev, default=-1) + 1
    name = f"{run_id:05d}-{opts.cfg}-{dataset_name}-gpus{world}-batch{opts.batch}-gamma{opts.gamma:g}"
    if desc:
        name += f"-{desc}"
    return outdir / name


def _memory() -> tuple[float, float]:
    """(CPU resident set, peak CUDA allocation) in GiB."""
    cpu = 0.0
    try:
        with open("/proc/self/statm") as f:
            cpu = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() and torch.cuda.is_initialized() else 0
    return cpu, gpu


def _fmt_time(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h"


def copy_by_name(src: torch.nn.Module | None, dst: torch.nn.Module) -> tuple[int, list[str]]:
    """Copy parameters and buffers with equal names and shapes from ``src`` into ``dst``.

    Returns (number copied, names of ``dst`` left at their fresh values) -- NVIDIA's transfer rule.
    """
    if src is None:
        return 0, sorted(dst.state_dict())
    src_tensors = {**dict(src.named_parameters()), **dict(src.named_buffers())}
    copied, kept = 0, []
    with torch.no_grad():
        for name, t in list(dst.named_parameters()) + list(dst.named_buffers()):
            s = src_tensors.get(name)
            if s is not None and tuple(s.shape) == tuple(t.shape):
                t.copy_(s.to(t.device, t.dtype))
                copied += 1
            else:
                kept.append(name)
    return copied, kept


def resolve_resume(resume: str | None, outdir: Path) -> tuple[str, Path | None]:
    """-> ('fresh', None) | ('state', training-state file) | ('network', model file)."""
    if resume is None or resume in ("", "noresume"):
        return "fresh", None
    if resume == "latest":
        found = find_latest_state(outdir)
        return ("state", found) if found is not None else ("fresh", None)
    path = Path(resume)
    if path.is_dir():
        states = [p for p in list_states(path)]
        if states:
            latest = find_latest_state(path)
            if latest is None:
                raise CheckpointError(f"{path}: no readable training state")
            return "state", latest
    if path.is_file() and is_training_state(path):
        return "state", path
    return "network", None


class _RealLoader:
    """The real images of one step for this process's micro-batches, decoded one step ahead in a thread.

    Which images a step uses is known in advance (:func:`sample_indices`), so datasets too large to keep
    in memory are read while the previous step computes; in-memory datasets are simply indexed.
    """

    def __init__(self, dataset: ImageDataset, seed: int, batch_gpu: int, micro_batches: list[int], device):
        from concurrent.futures import ThreadPoolExecutor
        self.dataset, self.seed, self.batch_gpu = dataset, seed, batch_gpu
        self.micro, self.device = micro_batches, device
        self.pool = None if dataset.cached else ThreadPoolExecutor(1)
        self.pending: dict[int, object] = {}

    def _read(self, nimg: int):
        out = []
        for k in self.micro:
            idx = sample_indices(self.seed, nimg + k * self.batch_gpu, self.batch_gpu, len(self.dataset))
            out.append((self.dataset.get_images(idx), self.dataset.get_labels(idx)))
        return out

    def prefetch(self, nimg: int) -> None:
        if self.pool is not None and nimg not in self.pending:
            self.pending[nimg] = self.pool.submit(self._read, nimg)

    def get(self, nimg: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        future = self.pending.pop(nimg, None)
        self.pending.clear()
        batches = future.result() if future is not None else self._read(nimg)
        return [(torch.from_numpy(imgs).to(self.device).to(torch.float32) / 127.5 - 1,
                 torch.from_numpy(labels).to(self.device)) for imgs, labels in batches]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _RunLock:
    """An exclusive lock on a run folder, so two processes never train the same run at once.

    ``flock`` locks vanish with the process, even after ``kill -9``, so a crash never leaves a stale lock.
    """

    def __init__(self, run_dir: Path):
        self.file = None
        try:
            import fcntl
        except ImportError:            # not on POSIX: no locking
            return
        self.file = open(run_dir / ".lock", "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            self.file.close()
            self.file = None
            raise UserInputError(f"{run_dir} is being trained by {owner}; stop it first (or use another --outdir)")
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}\n")
        self.file.flush()

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to save a training state and exit; a second SIGINT aborts."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False


def _train(
    data: str | os.PathLike | None,
    outdir: str | os.PathLike,
    opts: TrainingOptions,
    resume: str | None = None,
    explicit: set[str] | None = None,
    metrics: tuple[str, ...] = (),
    detectors: dict | None = None,
    device: str = "auto",
    desc: str | None = None,
    workers: int = 2,
    keep_states: int = 3,
    grid: tuple[int, int] | None = None,
    quiet: bool = False,
    _held_locks: list | None = None,
) -> RunResult:
    """The training loop. Returns where it ended."""
    explicit = set(explicit or ())
    outdir = Path(outdir)
    info, dev = distributed.init(device)
    main = info.is_main
    # Metric names and detector files are checked (and detectors loaded) before anything is read or written.
    metric_fn = _metrics_hook(metrics, detectors, dev) if metrics else None
    mode, state_path = resolve_resume(resume, outdir)
    notices = []
    if resume == "latest" and mode == "fresh":
        notices.append(f"no training state found under {outdir}; starting a new run")

    state = None
    transfer_src = None
    if mode == "state":
        state = load_training_state(state_path)
        stored = TrainingOptions.from_dict(state.options)
        conflicts = [k for k in sorted(explicit - RESUME_OVERRIDES)
                     if k in stored.to_dict() and getattr(opts, k) != getattr(stored, k)]
        if conflicts:
            desc_ = ", ".join(f"--{k.replace('_', '-')} {getattr(opts, k)} (run: {getattr(stored, k)})"
                              for k in conflicts)
            raise UserInputError(f"resuming {state_path.parent.name} exactly, but these options differ from "
                                 f"the run: {desc_}. Drop them to continue the run, or start a new run "
                                 f"with --resume {state_path} for transfer learning")
        for k in RESUME_OVERRIDES & explicit:
            setattr(stored, k, getattr(opts, k))
        opts = stored
        if data is None:
            data = state.header["dataset"]["path"]
    elif mode == "network":
        from ..checkpoints import load_network
        transfer_src = load_network(resume)
        opts.resume_from = str(resume)
        src_G = transfer_src.G if transfer_src.G is not None else transfer_src.G_ema
        if src_G is None:
            raise CheckpointError(f"{resume} contains no generator to start from")
        if "cfg" not in explicit:
            opts.cfg = src_G.config.variant if src_G.config.variant in ("stylegan2", "stylegan3-t",
                                                                         "stylegan3-r") else "stylegan2"
        if "ada_kimg" not in explicit:
            opts.ada_kimg = 100
        if "ema_rampup" not in explicit:
            opts.ema_rampup = None
        if "blur_sigma" not in explicit:
            opts.blur_sigma = 0.0
    opts.validate()
    if data is None:
        raise UserInputError("--data is required (a dataset zip or folder made by `stylegan dataset`)")

    dataset = ImageDataset(data, use_labels=opts.cond, mirror=opts.mirror, workers=workers)
    res, channels = dataset.resolution, dataset.num_channels
    c_dim = dataset.label_dim if opts.cond else 0
    opts = opts.resolved(res)
    world = info.world_size
    batch_gpu = opts.batch_gpu or opts.batch // world
    if batch_gpu < 1 or opts.batch % (batch_gpu * world):
        raise UserInputError(f"--batch {opts.batch} must be a multiple of (processes {world}) x "
                             f"(--batch-gpu {batch_gpu})")
    rounds = opts.batch // (batch_gpu * world)
    num_micro = rounds * world
    group = min(opts.mbstd_group, batch_gpu)
    if batch_gpu % group:
        raise UserInputError(f"the per-process batch {batch_gpu} must be divisible by --mbstd-group {group}")

    # ---- networks ------------------------------------------------------------------------------------
    torch.manual_seed(opts.seed)
    np.random.seed((opts.seed * world + info.rank) % 2**32)   # for user code and libraries; the loop
    random.seed(opts.seed * world + info.rank)                # itself draws from per-step seeded RNGs
    if state is not None:
        from ..networks import DiscriminatorConfig, GeneratorConfig
        g_cfg = GeneratorConfig.from_dict(state.header["g_config"])
        d_cfg = DiscriminatorConfig.from_dict(state.header["d_config"])
        if (g_cfg.img_resolution, g_cfg.img_channels) != (res, channels) or g_cfg.c_dim != c_dim:
            raise DatasetError(f"{data} has {res}x{res}x{channels} images with {c_dim} label(s), the run being "
                               f"resumed trained on {g_cfg.img_resolution}x{g_cfg.img_resolution}x"
                               f"{g_cfg.img_channels} with {g_cfg.c_dim}")
        if state.header["dataset"].get("num_images") != len(dataset):
            notices.append(f"the dataset now has {len(dataset)} images, the run started with "
                           f"{state.header['dataset'].get('num_images')}: the data order differs from an "
                           f"uninterrupted run")
    elif transfer_src is not None:
        g_cfg, d_cfg = _transfer_configs(transfer_src, opts, explicit, res, channels, c_dim)
    else:
        g_cfg = generator_config(opts, res, channels, c_dim)
        d_cfg = discriminator_config(opts, res, channels, c_dim)
    d_cfg = d_cfg.replace(mbstd_group_size=group)
    G, D, G_ema = build_networks(g_cfg, d_cfg, freezed=opts.freezed)
    if transfer_src is not None:
        src_G, src_G_ema = transfer_src.G, transfer_src.G_ema
        for name, src, dst in (("G", src_G if src_G is not None else src_G_ema, G), ("D", transfer_src.D, D),
                               ("G_ema", src_G_ema if src_G_ema is not None else src_G, G_ema)):
            copied, kept = copy_by_name(src, dst)
            notices.append(f"transfer: {name}: copied {copied} tensors from {Path(str(resume)).name}"
                           + (f", {len(kept)} kept fresh (e.g. {kept[0]})" if kept else ""))
    augment_pipe = None
    if opts.aug != "noaug":
        augment_pipe = AugmentPipe.from_preset(opts.augpipe)
        augment_pipe.p.fill_(opts.p if opts.aug == "fixed" else 0.0)
    pl_mean0 = None
    if state is not None:
        G.load_state_dict(state.networks["G"])
        D.load_state_dict(state.networks["D"])
        G_ema.load_state_dict(state.networks["G_ema"])
        if augment_pipe is not None and "augment_p" in state.tensors:
            augment_pipe.p.copy_(state.tensors["augment_p"])
        pl_mean0 = state.tensors.get("pl_mean")
    for net in (G, D, G_ema):
        net.to(dev)
    if augment_pipe is not None:
        augment_pipe.to(dev).requires_grad_(False)
    distributed.broadcast_module(G)
    distributed.broadcast_module(D)
    distributed.broadcast_module(G_ema)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if not opts.fp32:
            for net in (G, D, G_ema):
                net.set_half_dtype(torch.float16)

    loss = StyleGAN2Loss(G, D, augment_pipe, r1_gamma=opts.gamma, style_mixing_prob=opts.style_mixing,
                         pl_weight=opts.pl_weight, pl_batch_shrink=opts.pl_batch_shrink, pl_decay=opts.pl_decay,
                         blur_init_sigma=opts.blur_sigma, blur_fade_kimg=opts.blur_fade_kimg)
    if pl_mean0 is not None:
        loss.pl_mean.copy_(pl_mean0.to(dev))

    phases: list[Phase] = []
    for name, module, lr, reg_interval in (("G", G, opts.glr, opts.g_reg_interval if opts.pl_weight > 0 else None),
                                           ("D", D, opts.dlr, opts.d_reg_interval if opts.gamma > 0 else None)):
        ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
        opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
        if reg_interval:
            phases += [Phase(name + "main", module, opt, 1), Phase(name + "reg", module, opt, reg_interval)]
        else:
            phases += [Phase(name + "both", module, opt, 1)]
    optimizers = {"G": phases[0].opt, "D": phases[-1].opt}
    if state is not None:
        for key, opt in optimizers.items():
            opt.load_state_dict(state.optimizers[key])
        restore_rng(state)

    # ---- counters -----------------------------------------------------------------------------------------
    counters = {"cur_nimg": 0, "cur_tick": 0, "batch_idx": 0, "tick_start_nimg": 0, "total_time": 0.0}
    ada_acc = torch.zeros([2], dtype=torch.float64, device=dev)      # sum of sign(D(real)), count
    if state is not None:
        counters.update({k: state.counters[k] for k in counters})
        ada_acc.copy_(state.tensors.get("ada_acc", ada_acc.cpu()).to(dev, torch.float64))
    total_nimg = round(opts.kimg * 1000)

    # ---- run folder and logs --------------------------------------------------------------------------------
    run_dir = None
    if state is not None:
        run_dir = Path(state.path).parent
    elif main:
        outdir.mkdir(parents=True, exist_ok=True)
        run_dir = _run_dir_name(outdir, opts, dataset.name, world, desc)
        run_dir.mkdir(parents=True, exist_ok=False)
    if main and _held_locks is not None:
        _held_locks.append(_RunLock(run_dir))
    log = _Log(run_dir / "log.txt" if (main and run_dir is not None) else None, main)
    for line in notices:
        log(line)
    dataset_info = {**dataset.describe(), "num_images": len(dataset), "name": dataset.name}
    run_info = {"options": opts.to_dict(), "dataset": dataset_info, "num_gpus": world, "batch_gpu": batch_gpu,
                "accumulation_rounds": rounds, "g_config": g_cfg.to_dict(), "d_config": d_cfg.to_dict(),
                "metrics": list(metrics), "device": str(dev)}
    if main and state is None:
        (run_dir / "training_options.json").write_text(json.dumps(run_info, indent=2, sort_keys=True) + "\n")
    if main:
        verb = f"resuming {run_dir.name} at {counters['cur_nimg'] / 1000:.3f} kimg" if state is not None \
            else f"training {run_dir.name}"
        log(f"{verb}: {opts.cfg} {res}x{res}x{channels}{f' {c_dim} classes' if c_dim else ''}, "
            f"{len(dataset)} images, batch {opts.batch} ({world} process(es) x {rounds} round(s) x {batch_gpu}), "
            f"gamma {opts.gamma:g}, aug {opts.aug}{f' ({opts.augpipe})' if opts.aug != 'noaug' else ''}, "
            f"device {dev}, G {sum(p.numel() for p in G.parameters()):,} / D "
            f"{sum(p.numel() for p in D.parameters()):,} parameters")

    writer = _tensorboard(run_dir) if main else None

    # ---- grids -------------------------------------------------------------------------------------------------
    gw, gh = grid or _grid_size(res)
    if grid is None and dev.type != "cuda":
        gw, gh = min(gw, 16), min(gh, 16)   # NVIDIA's 32x32 grids cost minutes per snapshot on a CPU
    grid_idx = _grid_indices(dataset, gw, gh, opts.seed)
    grid_z = torch.from_numpy(np.random.default_rng([opts.seed, 1]).standard_normal([gw * gh, G.z_dim])
                              .astype(np.float32)).to(dev)
    grid_c = torch.from_numpy(dataset.get_labels(grid_idx)).to(dev)

    def save_fakes(path: Path) -> np.ndarray:
        with torch.no_grad():
            imgs = [to_uint8(G_ema(z, c, noise_mode="const")) for z, c in
                    zip(grid_z.split(batch_gpu), grid_c.split(batch_gpu))]
        grid_img = make_grid(np.concatenate(imgs), gh, gw)
        save_image(grid_img, path)
        return grid_img

    if main and state is None:
        reals = dataset.get_images(grid_idx).transpose(0, 2, 3, 1)
        save_image(make_grid(reals, gh, gw), run_dir / "reals.png")
        init_grid = save_fakes(run_dir / "fakes_init.png")
        if writer is not None:
            writer.add_image("Fakes/init", init_grid, 0, dataformats="HWC")

    # ---- the loop ------------------------------------------------------------------------------------------------
    loader = _RealLoader(dataset, opts.seed, batch_gpu, [rnd * world + info.rank for rnd in range(rounds)], dev)
    stats = Stats(dev)
    result = RunResult(run_dir=run_dir, cur_nimg=counters["cur_nimg"], state_path=None)
    c = counters
    tick_start_time = time.time()
    maintenance_time = 0.0
    start_time = time.time() - c["total_time"]
    bar = progress(total=total_nimg, initial=min(c["cur_nimg"], total_nimg), unit="kimg", unit_scale=1e-3,
                   desc="train", disable=quiet or not main, bar_format="{l_bar}{bar}| {n:.2f}/{total:g} kimg "
                   "[{elapsed}<{remaining}]{postfix}")
    with _StopRequest() as stop:
        done = c["cur_nimg"] >= total_nimg and state is not None
        while not done:
            # One step: every phase over the whole global batch.
            loss.begin_step()
            reals = loader.get(c["cur_nimg"])                  # this process's micro-batches, fetched once
            loader.prefetch(c["cur_nimg"] + opts.batch)         # decode the next step in the background
            for phase_idx, phase in enumerate(phases):
                if c["batch_idx"] % phase.interval != 0:
                    continue
                params = [p for p in phase.module.parameters()]
                phase.module.requires_grad_(True)
                for rnd in range(rounds):
                    k = rnd * world + info.rank                      # global micro-batch index
                    # Each micro-batch's gradient is computed alone and then added, the same sums in
                    # the same order as the all-reduce over processes does (results independent of split).
                    stash = [p.grad for p in params] if rounds > 1 else None
                    if stash is not None:
                        for p in params:
                            p.grad = None
                    torch.manual_seed(_derive_seed(opts.seed, c["batch_idx"], phase_idx, k))
                    real_img, real_c = reals[rnd]
                    gen_z = torch.randn([batch_gpu, G.z_dim], device=dev)
                    gen_c = torch.from_numpy(dataset.get_labels(torch.randint(len(dataset), [batch_gpu]).numpy()))
                    loss.accumulate_gradients(phase.name, real_img, real_c, gen_z, gen_c.to(dev),
                                              gain=phase.interval / num_micro, cur_nimg=c["cur_nimg"], stats=stats)
                    if stash is not None:
                        for p, g in zip(params, stash):
                            if g is not None:
                                p.grad = g if p.grad is None else g + p.grad
                phase.module.requires_grad_(False)
                distributed.all_reduce_grads(params)
                for p in params:
                    if p.grad is not None:
                        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
                phase.opt.step()
                phase.opt.zero_grad(set_to_none=True)

            # Global statistics of the step (one all-reduce): G's buffers, PL mean, ADA signs, stop flag.
            packed = torch.cat([loss.tracker.packed(),
                                torch.stack([loss.pl_sum.to(torch.float64),
                                             torch.tensor(float(loss.pl_count), dtype=torch.float64, device=dev),
                                             loss.ada_sum.to(torch.float64),
                                             torch.tensor(float(loss.ada_count), dtype=torch.float64, device=dev),
                                             torch.tensor(1.0 if stop.requested else 0.0, dtype=torch.float64,
                                                          device=dev)])])
            distributed.all_reduce_sum(packed)
            tail = packed[-5:]
            loss.tracker.apply(packed[:-5])
            loss.update_pl_mean(tail[0], int(tail[1].item()))
            ada_acc += tail[2:4]
            stop_requested = bool(tail[4].item() > 0)

            with torch.no_grad():
                ema_nimg = opts.ema_kimg * 1000
                if opts.ema_rampup is not None:
                    ema_nimg = min(ema_nimg, c["cur_nimg"] * opts.ema_rampup)
                beta = 0.5 ** (opts.batch / max(ema_nimg, 1e-8))
                for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                    p_ema.copy_(p.lerp(p_ema, beta))
                for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                    b_ema.copy_(b)

            c["cur_nimg"] += opts.batch
            c["batch_idx"] += 1
            if opts.aug == "ada" and augment_pipe is not None and c["batch_idx"] % opts.ada_interval == 0:
                if ada_acc[1] > 0:
                    r_t = float(ada_acc[0] / ada_acc[1])
                    adjust = np.sign(r_t - opts.target) * (opts.batch * opts.ada_interval) / (opts.ada_kimg * 1000)
                    augment_pipe.p.copy_((augment_pipe.p + adjust).clamp_min(0))
                ada_acc.zero_()
            bar.update(opts.batch)

            done = c["cur_nimg"] >= total_nimg or stop_requested
            if not done and c["cur_tick"] != 0 and c["cur_nimg"] < c["tick_start_nimg"] + opts.tick * 1000:
                continue

            # ---- tick -------------------------------------------------------------------------------------------
            tick_end_time = time.time()
            c["total_time"] = tick_end_time - start_time
            tick_kimg = (c["cur_nimg"] - c["tick_start_nimg"]) / 1000
            sec_per_tick = tick_end_time - tick_start_time
            cpu_mem, gpu_mem = _memory()
            collected = stats.collect()
            p_now = float(augment_pipe.p) if augment_pipe is not None else 0.0
            scalars = {"Progress/tick": c["cur_tick"], "Progress/kimg": c["cur_nimg"] / 1000,
                       "Progress/augment": p_now, "Timing/total_sec": c["total_time"],
                       "Timing/sec_per_tick": sec_per_tick,
                       "Timing/sec_per_kimg": sec_per_tick / tick_kimg if tick_kimg > 0 else 0.0,
                       "Timing/maintenance_sec": maintenance_time, "Resources/cpu_mem_gb": cpu_mem,
                       "Resources/peak_gpu_mem_gb": gpu_mem, "Loss/pl_mean": float(loss.pl_mean)}
            g_loss = collected.get("Loss/G/loss", {}).get("mean", float("nan"))
            d_loss = collected.get("Loss/D/loss", {}).get("mean", float("nan"))
            log(f"tick {c['cur_tick']:<5d} kimg {c['cur_nimg'] / 1000:<9.3f} time {_fmt_time(c['total_time']):<9s} "
                f"sec/tick {sec_per_tick:<7.1f} sec/kimg {scalars['Timing/sec_per_kimg']:<7.2f} "
                f"maintenance {maintenance_time:<5.1f} cpumem {cpu_mem:<5.2f} gpumem {gpu_mem:<5.2f} "
                f"augment {p_now:.3f}  loss G {g_loss:.3f} D {d_loss:.3f}")
            bar.set_postfix_str(f"G {g_loss:.3f} D {d_loss:.3f} p {p_now:.3f}", refresh=False)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            maint_start = time.time()
            if main:
                record = {**collected, **{k: {"num": 1, "mean": v, "std": 0.0} for k, v in scalars.items()},
                          "timestamp": time.time()}
                with open(run_dir / "stats.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                if writer is not None:
                    step = int(c["cur_nimg"] / 1e3)
                    for name, value in {**{k: v["mean"] for k, v in collected.items()}, **scalars}.items():
                        writer.add_scalar(name, value, global_step=step, walltime=record["timestamp"])

            if done or c["cur_tick"] % opts.snap == 0:
                kimg_tag = f"{c['cur_nimg'] // 1000:06d}"
                if main:
                    grid_img = save_fakes(run_dir / f"fakes{kimg_tag}.png")
                    snap_path = run_dir / f"network-snapshot-{kimg_tag}.safetensors"
                    _save_snapshot(snap_path, G, D, G_ema, augment_pipe, opts, dataset, c, run_dir)
                    result.snapshots.append(snap_path)
                    if writer is not None:
                        writer.add_image("Fakes", grid_img, int(c["cur_nimg"] / 1e3), dataformats="HWC")
                if metric_fn is not None:
                    distributed.barrier()
                    snap = run_dir / f"network-snapshot-{kimg_tag}.safetensors" if run_dir is not None else None
                    for line in metric_fn(G_ema, dataset, snap, run_dir, dev, info, c["cur_nimg"], writer):
                        log(line)
            c["cur_tick"] += 1
            c["tick_start_nimg"] = c["cur_nimg"]
            if (done or (c["cur_tick"] - 1) % opts.snap == 0) and main:
                result.state_path = run_dir / state_name(c["cur_nimg"])
                c["total_time"] = time.time() - start_time
                save_training_state(
                    result.state_path, networks={"G": G, "D": D, "G_ema": G_ema}, optimizers=optimizers,
                    tensors={"pl_mean": loss.pl_mean, "ada_acc": ada_acc,
                             **({"augment_p": augment_pipe.p} if augment_pipe is not None else {})},
                    header={**run_info, "counters": dict(c)})
                prune_states(run_dir, keep_states)
            distributed.barrier()
            maintenance_time = time.time() - maint_start
            tick_start_time = time.time()
            if stop_requested:
                result.stopped_early = True
                log(f"stopped at {c['cur_nimg'] / 1000:.3f} kimg; continue with --resume latest")
                break
    bar.close()
    loader.close()
    if writer is not None:
        writer.close()
    result.cur_nimg = c["cur_nimg"]
    if main and not result.stopped_early:
        log(f"done: {c['cur_nimg'] / 1000:.3f} kimg in {_fmt_time(c['total_time'])}; results in {run_dir}")
    if info.enabled:
        distributed.shutdown()
    return result


def training_loop(data, outdir, opts: TrainingOptions, **kwargs) -> RunResult:
    """Train (or continue training) a StyleGAN: ``data`` (dataset zip/folder, or None to reuse a resumed
    run's), ``outdir``, :class:`TrainingOptions`, and ``resume``, ``explicit``, ``metrics``, ``device``,
    ``desc``, ``workers``, ``keep_states``, ``grid``, ``quiet`` as in ``stylegan train`` (docs/training.md).
    Returns where the run ended. The run folder stays locked against a second trainer while it runs."""
    held: list[_RunLock] = []
    try:
        return _train(data, outdir, opts, _held_locks=held, **kwargs)
    finally:
        for lock in held:
            lock.release()


def _transfer_configs(src, opts: TrainingOptions, explicit: set[str], res: int, channels: int, c_dim: int):
    """Adopt the source model's architecture unless the user asked for explicit sizes."""
    src_G = src.G if src.G is not None else src.G_ema
    sg = src_G.config
    if explicit & ARCH_OPTIONS:
        g_cfg = generator_config(opts, res, channels, c_dim)
    else:
        if (sg.img_resolution, sg.img_channels) != (res, channels):
            raise UserInputError(f"the model to resume from makes {sg.img_resolution}x{sg.img_resolution}x"
                                 f"{sg.img_channels} images but the dataset has {res}x{res}x{channels}; "
                                 f"rebuild the dataset at that size with `stylegan dataset --resolution "
                                 f"{sg.img_resolution}`")
        if sg.generation not in ("stylegan2", "stylegan3"):
            raise UserInputError(f"training a {sg.generation} model is not supported; start from a "
                                 f"StyleGAN2 or StyleGAN3 model")
        syn = dataclasses.replace(sg.synthesis, num_fp16_res=0 if opts.fp32 else 4,
                                  conv_clamp=None if opts.fp32 else 256)
        if sg.generation == "stylegan3":
            syn = dataclasses.replace(syn, magnitude_ema_beta=0.5 ** (opts.batch / 20000))
        g_cfg = sg.replace(c_dim=c_dim, synthesis=syn)
        opts.z_dim, opts.w_dim = sg.z_dim, sg.w_dim
        opts.map_depth = sg.mapping.num_layers
        opts.cbase, opts.cmax = sg.synthesis.channel_base, sg.synthesis.channel_max
        if opts.cfg == "stylegan3-r":
            opts.cbase, opts.cmax = opts.cbase // 2, opts.cmax // 2
    if src.D is not None and not (explicit & ARCH_OPTIONS):
        d_cfg = src.D.config.replace(c_dim=c_dim, num_fp16_res=0 if opts.fp32 else 4,
                                     conv_clamp=None if opts.fp32 else 256)
    else:
        d_cfg = discriminator_config(opts, res, channels, c_dim)
    return g_cfg, d_cfg


def _save_snapshot(path: Path, G, D, G_ema, augment_pipe, opts: TrainingOptions, dataset: ImageDataset,
                   counters: dict, run_dir: Path) -> None:
    from ..checkpoints import Checkpoint, save_network
    augment = None
    if augment_pipe is not None:
        augment = {"p": float(augment_pipe.p), "preset": opts.augpipe, "settings": augment_pipe.settings}
    ckpt = Checkpoint(G_ema=G_ema, G=G, D=D, augment=augment, training_set_kwargs=dataset.describe(),
                      metadata={"kimg": counters["cur_nimg"] / 1000, "tick": counters["cur_tick"],
                                "run": run_dir.name, "training_options": opts.to_dict(),
                                "generated_by": "stylegan train"})
    save_network(ckpt, path)


def _tensorboard(run_dir: Path | None):
    if run_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    try:
        return SummaryWriter(str(run_dir))
    except Exception:  # noqa: BLE001 - TensorBoard is optional; never let it stop training
        return None


def _metrics_hook(names: tuple[str, ...], detectors: dict | None = None, device=None):
    """A callable computing ``names`` on each snapshot with :mod:`stylegan.metrics`. Metric names and
    detector files (paths, or URLs downloaded into the cache) are checked now, not after hours of training,
    by every process, so that a bad file stops all of them alike."""
    try:
        from .. import metrics as metrics_pkg
        from ..perception.detectors import load_detector
        evaluate, parse_metric = metrics_pkg.evaluate, metrics_pkg.parse_metric
    except (ImportError, AttributeError):
        raise UserInputError(f"--metrics {','.join(names)}: this installation has no metrics module; "
                             f"use --metrics none") from None
    for name in names:
        parse_metric(name)
    loaded = {kind: load_detector((detectors or {}).get(kind), kind, device=device or "cpu")
              for kind in sorted(metrics_pkg.required_detectors(list(names)))}

    def run(G_ema, dataset, snapshot, run_dir, device, info, cur_nimg, writer):
        results = evaluate(G_ema, list(names), str(dataset.path), run_dir=run_dir if info.is_main else None,
                           snapshot=snapshot.name if snapshot else None, device=device, mirror=dataset.mirror,
                           rank=info.rank, num_gpus=info.world_size, detector=loaded or None)
        lines = []
        for result in results:
            for key, value in result.results.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    lines.append(f"metric {key} {value:.4f} ({result.total_time:.0f}s)")
                    if writer is not None:
                        writer.add_scalar(f"Metrics/{key}", value, global_step=int(cur_nimg / 1e3))
        return lines
    return run

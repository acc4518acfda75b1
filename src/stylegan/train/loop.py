"""The training run: phases, gradient accumulation, EMA, ADA, ticks, snapshots, exact resume.

:class:`TrainingRun` is one run: ``build`` reads the start (fresh, training state or transfer
source, :mod:`stylegan.train.resume`) and makes the networks and optimisers, ``opened`` holds its
locked folder, ``train`` repeats ``step`` and, once per tick, ``tick`` (statistics to the folder's
sink), ``snapshot`` (grid, network file, the caller's metrics) and ``save_state``.
:func:`training_loop` is the one-call entry point the CLI uses.

Determinism by construction: every random number of a step (latents, labels, style mixing, noise
inputs, augmentations, path-length noise) comes from the torch RNG re-seeded from
``(seed, step, phase, micro-batch)``, and the real images from :func:`sample_indices` at the
current image count. Resuming therefore needs only the counters, and a global batch gives the
same result whether its micro-batches run in one process (accumulation) or in many (torchrun).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import devices
from ..data.dataset import ImageDataset
from ..errors import CheckpointError, UserInputError
from ..files import atomic_write
from ..progress import progress
from . import distributed
from . import resume as resume_mod
from .augment import AugmentPipe
from .checkpoint import (
    TrainingState,
    prune_states,
    restore_rng,
    save_training_state,
    state_name,
)
from .config import (
    TrainingOptions,
    build_networks,
    discriminator_config,
    generator_config,
)
from .folder import RunFolder, RunLock, run_dir_name
from .grids import Grids, grid_size
from .loader import RealLoader
from .loss import StyleGAN2Loss
from .stats import Stats


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


@dataclass(frozen=True)
class Snapshot:
    """What the caller's metrics get at each snapshot (every process calls them; ``run_dir`` is set on
    process 0 only, where results are to be written)."""

    G_ema: torch.nn.Module
    dataset: ImageDataset
    path: Path | None
    run_dir: Path | None
    device: torch.device
    rank: int
    world_size: int
    cur_nimg: int


@dataclass(frozen=True)
class SnapshotMetrics:
    """Metrics computed on each snapshot, supplied by the caller (train never imports metrics):
    ``names`` are recorded in the run's options, ``evaluate`` returns ``[(name, value, seconds)]``;
    ``check(shape, variant)`` (if given) refuses, before any training, metrics that do not suit the
    dataset's (H, W) or the model ('stylegan2', 'stylegan3-t', 'stylegan3-r')."""

    names: tuple[str, ...]
    evaluate: Callable[[Snapshot], list[tuple[str, float, float]]]
    check: Callable[[tuple[int, int], str], None] | None = None


@dataclass
class Counters:
    """The run's position; stored in every training state (``header["counters"]``)."""

    cur_nimg: int = 0
    cur_tick: int = 0
    batch_idx: int = 0
    tick_start_nimg: int = 0
    total_time: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> Counters:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] & ((1 << 63) - 1))


def ema_beta(batch: int, ema_kimg: float, ema_rampup: float | None, cur_nimg: int) -> float:
    """G_ema's decay for one step: half-life ``ema_kimg``, during the ramp-up at most ``cur_nimg *
    ema_rampup`` images (so the first step copies G); ``cur_nimg`` counted before the step."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


def ada_adjustment(signs_sum: float, count: float, target: float, batch: int, interval: int,
                   ada_kimg: float) -> float:
    """ADA's change of p after ``interval`` minibatches: ``sign(r_t - target) * batch * interval /
    (ada_kimg * 1000)``, with ``r_t = E[sign(D(real))]`` over those minibatches."""
    return float(np.sign(signs_sum / count - target)) * (batch * interval) / (ada_kimg * 1000)


def optimizer_settings(opts: TrainingOptions) -> dict[str, tuple[float, tuple[float, float], int | None]]:
    """``{"G"|"D": (lr, betas, lazy interval)}``: with a lazy regulariser every k minibatches, the learning
    rate is ``lr * k/(k+1)`` and the betas ``beta^(k/(k+1))`` (Karras et al. 2020, Appendix B)."""
    out = {}
    for key, lr, interval in (("G", opts.glr, opts.lazy_intervals[0]), ("D", opts.dlr, opts.lazy_intervals[1])):
        ratio = interval / (interval + 1) if interval else 1.0
        out[key] = (lr * ratio, (0.0 ** ratio, 0.99 ** ratio), interval)
    return out


def make_phases(opts: TrainingOptions, G, D) -> list[Phase]:
    """Gmain/Greg (or Gboth) and Dmain/Dreg (or Dboth), each pair sharing one Adam(eps 1e-8)."""
    phases = []
    for (key, (lr, betas, interval)), module in zip(optimizer_settings(opts).items(), (G, D)):
        opt = torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=1e-8)
        if interval:
            phases += [Phase(key + "main", module, opt, 1), Phase(key + "reg", module, opt, interval)]
        else:
            phases += [Phase(key + "both", module, opt, 1)]
    return phases


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


class _Progress:
    """The progress bar: kimg done out of the kimg at which the run really ends (the first whole step at or
    past ``--kimg``), time left (from this session's speed), and the losses of the steps since the last
    update (this process's share), not a mean over the tick that lags behind."""

    LOSSES = ("Loss/G/loss", "Loss/D/loss")

    def __init__(self, cur_nimg: int, total_nimg: int, batch: int, disable: bool):
        steps_left = max(math.ceil((total_nimg - cur_nimg) / batch), 0)
        self.end_nimg = cur_nimg + steps_left * batch
        self._seen: dict[str, tuple[float, float]] = {}
        self._collections = 0
        # Counted in kimg: tqdm's time left is wrong (negative) with a numeric unit_scale and an initial count.
        self.bar = progress(total=self.end_nimg / 1000, initial=cur_nimg / 1000, unit="kimg", desc="train",
                            disable=disable, bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg "
                            "[{elapsed}<{remaining}]{postfix}")

    def update(self, cur_nimg: int, stats: Stats, augment_p: float) -> None:
        if self.bar.disable:
            return
        if stats.collections != self._collections:              # a tick collected (and reset) the statistics
            self._seen, self._collections = {}, stats.collections
        latest = {}
        for name, (num, total) in stats.totals(list(self.LOSSES)).items():
            seen_num, seen_total = self._seen.get(name, (0.0, 0.0))
            if num > seen_num:
                latest[name] = (total - seen_total) / (num - seen_num)
            self._seen[name] = (num, total)
        if latest:
            self.bar.set_postfix_str(f"G {latest.get(self.LOSSES[0], math.nan):.3f} "
                                     f"D {latest.get(self.LOSSES[1], math.nan):.3f} p {augment_p:.3f}",
                                     refresh=False)
        self.bar.update(min(cur_nimg, self.end_nimg) / 1000 - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class TrainingRun:
    """One training run (see the module docstring). Build it with :meth:`build`."""

    def __init__(self, info: distributed.DistInfo, dev: torch.device, begun: resume_mod.Start,
                 dataset: ImageDataset, *, explicit: set[str], metrics: SnapshotMetrics | None, outdir: Path,
                 desc: str | None, keep_states: int, grid: tuple[int, int] | None, quiet: bool):
        self.info, self.dev, self.dataset, self.main = info, dev, dataset, info.is_main
        self.metrics, self.outdir, self.desc, self.keep_states, self.quiet = metrics, outdir, desc, keep_states, quiet
        self.state: TrainingState | None = begun.state
        self.notices = list(begun.notices)
        self.c_dim = dataset.label_dim if begun.opts.cond else 0
        opts = begun.opts.resolved(dataset.resolution)
        self._layout(opts)
        self.opts, self.g_cfg, d_cfg = self._configs(begun, opts, explicit)
        self.d_cfg = d_cfg.replace(mbstd_group_size=self.mbstd_group)
        self._build(begun)
        self.counters = Counters()
        self.ada_acc = torch.zeros([2], dtype=devices.accumulation_dtype(dev), device=dev)   # sum of sign(D(real)), count
        if self.state is not None:
            self._restore(self.state)
        self.total_nimg = round(self.opts.kimg * 1000)
        self.loader = RealLoader(dataset, self.opts.seed, self.batch_gpu,
                                 [rnd * info.world_size + info.rank for rnd in range(self.rounds)], dev)
        self.stats = Stats(dev)
        self.grid = grid
        self.run_dir: Path | None = Path(self.state.path).parent if self.state is not None else None
        self.folder = RunFolder(None, echo=self.main)

    @classmethod
    def build(cls, data, outdir, opts: TrainingOptions, *, resume: str | None = None,
              explicit: set[str] | None = None, metrics: SnapshotMetrics | None = None, device: str = "auto",
              desc: str | None = None, workers: int = 2, keep_states: int = 3,
              grid: tuple[int, int] | None = None, quiet: bool = False) -> TrainingRun:
        """Everything in memory, nothing written yet: options reconciled with ``resume``, dataset opened,
        networks and optimisers made (and restored from a training state or a transfer source)."""
        explicit = set(explicit or ())
        info, dev = distributed.init(device)
        begun = resume_mod.start(opts, data, Path(outdir), resume, explicit)
        dataset = ImageDataset(begun.data, use_labels=begun.opts.cond, mirror=begun.opts.mirror, workers=workers,
                               max_images=begun.opts.subset, subset_seed=begun.opts.seed)
        if metrics is not None and metrics.check is not None:
            metrics.check(dataset.shape, begun.opts.cfg)
        return cls(info, dev, begun, dataset, explicit=explicit, metrics=metrics, outdir=Path(outdir), desc=desc,
                   keep_states=keep_states, grid=grid, quiet=quiet)

    def _layout(self, opts: TrainingOptions) -> None:
        """How the global batch is split: per-process micro-batches, accumulation rounds, mbstd groups."""
        world = self.info.world_size
        self.batch_gpu = opts.batch_gpu or opts.batch // world
        if self.batch_gpu < 1 or opts.batch % (self.batch_gpu * world):
            raise UserInputError(f"--batch {opts.batch} must be a multiple of (processes {world}) x "
                                 f"(--batch-gpu {self.batch_gpu})")
        self.rounds = opts.batch // (self.batch_gpu * world)
        self.num_micro = self.rounds * world
        self.mbstd_group = min(opts.mbstd_group, self.batch_gpu)
        if self.batch_gpu % self.mbstd_group:
            raise UserInputError(f"the per-process batch {self.batch_gpu} must be divisible by --mbstd-group "
                                 f"{self.mbstd_group}")

    def _configs(self, begun: resume_mod.Start, opts: TrainingOptions, explicit: set[str]):
        """-> (options, G config, D config) for a fresh, resumed or transferred run."""
        res, channels, shape = self.dataset.resolution, self.dataset.num_channels, self.dataset.shape
        if opts.generation == "stylegan1" and shape[0] != shape[1]:
            raise UserInputError(f"{begun.data} has {shape[1]}x{shape[0]} images: non-square models are StyleGAN2 "
                                 f"or StyleGAN3 (--cfg stylegan2, stylegan3-t or stylegan3-r)")
        if begun.state is not None:
            return (opts, *resume_mod.check_state_fits(begun.state, begun.data, shape, channels, self.c_dim,
                                                       len(self.dataset), self.notices))
        if begun.source is not None:
            return resume_mod.transfer_configs(begun.source, opts, explicit, shape, channels, self.c_dim)
        return (opts, generator_config(opts, res, channels, self.c_dim, img_shape=shape),
                discriminator_config(opts, res, channels, self.c_dim, img_shape=shape))

    def _build(self, begun: resume_mod.Start) -> None:
        """Networks (fresh, with NVIDIA's initialisation, or copied from a transfer source), augmentation,
        loss and the optimiser phases, on this process's device and equal in every process."""
        opts, world, rank = self.opts, self.info.world_size, self.info.rank
        torch.manual_seed(opts.seed)
        np.random.seed((opts.seed * world + rank) % 2**32)   # for user code and libraries; the loop
        random.seed(opts.seed * world + rank)                # itself draws from per-step seeded RNGs
        G, D, G_ema = build_networks(self.g_cfg, self.d_cfg, freezed=opts.freezed)
        if begun.source is not None:
            self.notices += resume_mod.transfer_weights(begun.source, G, D, G_ema, begun.source_name)
        self.augment_pipe = None
        if opts.aug != "noaug":
            self.augment_pipe = AugmentPipe.from_preset(opts.augpipe)
            self.augment_pipe.p.fill_(opts.p if opts.aug == "fixed" else 0.0)
        if self.state is not None:
            G.load_state_dict(self.state.networks["G"])
            D.load_state_dict(self.state.networks["D"])
            G_ema.load_state_dict(self.state.networks["G_ema"])
        for net in (G, D, G_ema):
            net.to(self.dev)
            distributed.broadcast_module(net)
        if self.augment_pipe is not None:
            self.augment_pipe.to(self.dev).requires_grad_(False)
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = opts.cudnn_benchmark
            torch.backends.cuda.matmul.allow_tf32 = opts.allow_tf32
            torch.backends.cudnn.allow_tf32 = opts.allow_tf32
            if not opts.fp32:
                for net in (G, D, G_ema):
                    net.set_half_dtype(torch.float16)
        self.G, self.D, self.G_ema = G, D, G_ema
        self.loss = StyleGAN2Loss(G, D, self.augment_pipe, r1_gamma=opts.gamma, style_mixing_prob=opts.style_mixing,
                                  pl_weight=opts.pl_weight, pl_batch_shrink=opts.pl_batch_shrink,
                                  pl_decay=opts.pl_decay, blur_init_sigma=opts.blur_sigma,
                                  blur_fade_kimg=opts.blur_fade_kimg)
        self.phases = make_phases(opts, G, D)
        self.optimizers = {"G": self.phases[0].opt, "D": self.phases[-1].opt}

    def _restore(self, state: TrainingState) -> None:
        """Continue exactly where ``state`` left off: ADA p, path-length mean, optimiser moments (with the
        learning rates and betas of the options), RNG states, counters, pending ADA statistics."""
        if self.augment_pipe is not None and "augment_p" in state.tensors:
            self.augment_pipe.p.copy_(state.tensors["augment_p"])
        if "pl_mean" in state.tensors:
            self.loss.pl_mean.copy_(state.tensors["pl_mean"].to(self.dev))
        settings = optimizer_settings(self.opts)
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state.optimizers[key])
            for group in opt.param_groups:
                group["lr"], group["betas"] = settings[key][0], settings[key][1]
        restore_rng(state)
        self.counters = Counters.from_dict(state.counters)
        self.ada_acc.copy_(state.tensors.get("ada_acc", self.ada_acc.cpu()).to(self.ada_acc.dtype).to(self.dev))

    @property
    def run_info(self) -> dict:
        """What ``training_options.json`` and every training state record about the run."""
        dataset_info = {**self.dataset.describe(), "num_images": len(self.dataset), "name": self.dataset.name}
        return {"options": self.opts.to_dict(), "dataset": dataset_info, "num_gpus": self.info.world_size,
                "batch_gpu": self.batch_gpu, "accumulation_rounds": self.rounds, "g_config": self.g_cfg.to_dict(),
                "d_config": self.d_cfg.to_dict(), "metrics": list(self.metrics.names if self.metrics else ()),
                "device": str(self.dev)}

    @contextlib.contextmanager
    def opened(self):
        """The run folder, created (new run) or reopened (resume) and locked for the whole block, with
        leftovers of interrupted writes removed and, for a new run, its options and first grids written."""
        if self.main and self.run_dir is None:
            self.outdir.mkdir(parents=True, exist_ok=True)
            opts = self.opts
            self.run_dir = run_dir_name(self.outdir, opts.cfg, self.dataset.name, self.info.world_size,
                                        opts.batch, opts.gamma, self.desc)
            self.run_dir.mkdir(parents=True, exist_ok=False)
        with RunLock(self.run_dir) if self.main else contextlib.nullcontext():
            self.folder = RunFolder(self.run_dir if self.main else None, echo=self.main)
            try:
                self.notices += self.folder.open()
                self._start_files()
                yield self
            finally:
                self.folder.close()

    def _start_files(self) -> None:
        for line in self.notices:
            self.folder.log(line)
        if not self.main:
            return
        opts, (h, w) = self.opts, self.dataset.shape
        self.grids = Grids(self.dataset, self.G.z_dim, grid_size((h, w), self.dev.type == "cuda", self.grid),
                           opts.seed, self.batch_gpu, self.dev)
        c = self.counters
        verb = (f"resuming {self.run_dir.name} at {c.cur_nimg / 1000:.3f} kimg" if self.state is not None
                else f"training {self.run_dir.name}")
        self.folder.log(
            f"{verb}: {opts.cfg} {w}x{h}x{self.dataset.num_channels}"
            f"{f' {self.c_dim} classes' if self.c_dim else ''}, "
            f"{len(self.dataset)} images, batch {opts.batch} ({self.info.world_size} process(es) x {self.rounds} "
            f"round(s) x {self.batch_gpu}), gamma {opts.gamma:g}, aug {opts.aug}"
            f"{f' ({opts.augpipe})' if opts.aug != 'noaug' else ''}, device {self.dev}, "
            f"G {sum(p.numel() for p in self.G.parameters()):,} / D {sum(p.numel() for p in self.D.parameters()):,} "
            f"parameters")
        if self.state is not None:
            return
        with self.folder.writing("training_options.json"):
            atomic_write(self.run_dir / "training_options.json", json.dumps(self.run_info, indent=2, sort_keys=True)
                         + "\n")
        with self.folder.writing("reals.png and fakes_init.png"):
            self.grids.save_reals(self.run_dir / "reals.png")
            self.folder.add_image("Fakes/init", self.grids.save_fakes(self.G_ema, self.run_dir / "fakes_init.png"), 0)

    def train(self) -> RunResult:
        """Train until ``--kimg`` (the last step may pass it: a run ends on whole steps) or a stop request."""
        c, opts = self.counters, self.opts
        result = RunResult(run_dir=self.run_dir, cur_nimg=c.cur_nimg, state_path=None)
        self.start_time = time.time() - c.total_time
        self.tick_start_time, self.maintenance_time = time.time(), 0.0
        bar = _Progress(c.cur_nimg, self.total_nimg, opts.batch, disable=self.quiet or not self.main)
        try:
            with _StopRequest() as stop:
                done = c.cur_nimg >= self.total_nimg and self.state is not None
                while not done:
                    stop_requested = self.step(stop.requested)
                    bar.update(c.cur_nimg, self.stats, self.augment_p)
                    done = c.cur_nimg >= self.total_nimg or stop_requested
                    if not done and c.cur_tick != 0 and c.cur_nimg < c.tick_start_nimg + opts.tick * 1000:
                        continue
                    self._maintenance(done, result)
                    if stop_requested:
                        result.stopped_early = True
                        self.folder.log(f"stopped at {c.cur_nimg / 1000:.3f} kimg; continue with --resume latest")
                        break
        finally:
            bar.close()
        result.cur_nimg = c.cur_nimg
        if self.main and not result.stopped_early:
            self.folder.log(f"done: {c.cur_nimg / 1000:.3f} kimg in {_fmt_time(c.total_time)}; results in "
                            f"{self.run_dir}")
        return result

    @property
    def augment_p(self) -> float:
        return float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0

    def step(self, stop_flag: bool = False) -> bool:
        """One optimiser step of every due phase over the whole global batch, then G_ema and ADA.
        Returns whether any process was asked to stop."""
        c, opts = self.counters, self.opts
        self.loss.begin_step()
        reals = self.loader.get(c.cur_nimg)                  # this process's micro-batches, fetched once
        self.loader.prefetch(c.cur_nimg + opts.batch)         # decode the next step in the background
        for phase_idx, phase in enumerate(self.phases):
            if c.batch_idx % phase.interval == 0:
                self._run_phase(phase_idx, phase, reals)
        # The step's global statistics in one all-reduce: G's buffers, PL mean, ADA signs, stop flag.
        flag = torch.tensor([1.0 if stop_flag else 0.0], dtype=self.ada_acc.dtype, device=self.dev)
        packed = distributed.all_reduce_sum(torch.cat([self.loss.step_sums(), flag]))
        self.ada_acc += self.loss.end_step(packed[:-1])
        with torch.no_grad():
            beta = ema_beta(opts.batch, opts.ema_kimg, opts.ema_rampup, c.cur_nimg)
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        c.cur_nimg += opts.batch
        c.batch_idx += 1
        if opts.aug == "ada" and self.augment_pipe is not None and c.batch_idx % opts.ada_interval == 0:
            if self.ada_acc[1] > 0:
                adjust = ada_adjustment(float(self.ada_acc[0]), float(self.ada_acc[1]), opts.target, opts.batch,
                                        opts.ada_interval, opts.ada_kimg)
                self.augment_pipe.p.copy_((self.augment_pipe.p + adjust).clamp_min(0))
            self.ada_acc.zero_()
        return bool(packed[-1].item() > 0)

    def _run_phase(self, phase_idx: int, phase: Phase, reals) -> None:
        """Accumulate the phase's gradients over this process's micro-batches, sum them over processes,
        clean NaN/Inf and take the optimiser step."""
        c, world, rank = self.counters, self.info.world_size, self.info.rank
        params = list(phase.module.parameters())
        phase.module.requires_grad_(True)
        for rnd in range(self.rounds):
            k = rnd * world + rank                      # global micro-batch index
            # Each micro-batch's gradient is computed alone and then added, the same sums in the same
            # order as the all-reduce over processes does (results independent of the split).
            stash = [p.grad for p in params] if self.rounds > 1 else None
            if stash is not None:
                for p in params:
                    p.grad = None
            torch.manual_seed(derive_seed(self.opts.seed, c.batch_idx, phase_idx, k))
            real_img, real_c = reals[rnd]
            gen_z = torch.randn([self.batch_gpu, self.G.z_dim], device=self.dev)
            label_idx = torch.randint(len(self.dataset), [self.batch_gpu]).numpy()
            gen_c = torch.from_numpy(self.dataset.get_labels(label_idx))
            self.loss.accumulate_gradients(phase.name, real_img, real_c, gen_z, gen_c.to(self.dev),
                                           gain=phase.interval / self.num_micro, cur_nimg=c.cur_nimg, stats=self.stats)
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

    def _maintenance(self, done: bool, result: RunResult) -> None:
        """Once per tick: the statistics, and every ``--snap`` ticks (and at the end) a snapshot and a
        training state. A failed write on process 0 stops every process with the same error."""
        c = self.counters
        error = self.tick()
        self.maint_start = time.time()
        due = done or c.cur_tick % self.opts.snap == 0
        if due:
            error = error or self.snapshot(result)
        c.cur_tick += 1
        c.tick_start_nimg = c.cur_nimg
        if due and error is None:
            error = self._on_main(lambda: self.save_state(result))
        self._agree(error)
        self.maintenance_time = time.time() - self.maint_start
        self.tick_start_time = time.time()

    def _on_main(self, write: Callable[[], object]) -> CheckpointError | None:
        """Run ``write`` on process 0; a failure is returned, to be raised on all processes at once."""
        if not self.main:
            return None
        try:
            write()
        except CheckpointError as exc:
            return exc
        return None

    def _agree(self, error: CheckpointError | None) -> None:
        if distributed.any_flag(error is not None, self.dev):
            raise error or CheckpointError("process 0 could not write the run's files (see its error)")

    def tick(self) -> CheckpointError | None:
        """The tick's statistics (summed over processes) to the log line and the folder's stats sink."""
        c = self.counters
        tick_end_time = time.time()
        c.total_time = tick_end_time - self.start_time
        tick_kimg = (c.cur_nimg - c.tick_start_nimg) / 1000
        sec_per_tick = tick_end_time - self.tick_start_time
        cpu_mem, gpu_mem = _memory()
        collected = self.stats.collect()
        p_now = self.augment_p
        scalars = {"Progress/tick": c.cur_tick, "Progress/kimg": c.cur_nimg / 1000, "Progress/augment": p_now,
                   "Timing/total_sec": c.total_time, "Timing/sec_per_tick": sec_per_tick,
                   "Timing/sec_per_kimg": sec_per_tick / tick_kimg if tick_kimg > 0 else 0.0,
                   "Timing/maintenance_sec": self.maintenance_time, "Resources/cpu_mem_gb": cpu_mem,
                   "Resources/peak_gpu_mem_gb": gpu_mem, "Loss/pl_mean": float(self.loss.pl_mean)}
        g_loss = collected.get("Loss/G/loss", {}).get("mean", float("nan"))
        d_loss = collected.get("Loss/D/loss", {}).get("mean", float("nan"))
        line = (f"tick {c.cur_tick:<5d} kimg {c.cur_nimg / 1000:<9.3f} time {_fmt_time(c.total_time):<9s} "
                f"sec/tick {sec_per_tick:<7.1f} sec/kimg {scalars['Timing/sec_per_kimg']:<7.2f} "
                f"maintenance {self.maintenance_time:<5.1f} cpumem {cpu_mem:<5.2f} gpumem {gpu_mem:<5.2f} "
                f"augment {p_now:.3f}  loss G {g_loss:.3f} D {d_loss:.3f}")
        if self.dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def write():
            self.folder.log(line)
            self.folder.write_stats(collected, scalars, c.cur_nimg / 1e3)
        return self._on_main(write)

    def snapshot(self, result: RunResult) -> CheckpointError | None:
        """``fakes<kimg>.png`` and ``network-snapshot-<kimg>.safetensors`` (process 0), then the caller's
        metrics on G_ema (every process)."""
        c = self.counters
        kimg_tag = f"{c.cur_nimg // 1000:06d}"
        path = self.run_dir / f"network-snapshot-{kimg_tag}.safetensors" if self.run_dir is not None else None

        def write():
            with self.folder.writing(f"fakes{kimg_tag}.png"):
                grid_img = self.grids.save_fakes(self.G_ema, self.run_dir / f"fakes{kimg_tag}.png")
            with self.folder.writing(path.name):
                self._save_snapshot(path)
            result.snapshots.append(path)
            self.folder.add_image("Fakes", grid_img, c.cur_nimg / 1e3)

        error = self._on_main(write)
        if self.metrics is None:
            return error
        self._agree(error)
        snap = Snapshot(self.G_ema, self.dataset, path, self.run_dir if self.main else None, self.dev,
                        self.info.rank, self.info.world_size, c.cur_nimg)
        for name, value, seconds in self.metrics.evaluate(snap):
            self.folder.log(f"metric {name} {value:.4f} ({seconds:.0f}s)")
            self.folder.add_scalar(f"Metrics/{name}", value, c.cur_nimg / 1e3)
        return None

    def _save_snapshot(self, path: Path) -> None:
        from ..checkpoints import Checkpoint, save_network
        augment = None
        if self.augment_pipe is not None:
            augment = {"p": self.augment_p, "preset": self.opts.augpipe, "settings": self.augment_pipe.settings}
        c = self.counters
        ckpt = Checkpoint(G_ema=self.G_ema, G=self.G, D=self.D, augment=augment,
                          training_set_kwargs=self.dataset.describe(),
                          metadata={"kimg": c.cur_nimg / 1000, "tick": c.cur_tick, "run": self.run_dir.name,
                                    "training_options": self.opts.to_dict(), "generated_by": "stylegan train"})
        save_network(ckpt, path)

    def save_state(self, result: RunResult) -> Path:
        """``training-state-<nimg>.safetensors``: everything :meth:`_restore` needs; older ones pruned."""
        c = self.counters
        path = self.run_dir / state_name(c.cur_nimg)
        c.total_time = time.time() - self.start_time
        tensors = {"pl_mean": self.loss.pl_mean, "ada_acc": self.ada_acc}
        if self.augment_pipe is not None:
            tensors["augment_p"] = self.augment_pipe.p
        with self.folder.writing(path.name):
            save_training_state(path, networks={"G": self.G, "D": self.D, "G_ema": self.G_ema},
                                optimizers=self.optimizers, tensors=tensors,
                                header={**self.run_info, "counters": c.to_dict()})
        prune_states(self.run_dir, self.keep_states)
        result.state_path = path
        return path

    def close(self) -> None:
        self.loader.close()
        if self.info.enabled:
            distributed.shutdown()


def training_loop(data, outdir, opts: TrainingOptions, **kwargs) -> RunResult:
    """Train (or continue training) a StyleGAN: ``data`` (dataset zip/folder, or None to reuse a resumed
    run's), ``outdir``, :class:`TrainingOptions`, and ``resume``, ``explicit``, ``metrics``
    (:class:`SnapshotMetrics`), ``device``, ``desc``, ``workers``, ``keep_states``, ``grid``, ``quiet`` as
    in ``stylegan train`` (docs/training.md). Returns where the run ended. The run folder stays locked
    against a second trainer while it runs."""
    run = TrainingRun.build(data, outdir, opts, **kwargs)
    try:
        with run.opened():
            return run.train()
    finally:
        run.close()

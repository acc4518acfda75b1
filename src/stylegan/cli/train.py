"""``stylegan train``: train a StyleGAN2/3 on a dataset, on one device or under ``torchrun``."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import click
from click.core import ParameterSource

from ..errors import UserInputError
from .common import check_gpus, device_option, gpus_option, switch_option

#: StyleGAN2-ADA train.py's ``--cfg`` presets (its table): StyleGAN2 networks with these settings.
ADA_PRESETS = {
    "paper256": {"batch": 64, "mbstd_group": 8, "cbase": 16384, "glr": 0.0025, "dlr": 0.0025, "gamma": 1.0,
                 "ema_kimg": 20.0},
    "paper512": {"batch": 64, "mbstd_group": 8, "cbase": 32768, "glr": 0.0025, "dlr": 0.0025, "gamma": 0.5,
                 "ema_kimg": 20.0},
    "paper1024": {"batch": 32, "mbstd_group": 4, "cbase": 32768, "glr": 0.002, "dlr": 0.002, "gamma": 2.0,
                  "ema_kimg": 10.0},
}
#: StyleGAN2-ADA train.py's ``--resume`` shortcuts (its transfer-learning source networks).
ADA_RESUME = {name: "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/"
              + file for name, file in {
                  "ffhq256": "ffhq-res256-mirror-paper256-noaug.pkl",
                  "ffhq512": "ffhq-res512-mirror-stylegan2-noaug.pkl",
                  "ffhq1024": "ffhq-res1024-mirror-stylegan2-noaug.pkl",
                  "celebahq256": "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
                  "lsundog256": "lsundog-res256-paper256-kimg100000-noaug.pkl"}.items()}

_OPTION_NAMES = ("cfg", "batch", "batch_gpu", "gamma", "kimg", "tick", "snap", "seed", "mirror", "cond", "cbase",
                 "cmax", "map_depth", "z_dim", "w_dim", "mbstd_group", "glr", "dlr", "fp32", "freezed",
                 "style_mixing", "pl_weight", "ema_kimg", "aug", "p", "target", "ada_kimg", "augpipe", "allow_tf32",
                 "subset")


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset zip or folder (from `stylegan dataset`). Optional with --resume latest.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where run folders are created.")
@click.option("--cfg", type=click.Choice(["stylegan2", "stylegan3-t", "stylegan3-r", *ADA_PRESETS, "auto", "cifar"]),
              default="stylegan2", show_default=True,
              help="Architecture and loss preset. paper256/paper512/paper1024: StyleGAN2-ADA's presets "
                   "(StyleGAN2 with their batch, gamma, learning rates, channels, EMA; options given override).")
@click.option("--gamma", type=float, default=None, help="R1 weight. Default: 0.0002 * resolution^2 / batch.")
@click.option("--batch", type=int, default=32, show_default=True, help="Global batch size.")
@click.option("--batch-gpu", type=int, default=None, help="Per-process micro-batch (default batch/processes).")
@click.option("--kimg", type=float, default=25000, show_default=True, help="Train until this many kimg.")
@click.option("--tick", type=float, default=4, show_default=True, help="Progress line every N kimg.")
@click.option("--snap", type=int, default=50, show_default=True,
              help="Snapshot, image grid, metrics and training state every N ticks.")
@click.option("--seed", type=int, default=0, show_default=True)
@switch_option("--cond", help="Conditional training on the dataset's labels.")
@switch_option("--mirror", help="Add x-flipped copies of the images.")
@click.option("--subset", type=click.IntRange(min=1), default=None, metavar="N",
              help="Train on a random subset of N images (chosen by --seed, as NVIDIA's --subset).")
@click.option("--aug", type=click.Choice(["ada", "fixed", "noaug"]), default="ada", show_default=True)
@click.option("--p", type=float, default=0.2, show_default=True, help="Augmentation probability for --aug fixed.")
@click.option("--target", type=float, default=0.6, show_default=True, help="ADA target for r_t.")
@click.option("--ada-kimg", type=float, default=500, show_default=True,
              help="ADA speed: kimg for p to rise from 0 to 1 (100 when starting from a model).")
@click.option("--augpipe", type=click.Choice(["blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc",
                                              "bgcf", "bgcfn", "bgcfnc"]), default="bgc", show_default=True)
@click.option("--resume", default=None, metavar="latest|STATE|RUNDIR|MODEL",
              help="'latest': continue the newest run under --outdir exactly (or start one). A training-state "
                   "file or run folder: continue it exactly. Any model file (.pkl, .safetensors, ...): transfer "
                   "learning from its weights. Also StyleGAN2-ADA's names: noresume, ffhq256, ffhq512, ffhq1024, "
                   "celebahq256, lsundog256.")
@click.option("--freezed", type=int, default=0, show_default=True, help="Frozen D layers (transfer learning).")
@click.option("--cbase", type=int, default=32768, show_default=True, help="Channel base.")
@click.option("--cmax", type=int, default=512, show_default=True, help="Maximum channels.")
@click.option("--map-depth", type=int, default=None, help="Mapping layers (default 8 SG2, 2 SG3).")
@click.option("--z-dim", type=int, default=512, show_default=True)
@click.option("--w-dim", type=int, default=512, show_default=True)
@click.option("--mbstd-group", type=int, default=4, show_default=True, help="Minibatch-std group size.")
@click.option("--glr", type=float, default=None, help="G learning rate (default 0.002 SG2, 0.0025 SG3).")
@click.option("--dlr", type=float, default=0.002, show_default=True, help="D learning rate.")
@click.option("--style-mixing", type=float, default=None, help="Style-mixing probability (default 0.9 SG2).")
@click.option("--pl-weight", type=float, default=None, help="Path-length weight (default 2 SG2, 0 SG3).")
@click.option("--ema-kimg", type=float, default=None, help="G_ema half-life in kimg (default batch*10/32).")
@switch_option("--fp32", help="Disable mixed precision on GPUs.")
@switch_option("--allow-tf32", help="Allow TF32 matrix products and convolutions on GPUs (faster, less exact).")
@switch_option("--nobench", help="Turn off cuDNN benchmarking (GPUs).")
@switch_option("--nhwc", help="NVIDIA's channels-last switch: accepted, the memory format is chosen "
                              "automatically (channels-last for fp16 on GPUs).")
@gpus_option("train")
@click.option("--metrics", default="auto", show_default=True,
              help="Comma-separated metrics at each snapshot, or none. auto: fid50k_full on a GPU when the "
                   "metrics module is installed, none on the CPU.")
@click.option("--detector", "detectors", multiple=True, metavar="[KIND=]PATH|URL",
              help="Detector files for --metrics, as in `stylegan metrics` (inception=PATH, vgg16=PATH); "
                   "loaded (or downloaded) at start-up. Default: NVIDIA's published files.")
@click.option("--desc", default=None, help="Suffix of the run folder name.")
@device_option
@click.option("--workers", type=int, default=2, show_default=True, help="Image decoding threads.")
@click.option("--keep-states", type=int, default=3, show_default=True,
              help="Training states kept per run (older ones are deleted; 0 keeps all).")
@click.option("--grid", default=None, metavar="ROWSxCOLS", help="Size of the image grids (default by resolution).")
@click.option("-n", "--dry-run", is_flag=True, help="Print the options and exit.")
@click.pass_context
def train(ctx, data, outdir, device, metrics, detectors, desc, workers, keep_states, grid, resume, dry_run,
          gpus, nobench, nhwc, **kwargs):
    """Train StyleGAN2 / StyleGAN3 with ADA. Multi-GPU: `torchrun --nproc_per_node N -m stylegan.cli.main train ...`.

    Re-running the same command with --resume latest continues a crashed or stopped run exactly.
    """
    from ..render.images import parse_grid
    from ..train.config import TrainingOptions
    from ..train.loop import training_loop
    check_gpus(ctx, gpus)
    explicit = {name for name in _OPTION_NAMES
                if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    values = _ada_preset({k: kwargs[k] for k in _OPTION_NAMES}, explicit)
    opts = TrainingOptions(**values, cudnn_benchmark=not nobench)
    resume = {"noresume": None}.get(resume, ADA_RESUME.get(resume, resume))
    opts.validate()
    metric_names = _metric_names(metrics, device)
    grid_size = None
    if grid is not None:
        rows, cols = parse_grid(grid)
        grid_size = (cols, rows)
    if dry_run:
        click.echo(json.dumps({"options": opts.to_dict(), "data": str(data) if data else None,
                               "outdir": str(outdir), "resume": resume, "metrics": list(metric_names)}, indent=2))
        return
    # Metric names and detector files are checked (and detectors loaded) before anything is read or written.
    snapshot_metrics = metrics_hook(metric_names, detectors, device) if metric_names else None
    training_loop(data, outdir, opts, resume=resume, explicit=explicit, metrics=snapshot_metrics, device=device,
                  desc=desc, workers=workers, keep_states=keep_states, grid=grid_size)


def _ada_preset(values: dict, explicit: set[str]) -> dict:
    """``--cfg paper256|paper512|paper1024`` as StyleGAN2 with that preset's settings (options given on the
    command line keep their values); ADA's ``auto`` and ``cifar`` are refused with what to use instead."""
    cfg = values["cfg"]
    if cfg in ("auto", "cifar"):
        why = ("its settings depend on the resolution and GPU count; give --cfg stylegan2 (or paper256/"
               "paper512/paper1024) with --batch and --gamma" if cfg == "auto" else
               "its 'orig' discriminator is not built by `stylegan train`; use --cfg stylegan2 --gamma 0.01 "
               "--map-depth 2 --pl-weight 0 --style-mixing 0")
        raise UserInputError(f"--cfg {cfg} (StyleGAN2-ADA) is not reproduced: {why}")
    if cfg not in ADA_PRESETS:
        return values
    preset = {**ADA_PRESETS[cfg], "map_depth": 8}
    return {**values, "cfg": "stylegan2", "ema_rampup": None,
            **{k: v for k, v in preset.items() if k not in explicit}}


def metrics_hook(names: tuple[str, ...], detector_args: tuple[str, ...] = (), device: str = "auto"):
    """The metrics a training run computes on each snapshot, with :mod:`stylegan.metrics`. Metric names and
    detector files (paths, or URLs downloaded into the cache) are checked now, not after hours of training,
    by every process (on its own device), so that a bad file stops all of them alike."""
    from ..train import distributed
    from ..train.loop import SnapshotMetrics
    try:
        from .. import metrics as metrics_pkg
        from ..perception.detectors import load_detector, parse_detector_args
    except ImportError:
        raise UserInputError(f"--metrics {','.join(names)}: this installation has no metrics module; "
                             f"use --metrics none") from None
    for name in names:
        metrics_pkg.parse_metric(name)
    needed = metrics_pkg.required_detectors(list(names))
    sources = parse_detector_args(detector_args, needed) if detector_args else {}
    _, dev = distributed.init(device)
    loaded = {kind: load_detector(sources.get(kind), kind, device=dev) for kind in sorted(needed)}

    def evaluate(snap) -> list[tuple[str, float, float]]:
        results = metrics_pkg.evaluate(snap.G_ema, list(names), str(snap.dataset.path), run_dir=snap.run_dir,
                                       snapshot=snap.path.name if snap.path else None, device=snap.device,
                                       mirror=snap.dataset.mirror, rank=snap.rank, num_gpus=snap.world_size,
                                       detector=loaded or None)
        return [(key, float(value), result.total_time) for result in results
                for key, value in result.results.items() if isinstance(value, (int, float)) and math.isfinite(value)]
    return SnapshotMetrics(tuple(names), evaluate, check=partial(metrics_pkg.check_suits, list(names)))


def _metric_names(spec: str, device: str) -> tuple[str, ...]:
    spec = (spec or "none").strip().lower()
    if spec in ("none", ""):
        return ()
    if spec == "auto":
        import torch
        try:
            from .. import metrics as metrics_pkg
        except ImportError:
            return ()
        on_gpu = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
        available = getattr(metrics_pkg, "METRICS", ())
        if on_gpu and hasattr(metrics_pkg, "compute_metric") and "fid50k_full" in available:
            return ("fid50k_full",)
        return ()
    return tuple(n.strip() for n in spec.split(",") if n.strip())

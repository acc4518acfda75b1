"""``stylegan metrics``: FID, KID, precision/recall, IS, PPL and equivariance of a model, one JSON line each."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (
    check_gpus,
    device_option,
    gpus_option,
    network_option,
    precision_options,
    switch_option,
)


def _list_metrics() -> None:
    from ..metrics import METRICS
    for spec in METRICS.values():
        needs = [f"{spec.detector} detector"] if spec.detector else ["no detector"]
        if spec.needs_data:
            needs.append("real images")
        click.echo(f"{spec.name_for(spec.default_num):<14} {spec.description} [{', '.join(needs)}]")


@click.command()
@network_option
@click.option("--metrics", "metric_names", default="fid50k_full", show_default=True, metavar="NAMES",
              help="Comma-separated metrics, e.g. fid50k_full,kid50k_full,pr50k3_full,ppl2_wend,eqt50k_int,"
                   "eqt50k_frac,eqr50k (see --list). The count in a name is the number of samples.")
@click.option("--data", default=None, metavar="DATASET",
              help="Real images: a dataset folder or zip at the model's resolution (default: the training set "
                   "recorded in the model file).")
@click.option("--detector", "detectors", multiple=True, metavar="[KIND=]PATH|URL",
              help="Detector TorchScript file: inception=PATH (FID, KID, IS) and/or vgg16=PATH (PR, PPL); "
                   "a bare PATH when the metrics need one kind. Default: NVIDIA's published files, "
                   "downloaded once into the cache.")
@click.option("--num-gen", type=click.IntRange(min=2), default=None, metavar="N",
              help="Samples per metric instead of the count in its name (fid50k_full with --num-gen 1000 "
                   "reports fid1k_full).")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per detector batch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the generated samples.")
@click.option("--no-cache", is_flag=True, help="Recompute the real-image statistics instead of reusing them.")
@click.option("--list", "list_only", is_flag=True, help="List the metrics and what each needs, then exit.")
@switch_option("--mirror", default=None, show_default=False,
               help="The legacy metrics (fid50k, kid50k, pr50k3) also read x-flipped real images. Default: as "
                    "the model's training set was (recorded in the model file).")
@switch_option("--verbose", default=True, help="Progress bars (--verbose=0 is --quiet).")
@gpus_option("metrics")
@device_option
@precision_options
@click.pass_context
def metrics(ctx, network, metric_names, data, detectors, num_gen, batch_size, seed, no_cache, list_only, mirror,
            verbose, gpus, device, precision):
    """Measure a model; prints one JSON line per metric and, for a snapshot inside a training run
    folder, appends it to metric-<name>.jsonl there. Under torchrun the processes share the work
    (same numbers as one process); process 0 prints and writes."""
    if list_only:
        _list_metrics()
        return
    from ..checkpoints import load_network
    from ..devices import half_dtype
    from ..errors import UserInputError
    from ..metrics import (
        append_record,
        compute_metric,
        is_training_run_dir,
        parse_metric,
        required_detectors,
    )
    from ..perception.detectors import parse_detector_args
    from ..train import distributed

    check_gpus(ctx, gpus)
    if not verbose:
        from ..progress import set_quiet
        set_quiet(True)
    if metric_names.strip().lower() == "none":                  # NVIDIA's calc_metrics.py --metrics none
        click.echo("--metrics none: nothing to compute", err=True)
        return
    names = [n.strip() for n in metric_names.split(",") if n.strip()]
    if not names:
        raise UserInputError("--metrics is empty; name at least one metric (see --list)")
    specs = [parse_metric(n, num_gen) for n in names]
    detector_map = parse_detector_args(detectors, required_detectors(names))
    _, dev = distributed.init(device)      # joins torchrun's process group, if any
    try:
        half = half_dtype(precision or "fp32", dev)
        ckpt = load_network(network, which=("G_ema", "G"))
        G = ckpt.generator().to(dev).eval().requires_grad_(False)
        G.set_half_dtype(half)
        if data is None and any(spec.needs_data for spec, _, _ in specs):
            data = (ckpt.training_set_kwargs or {}).get("path")
            if not data or not Path(data).exists():
                raise UserInputError("give the real images with --data DATASET (the model file records no usable "
                                     "training set path)")
        if mirror is None:
            mirror = bool((ckpt.training_set_kwargs or {}).get("xflip", False))
        run_dir = Path(ckpt.path).parent if ckpt.path else None
        snapshot = Path(ckpt.path).name if ckpt.path else None
        for name in names:
            result = compute_metric(name, G, data, num_gen=num_gen, detector=detector_map, batch_size=batch_size,
                                    seed=seed, cache=not no_cache, mirror=mirror)
            if result is None:        # not process 0
                continue
            click.echo(json.dumps(result.record(snapshot)))
            if run_dir is not None and is_training_run_dir(run_dir):
                append_record(result, run_dir, snapshot)
    finally:
        distributed.shutdown()

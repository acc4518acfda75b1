"""Quality metrics of generators: FID, KID, precision/recall, Inception Score, PPL, and StyleGAN3's
equivariance (EQ-T, EQ-T_frac, EQ-R), under the names NVIDIA's tools use.

``compute_metric('fid50k_full', G, 'dataset.zip')`` returns a :class:`MetricResult`; its
:meth:`~MetricResult.record` is the JSON line NVIDIA's tools write (``results``, ``metric``,
``total_time``, ...) plus the detector that made the numbers. The sample count is part of the name
(``fid10k_full`` generates 10 000 images) or set with ``num_gen``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import torch

from ..errors import UserInputError
from ..perception.detectors import DEFAULT_DETECTORS, Detector, load_detector
from .data import open_images
from .distributed import current_shard

RUN_DIR_MARKER = "training_options.json"


@dataclass(frozen=True)
class MetricSpec:
    template: str          # name with '{n}' where the sample count goes ('fid{n}_full'), or a fixed name
    default_num: int       # samples (generated images, pairs, or transforms x batch) by default
    detector: str | None   # 'inception' | 'vgg16' | None (no detector)
    needs_data: bool       # needs real images (labels alone are optional)
    description: str
    run: Callable = field(repr=False, compare=False)   # (G, data, detector, num, name, batch_size, seed, cache) -> dict

    @property
    def count_needs_k(self) -> bool:
        """Whether digits follow the count in the name (``pr{n}3_full``): then the count is always
        written with ``k`` (``pr0.1k3_full`` = 100 samples, k = 3), never as ``pr1003_full``."""
        return "{n}" in self.template and self.template.split("{n}")[1][:1].isdigit()

    def name_for(self, num: int) -> str:
        if "{n}" in self.template:
            return self.template.format(n=format_count(num, always_k=self.count_needs_k))
        return self.template if num == self.default_num else f"{self.template}_{format_count(num)}"

    def parse(self, name: str) -> int | None:
        """The sample count a name asks for, or None if the name is not this metric."""
        if "{n}" in self.template:
            before, after = self.template.split("{n}")
            count = r"\d+(?:\.\d+)?k" if self.count_needs_k else r"\d+k?"
            pattern = f"^{re.escape(before)}({count}){re.escape(after)}$"
        else:
            pattern = f"^{re.escape(self.template)}(?:_(\\d+k?))?$"
        m = re.match(pattern, name)
        if m is None:
            if self.count_needs_k and re.match(f"^{re.escape(before)}\\d+{re.escape(after)}$", name):
                raise UserInputError(f"{name} is ambiguous: write its sample count with k, e.g. "
                                     f"{self.template.format(n='0.1k')} for 100 samples")
            return None
        return parse_count(m.group(1)) if m.group(1) else self.default_num


def format_count(n: int, always_k: bool = False) -> str:
    """10000 -> '10k', 1500 -> '1500' (or '1.5k' with ``always_k``), 100 -> '100' (or '0.1k')."""
    if n % 1000 == 0 and n >= 1000:
        return f"{n // 1000}k"
    if not always_k:
        return str(n)
    return f"{n // 1000}.{n % 1000:03d}".rstrip("0") + "k"


def parse_count(text: str) -> int:
    if not text.endswith("k"):
        return int(text)
    value = Decimal(text[:-1]) * 1000
    if value != value.to_integral_value():
        raise UserInputError(f"sample count {text} is not a whole number of samples")
    return int(value)


def _fid(max_real, G, data, det, num, name, batch_size, seed, cache):
    from .fid import compute_fid
    return compute_fid(G, data, det, num_gen=num, max_real=max_real if max_real != "num" else num,
                       batch_size=batch_size, seed=seed, cache=cache, name=name)


def _kid(max_real, G, data, det, num, name, batch_size, seed, cache):
    from .kid import compute_kid
    return compute_kid(G, data, det, num_gen=num, max_real=max_real if max_real != "num" else num,
                       batch_size=batch_size, seed=seed, cache=cache, name=name)


def _pr(max_real, G, data, det, num, name, batch_size, seed, cache):
    from .precision_recall import compute_pr
    return compute_pr(G, data, det, num_gen=num, max_real=max_real if max_real != "num" else num,
                      batch_size=batch_size, seed=seed, cache=cache, name=name)


def _is(G, data, det, num, name, batch_size, seed, cache):
    from .inception_score import compute_is
    return compute_is(G, data, det, num_gen=num, batch_size=batch_size, seed=seed, name=name)


def _ppl(space, sampling, crop, G, data, det, num, name, batch_size, seed, cache):
    from .ppl import compute_ppl
    return compute_ppl(G, det, num_samples=num, space=space, sampling=sampling, crop=crop, seed=seed,
                       labels=getattr(data, "labels", None), name=name)


def _eq(kind, G, data, det, num, name, batch_size, seed, cache):
    from .equivariance import compute_equivariance
    return compute_equivariance(G, kind, num_samples=num, seed=seed, labels=getattr(data, "labels", None), name=name)


#: Metrics by their default name ('fid50k_full'); any count works too ('fid10k_full', see parse_metric).
METRICS: dict[str, MetricSpec] = {s.name_for(s.default_num): s for s in [
    MetricSpec("fid{n}_full", 50_000, "inception", True, "Fréchet Inception Distance, all real images (lower is better)",
               partial(_fid, None)),
    MetricSpec("kid{n}_full", 50_000, "inception", True, "Kernel Inception Distance, up to 1M real images (lower is better)",
               partial(_kid, 1_000_000)),
    MetricSpec("pr{n}3_full", 50_000, "vgg16", True, "precision and recall, k=3, up to 200k real images (higher is better)",
               partial(_pr, 200_000)),
    MetricSpec("ppl2_wend", 50_000, "vgg16", False, "perceptual path length in W, endpoints, full image (lower is smoother)",
               partial(_ppl, "w", "end", False)),
    MetricSpec("eqt{n}_int", 50_000, None, False, "EQ-T: PSNR under integer translation, StyleGAN3 (dB, higher is better)",
               partial(_eq, "int")),
    MetricSpec("eqt{n}_frac", 50_000, None, False, "EQ-T_frac: PSNR under sub-pixel translation, StyleGAN3 (dB)",
               partial(_eq, "frac")),
    MetricSpec("eqr{n}", 50_000, None, False, "EQ-R: PSNR under rotation, StyleGAN3 (dB)", partial(_eq, "rot")),
    MetricSpec("is{n}", 50_000, "inception", False, "Inception Score, 10 splits (higher is better)", _is),
    MetricSpec("fid{n}", 50_000, "inception", True, "legacy FID: as many real images as generated", partial(_fid, "num")),
    MetricSpec("kid{n}", 50_000, "inception", True, "legacy KID: as many real images as generated", partial(_kid, "num")),
    MetricSpec("pr{n}3", 50_000, "vgg16", True, "legacy precision/recall: as many real images as generated",
               partial(_pr, "num")),
    MetricSpec("ppl_zfull", 50_000, "vgg16", False, "PPL in Z, full paths, cropped image (StyleGAN1 definition)",
               partial(_ppl, "z", "full", True)),
    MetricSpec("ppl_wfull", 50_000, "vgg16", False, "PPL in W, full paths, cropped image", partial(_ppl, "w", "full", True)),
    MetricSpec("ppl_zend", 50_000, "vgg16", False, "PPL in Z, endpoints, cropped image", partial(_ppl, "z", "end", True)),
    MetricSpec("ppl_wend", 50_000, "vgg16", False, "PPL in W, endpoints, cropped image", partial(_ppl, "w", "end", True)),
]}


def parse_metric(name: str, num_gen: int | None = None) -> tuple[MetricSpec, int, str]:
    """``'fid10k_full'`` -> (spec, 10000, 'fid10k_full'); ``num_gen`` overrides the count (and the name)."""
    for spec in METRICS.values():
        num = spec.parse(name.strip())
        if num is not None:
            if num_gen is not None:
                num = num_gen
            if num < 2:
                raise UserInputError(f"{name}: needs at least 2 samples, got {num}")
            return spec, num, spec.name_for(num)
    known = ", ".join(s.name_for(s.default_num) for s in METRICS.values())
    raise UserInputError(f"unknown metric {name!r}; known: {known} (the count may change, e.g. fid10k_full)")


def check_suits(names: list[str], shape: tuple[int, int], variant: str) -> None:
    """UserInputError if one of the metrics ``names`` cannot be measured on a ``variant`` model
    ('stylegan2', 'stylegan3-t', ...) of ``shape = (H, W)`` (the equivariance metrics: square StyleGAN3
    only), so that a training run can refuse it before it starts."""
    from .equivariance import check_model
    for name in names:
        spec, _, full_name = parse_metric(name)
        if spec.template.startswith("eq"):
            check_model(shape, variant, variant.startswith("stylegan3"), full_name)


def required_detectors(names: list[str]) -> set[str]:
    return {parse_metric(n)[0].detector for n in names} - {None}


@dataclass
class MetricResult:
    metric: str                     # 'fid50k_full'
    results: dict[str, float]       # {'fid50k_full': 3.21} or {'pr50k3_full_precision': ..., ..._recall: ...}
    detector: str                   # 'inception-2015-12-05.pt (sha256:...)' or 'none'
    total_time: float               # seconds
    num_gen: int
    num_real: int | None = None
    dataset: str | None = None
    real_stats_cached: bool | None = None
    timestamp: float = field(default_factory=time.time)   # when the metric finished
    num_gpus: int = 1               # processes that shared the work (torchrun)
    seed: int = 0
    precision: str = "fp32"         # of the generator's fp16-capable layers: 'fp32' (our default), 'fp16', 'bf16'

    def record(self, snapshot: str | None = None) -> dict:
        """The JSON line NVIDIA's tools write, plus detector, counts, dataset, seed and the
        generator precision (NVIDIA's tools run the fp16 layers in fp16 on GPUs; see docs/metrics.md)."""
        return {"results": self.results, "metric": self.metric, "total_time": self.total_time,
                "total_time_str": format_time(self.total_time), "num_gpus": self.num_gpus, "snapshot_pkl": snapshot,
                "timestamp": self.timestamp, "detector": self.detector, "num_gen": self.num_gen,
                "num_real": self.num_real, "dataset": self.dataset, "seed": self.seed, "precision": self.precision}


def format_time(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s"


def _pick_detector(detector, kind: str, device: torch.device, lpips: bool = False):
    if isinstance(detector, dict):
        detector = detector.get(kind)
    if lpips and hasattr(detector, "features") and hasattr(detector, "name") and not isinstance(detector, Detector):
        return detector   # a perceptual loss from stylegan.perception.lpips (PPL only)
    return load_detector(detector, kind=kind, device=device)


def compute_metric(name: str, G, data=None, *, num_gen: int | None = None, detector=None,
                   batch_size: int = 64, seed: int = 0, cache: bool = True, device=None, mirror: bool = False,
                   rank: int = 0, num_gpus: int = 1) -> MetricResult | None:
    """Compute one metric of generator ``G`` (on its device).

    ``data``: the real images (dataset folder or zip, an opened training dataset, uint8 array, or
    iterable of uint8 batches); required by FID/KID/PR, optional otherwise (its labels condition a
    conditional model). ``detector``: None (NVIDIA's published file for the metric, downloaded once),
    a path or URL, a loaded :class:`Detector`, or ``{'inception': ..., 'vgg16': ...}``.
    ``cache``: reuse real-image statistics from earlier runs (``$STYLEGAN_CACHE/metrics``).
    ``device``: where the detector runs (default: G's device). ``mirror``: the legacy metrics
    (``fid50k``, ``kid50k``, ``pr50k3``) also read the mirrored copies of a mirrored training set, as
    NVIDIA's do; the ``_full`` ones never do.

    In a ``torchrun`` process group every process must call this with the same arguments: the
    generated samples and real images are shared out batch by batch, process 0 gets the result (the
    same numbers one process computes) and the others None. Without a process group, ``rank`` > 0
    returns None at once (process 0 computes alone).
    """
    spec, num, full_name = parse_metric(name, num_gen)
    shard = current_shard()
    if shard.world == 1 and rank != 0:
        return None
    g_device = next(G.parameters()).device
    device = torch.device(device) if device is not None else g_device
    if spec.needs_data and data is None:
        raise UserInputError(f"{full_name} compares with real images: give the dataset (--data DATASET)")
    legacy = spec.needs_data and not spec.template.endswith("_full")
    images = open_images(data, resolution=G.img_shape, channels=G.img_channels, use_labels=G.c_dim > 0,
                         mirror=mirror and legacy) if data is not None else None
    det = _pick_detector(detector, spec.detector, device, lpips=spec.template.startswith("ppl")) \
        if spec.detector else None
    start = time.time()
    out = spec.run(G, images, det, num, full_name, batch_size, seed, cache)
    if out is None:         # not process 0
        return None
    results = {}
    for key, value in out.items():
        if key.startswith("_"):
            continue
        suffix = {"precision": "_precision", "recall": "_recall", "is_mean": "_mean", "is_std": "_std"}.get(key, "")
        results[full_name + suffix] = float(value)
    fp32_only = spec.template.startswith(("ppl", "eq"))     # PPL and EQ always synthesise in fp32
    return MetricResult(metric=full_name, results=results, detector=det.name if det else "none",
                        total_time=time.time() - start, num_gen=num, num_real=out.get("_num_real"),
                        dataset=getattr(images, "name", None) if spec.needs_data else None,
                        real_stats_cached=out.get("_real_cached"), num_gpus=shard.world, seed=seed,
                        precision="fp32" if fp32_only else generator_precision(G))


def generator_precision(G) -> str:
    """'fp32', 'fp16' or 'bf16': how ``G`` runs its fp16-capable layers (``G.set_half_dtype``)."""
    half = getattr(G.synthesis, "half_dtype", None)
    if half is None or next(G.parameters()).device.type != "cuda":    # the networks use half types on CUDA only
        return "fp32"
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(half, str(half))


def is_training_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / RUN_DIR_MARKER).is_file()


def append_record(result: MetricResult, run_dir: str | os.PathLike, snapshot: str | None = None) -> Path:
    """Append the result's JSON line to ``run_dir/metric-<name>.jsonl`` (one write, so lines never mix)."""
    path = Path(run_dir) / f"metric-{result.metric}.jsonl"
    line = json.dumps(result.record(snapshot)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return path


def evaluate(G, metrics: list[str], data=None, *, run_dir: str | os.PathLike | None = None,
             snapshot: str | None = None, **kwargs) -> list[MetricResult]:
    """Compute several metrics (e.g. during training) and append each record to ``run_dir``."""
    results = []
    for name in metrics:
        result = compute_metric(name, G, data, **kwargs)
        if result is None:      # not the main process
            continue
        if run_dir is not None:
            append_record(result, run_dir, snapshot)
        results.append(result)
    return results


__all__ = [
    "DEFAULT_DETECTORS",
    "METRICS",
    "Detector",
    "MetricResult",
    "MetricSpec",
    "append_record",
    "compute_metric",
    "evaluate",
    "is_training_run_dir",
    "load_detector",
    "parse_metric",
    "required_detectors",
]

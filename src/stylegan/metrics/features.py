"""Streaming images through a detector: generated images in batches, real images with their
statistics cached on disk (keyed by dataset, detector and options), never kept all in memory
unless a metric needs every feature vector (KID, precision/recall). Under ``torchrun`` the batches
are shared out over the processes (:mod:`.distributed`) and the numbers are the one-process ones."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..checkpoints.download import cache_dir
from ..errors import DatasetError
from ..files import atomic_write
from ..perception.detectors import Detector
from ..progress import progress
from .distributed import (
    Shard,
    batch_seeds,
    broadcast_flag,
    current_shard,
    gather_rows,
    sharded_map,
)

CACHE_VERSION = 1


class FeatureStats:
    """Running statistics of feature vectors: every vector (``capture_all``) and/or the float64 sums
    that give the mean and covariance (``capture_mean_cov``), up to ``max_items`` vectors."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features: int | None = None
        self._all: list[np.ndarray] = []
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None
        self.from_cache = False
        self.cache_path: Path | None = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray | torch.Tensor) -> None:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self._sum = np.zeros([x.shape[1]], dtype=np.float64)
                self._outer = np.zeros([x.shape[1]] * 2, dtype=np.float64)
        elif x.shape[1] != self.num_features:
            raise ValueError(f"feature size changed from {self.num_features} to {x.shape[1]}")
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if not len(x):
            return
        self.num_items += len(x)
        if self.capture_all:
            self._all.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self._sum += x64.sum(axis=0)
            self._outer += x64.T @ x64

    def get_all(self) -> np.ndarray:
        if not self.capture_all:
            raise RuntimeError("these statistics did not keep every feature vector")
        return np.concatenate(self._all) if self._all else np.zeros([0, self.num_features or 0], np.float32)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (biased, divided by N) covariance in float64."""
        if not self.capture_mean_cov:
            raise RuntimeError("these statistics did not keep the mean and covariance")
        if self.num_items == 0:
            raise DatasetError("no images went through the detector")
        mean = self._sum / self.num_items
        cov = self._outer / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, path: Path) -> None:
        arrays = {"num_items": np.int64(self.num_items)}
        if self.capture_all:
            arrays["all"] = self.get_all()
        if self.capture_mean_cov:
            arrays["sum"], arrays["outer"] = self._sum, self._outer
        _atomic_savez(path, arrays)

    @classmethod
    def load(cls, path: Path, capture_all: bool, capture_mean_cov: bool, max_items: int | None) -> FeatureStats:
        with np.load(path, allow_pickle=False) as d:
            stats = cls(capture_all, capture_mean_cov, max_items)
            stats.num_items = int(d["num_items"])
            if capture_all:
                stats._all = [d["all"]]
                stats.num_features = d["all"].shape[1]
            if capture_mean_cov:
                stats._sum, stats._outer = d["sum"], d["outer"]
                stats.num_features = d["sum"].shape[0]
        stats.from_cache = True
        stats.cache_path = path
        return stats


def _atomic_savez(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def stats_cache_path(data, detector: Detector, options: dict) -> Path | None:
    """``<cache>/metrics/<dataset>-<detector>-<md5 of everything that changes the numbers>.npz``,
    or None when the data cannot be fingerprinted (an anonymous stream of batches)."""
    fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else None
    if fingerprint is None:
        return None
    key = json.dumps({"version": CACHE_VERSION, "data": fingerprint, "detector": detector.sha256,
                      "kind": detector.kind, **options}, sort_keys=True)
    digest = hashlib.md5(key.encode()).hexdigest()
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in getattr(data, "name", "data"))
    return cache_dir() / "metrics" / f"{safe}-{Path(detector.file_name or detector.path.name).stem}-{digest}.npz"


def real_features(data, detector: Detector, *, max_items: int | None = None, capture_all: bool = False,
                  capture_mean_cov: bool = False, batch_size: int = 64, cache: bool = True,
                  desc: str = "real images", shard: Shard | None = None) -> FeatureStats | None:
    """Detector features of (up to ``max_items``) real images in dataset order; read from / written to
    the cache. With several processes each reads and runs its share of the batches; process 0 gets
    the statistics, the others None."""
    shard = shard or current_shard()
    path = stats_cache_path(data, detector, {"max_items": max_items, "capture_all": capture_all,
                                             "capture_mean_cov": capture_mean_cov}) if cache else None
    cached = _load_cached(path, capture_all, capture_mean_cov, max_items) if shard.is_main else None
    if broadcast_flag(shard, cached is not None):    # every process takes the same branch
        return cached
    stats = FeatureStats(capture_all, capture_mean_cov, max_items)
    total = len(data) if _has_len(data) else None
    if total is not None and max_items is not None:
        total = min(total, max_items)
    batches = _keep_batches(data, batch_size, max_items, lambda b: b % shard.world == shard.rank)
    with progress(total=total, desc=desc, unit="img", disable=not shard.is_main) as bar:
        while group := list(itertools.islice(batches, shard.world)):   # one batch per process and round
            mine = group[shard.rank] if shard.rank < len(group) else None
            feats = detector.features(torch.from_numpy(np.asarray(mine))) if mine is not None else None
            for part in gather_rows(shard, feats, torch.float32):
                stats.append(part)
                bar.update(len(part))
    if not shard.is_main:
        return None
    if stats.num_items == 0:
        raise DatasetError(f"dataset {getattr(data, 'name', '')} yielded no images")
    if path is not None:
        stats.save(path)
        stats.cache_path = path
    return stats


def _load_cached(path: Path | None, capture_all: bool, capture_mean_cov: bool,
                 max_items: int | None) -> FeatureStats | None:
    if path is None or not path.exists():
        return None
    try:
        return FeatureStats.load(path, capture_all, capture_mean_cov, max_items)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        warnings.warn(f"ignoring unreadable cached statistics {path}: {exc}")
        return None


def _keep_batches(data, batch_size: int, max_items: int | None, keep) -> Iterator[np.ndarray | None]:
    """``data.batches`` where batches that ``keep`` rejects are None (and, where the source can,
    never read)."""
    if "keep" in inspect.signature(data.batches).parameters:
        yield from data.batches(batch_size, max_items, keep=keep)
        return
    for b, batch in enumerate(data.batches(batch_size, max_items)):   # a source of another kind
        yield batch if keep(b) else None


def _has_len(data) -> bool:
    try:
        len(data)
        return True
    except TypeError:
        return False


def generated_batch(G, n: int, *, batch: int, seed: int = 0, labels: np.ndarray | None = None,
                    noise_mode: str = "random", chunk: int = 4) -> torch.Tensor:
    """Batch number ``batch`` of a metric run's generated images (``n`` of them), uint8 [n, C, H, W]
    on G's device.

    NVIDIA's definition: ``z ~ N(0, I)``; labels of dataset images drawn uniformly (each image's
    label equally likely; uniform classes when ``labels`` is None); psi = 1; noise inputs random;
    G evaluated ``chunk`` (4) samples at a time; ``(x * 127.5 + 128).clamp(0, 255)`` truncated to
    uint8. The random numbers come from three independent streams seeded by (``seed``, ``batch``),
    so batch ``batch`` is the same images in any process."""
    device = next(G.parameters()).device
    z_seed, label_seed, noise_seed = batch_seeds(seed, batch)
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(z_seed))
    c = random_labels(G.c_dim, n, np.random.RandomState(label_seed), labels)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    out = []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():   # noise inputs draw from the global generators
        torch.manual_seed(noise_seed)
        for i in range(0, n, chunk):
            img = G(z[i:i + chunk].to(device), c[i:i + chunk].to(device), truncation_psi=1, noise_mode=noise_mode)
            out.append(to_uint8(img))
    return torch.cat(out)


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """NVIDIA's metric conversion: ``x * 127.5 + 128``, clamped to [0, 255], truncated (so a value
    rounds half up from ``x * 127.5 + 127.5``)."""
    return (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def generated_images(G, num: int, *, batch_size: int = 64, seed: int = 0, labels: np.ndarray | None = None,
                     noise_mode: str = "random") -> Iterator[torch.Tensor]:
    """All ``num`` images of a metric run in one process, batch by batch (uint8 [B, C, H, W])."""
    for b, start in enumerate(range(0, num, batch_size)):
        yield generated_batch(G, min(batch_size, num - start), batch=b, seed=seed, labels=labels,
                              noise_mode=noise_mode)


def random_labels(c_dim: int, n: int, rng: np.random.RandomState, labels: np.ndarray | None) -> torch.Tensor:
    """``n`` labels: those of uniformly drawn dataset images (``labels`` [N, c_dim]), or one-hot
    uniform classes when there are none; [n, 0] for an unconditional model."""
    if c_dim == 0:
        return torch.zeros([n, 0])
    if labels is not None and len(labels):
        if labels.shape[1] != c_dim:
            raise DatasetError(f"the dataset has {labels.shape[1]}-dimensional labels but the model expects {c_dim}")
        return torch.from_numpy(np.asarray(labels[rng.randint(len(labels), size=n)], dtype=np.float32))
    return torch.from_numpy(np.eye(c_dim, dtype=np.float32)[rng.randint(c_dim, size=n)])


def generated_features(G, detector: Detector, *, num_gen: int, capture_all: bool = False,
                       capture_mean_cov: bool = False, batch_size: int = 64, seed: int = 0,
                       labels: np.ndarray | None = None, desc: str = "generated images",
                       shard: Shard | None = None, noise_mode: str = "random",
                       output: str = "features") -> FeatureStats | None:
    """Detector features (or, ``output='probabilities'``, Inception class probabilities) of
    ``num_gen`` generated images, ``batch_size`` per detector call; None outside process 0."""
    shard = shard or current_shard()

    def run(b: int) -> torch.Tensor:
        start = b * batch_size
        images = generated_batch(G, min(batch_size, num_gen - start), batch=b, seed=seed, labels=labels,
                                 noise_mode=noise_mode)
        return detector.probabilities(images) if output == "probabilities" else detector.features(images)

    stats = FeatureStats(capture_all, capture_mean_cov, num_gen)
    with progress(total=num_gen, desc=desc, unit="img", disable=not shard.is_main) as bar:
        for part in sharded_map(run, -(-num_gen // batch_size), shard):
            stats.append(part)
            bar.update(len(part))
    return stats if shard.is_main else None

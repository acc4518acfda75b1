"""Metrics across processes (``torchrun``): the work is cut into numbered batches, batch ``b`` runs on
process ``b mod world``, and process 0 receives every batch's result in batch order.

Each batch draws its random numbers from its own seed (:func:`batch_seeds`) and has the same size
and content however many processes there are, so process 0 accumulates exactly the numbers one
process would, in the same order: the metric is bit-for-bit the one-process value (on the same
kind of device). This mirrors what NVIDIA's multi-GPU metrics do (each GPU a strided share,
results collected), without their dependence of the random samples on the GPU count. The sharing
itself is the package's one scheme (:mod:`stylegan.distributed`); this module adds the per-batch seeds.
"""

from __future__ import annotations

import numpy as np

from ..distributed import Shard, broadcast_flag, current_shard, gather_rows, sharded_map  # noqa: F401 (the metrics' helpers)


def batch_seeds(seed: int, batch: int, count: int = 3) -> list[int]:
    """``count`` independent 32-bit seeds for batch number ``batch`` of a metric run with ``seed``
    (one per random stream: latents, labels, noise inputs...)."""
    return [int(s) for s in np.random.SeedSequence([seed % 2**63, batch]).generate_state(count)]

"""Training statistics: per-name running count/mean/std, summed over processes once per tick.

``stats.jsonl`` lines use NVIDIA's layout ``{"Loss/G/loss": {"num": n, "mean": m, "std": s}, ...,
"timestamp": t}`` so existing plotting scripts read our runs.
"""

from __future__ import annotations

import math

import torch

from .. import devices
from . import distributed


class Stats:
    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.dtype = devices.accumulation_dtype(self.device)
        self._acc: dict[str, torch.Tensor] = {}      # name -> [count, sum, sum of squares] (float64; MPS: float32)
        self.collections = 0                          # how many times collect() reset the accumulators

    def report(self, name: str, value) -> None:
        """Add the finite elements of ``value`` (tensor or number) to statistic ``name``.

        Everything stays on the device (no host synchronisation per call); values are read once per tick.
        """
        t = torch.as_tensor(value).detach().to(self.device, self.dtype).flatten()
        finite = torch.isfinite(t)
        t = torch.where(finite, t, torch.zeros_like(t))
        acc = torch.stack([finite.sum().to(self.dtype), t.sum(), t.square().sum()])
        if name in self._acc:
            self._acc[name] += acc
        else:
            self._acc[name] = acc

    def peek(self, names: list[str]) -> dict[str, float]:
        """Means so far of this process's statistics ``names`` (no reduction over processes, no reset):
        what the progress bar shows between ticks."""
        return {name: total / num for name, (num, total) in self.totals(names).items() if num > 0}

    def totals(self, names: list[str]) -> dict[str, tuple[float, float]]:
        """(count, sum) so far of this process's statistics ``names`` that exist (no reduction, no reset)."""
        return {name: tuple(self._acc[name].tolist()[:2]) for name in names if name in self._acc}

    def collect(self, names: list[str] | None = None) -> dict[str, dict[str, float]]:
        """Sum over processes and return ``{name: {num, mean, std}}``; resets the accumulators.

        Every process must call this at the same point; ``names`` (the same list on every
        process) fixes which statistics are reduced, so a name missing on one process is zero there.
        """
        names = sorted(self._acc) if names is None else names
        if not names:
            self.collections += 1
            return {}
        stacked = torch.stack([self._acc.get(n, torch.zeros(3, dtype=self.dtype, device=self.device))
                               for n in names])
        distributed.all_reduce_sum(stacked)
        self._acc.clear()
        self.collections += 1
        out = {}
        for name, (num, total, sq) in zip(names, stacked.tolist()):
            if num <= 0:
                continue
            mean = total / num
            out[name] = {"num": num, "mean": mean, "std": math.sqrt(max(sq / num - mean * mean, 0.0))}
        return out

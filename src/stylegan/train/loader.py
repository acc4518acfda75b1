"""The real images of each training step, read one step ahead."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from ..data.dataset import ImageDataset, sample_indices


class RealLoader:
    """The real images of one step for this process's micro-batches, decoded one step ahead in a thread.

    Which images a step uses is known in advance (:func:`sample_indices`), so datasets too large to keep
    in memory are read while the previous step computes; in-memory datasets are simply indexed.
    """

    def __init__(self, dataset: ImageDataset, seed: int, batch_gpu: int, micro_batches: list[int], device):
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

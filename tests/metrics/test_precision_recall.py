import numpy as np
import pytest
import torch

from stylegan.metrics.precision_recall import knn_radii, precision_recall


def _lattice(n=8, offset=(0.0, 0.0)):
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(np.float32)
    return g + np.asarray(offset, np.float32)


def test_identical_sets_have_full_precision_and_recall():
    real = _lattice()
    assert precision_recall(real, real + 0.1, k=3) == (1.0, 1.0)


def test_disjoint_sets_have_none():
    real = _lattice()
    assert precision_recall(real, real + 100, k=3) == (0.0, 0.0)


def test_half_of_the_samples_off_the_manifold_halves_precision_but_keeps_recall():
    real = _lattice()
    gen = np.concatenate([real + 0.1, real + 100])
    precision, recall = precision_recall(real, gen, k=3, block=10)
    assert precision == pytest.approx(0.5) and recall == 1.0


def test_mode_collapse_keeps_precision_but_loses_recall():
    real = _lattice()
    gen = real[real[:, 0] < 2] + 0.05    # only the two leftmost columns of the real lattice
    precision, recall = precision_recall(real, gen, k=3)
    assert precision == 1.0 and recall == pytest.approx(24 / 64)   # columns 0-2 lie within radius 1


def test_batched_computation_matches_a_brute_force_one():
    rng = np.random.RandomState(0)
    real, gen = rng.randn(53, 6).astype(np.float32), (rng.randn(41, 6) * 1.3 + 0.2).astype(np.float32)

    def brute(a, b, k):
        da = np.linalg.norm(a[:, None] - a[None], axis=2)
        radii = np.sort(da, axis=1)[:, k]
        dba = np.linalg.norm(b[:, None] - a[None], axis=2)
        return float((dba <= radii[None]).any(axis=1).mean())

    p, r = precision_recall(real, gen, k=3, block=8)
    assert p == pytest.approx(brute(real, gen, 3)) and r == pytest.approx(brute(gen, real, 3))
    radii = knn_radii(torch.from_numpy(real).half(), 3, block=5)
    assert radii.dtype == torch.float16
    np.testing.assert_allclose(radii.float().numpy(), np.sort(np.linalg.norm(real[:, None] - real[None], axis=2), 1)[:, 3],
                               rtol=1e-3)

import itertools

import numpy as np
import pytest

from stylegan.metrics.kid import kernel_inception_distance, polynomial_mmd2


def _mmd2_by_pairs(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_unbiased_polynomial_mmd_matches_the_sum_over_pairs():
    rng = np.random.RandomState(0)
    x, y = rng.randn(9, 5), rng.randn(7, 5) + 0.5
    assert polynomial_mmd2(x, y) == pytest.approx(_mmd2_by_pairs(x, y), rel=1e-10)


def test_kid_with_one_subset_of_everything_is_the_mmd_of_the_whole_sets():
    rng = np.random.RandomState(1)
    x, y = rng.randn(30, 4), rng.randn(30, 4) * 1.5
    assert kernel_inception_distance(x, y, num_subsets=1, max_subset_size=1000) == \
        pytest.approx(polynomial_mmd2(x, y), rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    rng = np.random.RandomState(2)
    real = rng.randn(600, 8)
    same = rng.randn(600, 8)
    kid_same = kernel_inception_distance(same, real, num_subsets=20, max_subset_size=200)
    kid_small = kernel_inception_distance(same + 0.3, real, num_subsets=20, max_subset_size=200)
    kid_large = kernel_inception_distance(same + 1.0, real, num_subsets=20, max_subset_size=200)
    assert abs(kid_same) < 0.1 * kid_small < kid_small < kid_large


def test_kid_in_nvidias_float32_arithmetic_differs_only_by_round_off():
    rng = np.random.RandomState(3)
    gen, real = rng.rand(300, 64).astype(np.float32), (rng.rand(250, 64) * 1.1).astype(np.float32)
    k64 = kernel_inception_distance(gen, real, num_subsets=5, max_subset_size=200)
    k32 = kernel_inception_distance(gen, real, num_subsets=5, max_subset_size=200, dtype=np.float32)
    assert k32 != k64 and k32 == pytest.approx(k64, rel=1e-3)

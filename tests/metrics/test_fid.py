import numpy as np
import pytest
from scipy.stats import ortho_group
from support.detectors import write_images
from support.models import make_tiny_checkpoint

from stylegan.metrics import compute_metric
from stylegan.metrics.features import FeatureStats
from stylegan.metrics.fid import frechet_distance


def test_frechet_distance_of_gaussians_with_shared_axes_has_the_closed_form():
    # Same eigenvectors: FID = |mu1 - mu2|^2 + sum_i (s1_i - s2_i)^2 with s = standard deviations.
    q = ortho_group.rvs(5, random_state=0)
    s1, s2 = np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 2, 1, 4, 0.5])
    mu1, mu2 = np.arange(5.0), np.arange(5.0) + [1, 0, -2, 0, 0.5]
    fid = frechet_distance(mu1, q @ np.diag(s1**2) @ q.T, mu2, q @ np.diag(s2**2) @ q.T)
    assert fid == pytest.approx(np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2), rel=1e-9)


def test_frechet_distance_matches_an_eigenvalue_computation_for_general_covariances():
    rng = np.random.RandomState(1)
    a, b = rng.randn(6, 6), rng.randn(6, 6)
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.randn(6), rng.randn(6)
    # Tr((S1 S2)^1/2) = sum of square roots of the (real, positive) eigenvalues of S1 S2.
    tr_sqrt = np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).real).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, sigma1, mu1, sigma1) == pytest.approx(0, abs=1e-8)


def test_fid_of_sampled_gaussians_approaches_the_closed_form():
    rng = np.random.RandomState(2)
    x = rng.randn(20_000, 3) * [1, 2, 3]
    y = rng.randn(20_000, 3) * [2, 2, 1] + [1, 0, 0]
    sx, sy = FeatureStats(capture_mean_cov=True), FeatureStats(capture_mean_cov=True)
    sx.append(x)
    sy.append(y)
    fid = frechet_distance(*sx.get_mean_cov(), *sy.get_mean_cov())
    assert fid == pytest.approx(1 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2, rel=0.03)


def test_fid_ranks_a_dataset_of_the_models_own_images_far_better_than_another_dataset(tmp_path, inception_file,
                                                                                        real_folder):
    G = make_tiny_checkpoint("stylegan2").G_ema
    from stylegan.metrics.features import generated_images
    own = np.concatenate([b.permute(0, 2, 3, 1).numpy() for b in generated_images(G, 40, seed=123)])
    own_folder = write_images(tmp_path / "own", 0, images=own)
    near = [compute_metric("fid50k_full", G, own_folder, num_gen=40, detector=inception_file, seed=s) for s in range(3)]
    far = [compute_metric("fid50k_full", G, real_folder, num_gen=40, detector=inception_file, seed=s) for s in range(3)]
    assert near[0].metric == "fid40_full" and set(near[0].results) == {"fid40_full"}
    assert near[0].num_real == 40 and near[0].dataset == "own"
    median = lambda results: float(np.median([r.results["fid40_full"] for r in results]))   # 40 samples: noisy
    assert median(near) * 4 < median(far)
    assert near[0].detector.startswith("inception-tiny.pt (sha256:")

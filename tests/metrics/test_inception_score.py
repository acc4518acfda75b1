import numpy as np
import pytest

from stylegan.metrics.inception_score import inception_score


def test_confident_and_evenly_spread_predictions_score_the_number_of_classes():
    probs = np.eye(5)[np.arange(100) % 5]
    mean, std = inception_score(probs, num_splits=10)
    assert mean == pytest.approx(5) and std == pytest.approx(0, abs=1e-9)


def test_identical_predictions_score_one():
    probs = np.tile([0.1, 0.2, 0.7], (50, 1))
    assert inception_score(probs, num_splits=5)[0] == pytest.approx(1)


def test_the_score_is_exp_of_the_mean_kl_to_the_marginal():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    marginal = probs.mean(0)
    kl = (probs * np.log(probs / marginal)).sum(1).mean()
    assert inception_score(probs, num_splits=1)[0] == pytest.approx(np.exp(kl))

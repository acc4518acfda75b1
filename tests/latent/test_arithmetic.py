"""Latent arithmetic: directions, averages, differences, interpolation, truncation."""

import numpy as np
import pytest
import torch

from stylegan.checkpoints import load_generator
from stylegan.errors import UserInputError
from stylegan.latent.arithmetic import (
    add_direction,
    average_ws,
    difference,
    interpolate_ws,
    truncate_ws,
)
from stylegan.latent.seeds import z_from_seeds

rng = np.random.RandomState(0)
WS = rng.randn(2, 6, 4).astype(np.float32)


def test_add_direction_on_all_or_some_layers():
    d = np.arange(4, dtype=np.float32)
    out = add_direction(WS, d, 2.0)
    assert np.allclose(out, WS + 2 * d)
    some = add_direction(WS, d, 2.0, layers=[0, 1])
    assert np.allclose(some[:, :2], WS[:, :2] + 2 * d) and np.array_equal(some[:, 2:], WS[:, 2:])
    per_layer = rng.randn(6, 4).astype(np.float32)
    assert np.allclose(add_direction(WS[0], per_layer, -1), WS[:1] - per_layer)


def test_add_direction_with_several_alphas_is_ws_major():
    d = np.ones(4, np.float32)
    out = add_direction(WS, d, [-1, 0, 3])
    assert out.shape == (6, 6, 4)
    assert np.allclose(out[1], WS[0]) and np.allclose(out[2], WS[0] + 3) and np.allclose(out[3], WS[1] - 1)


def test_add_direction_checks_shapes():
    with pytest.raises(UserInputError, match="direction has shape"):
        add_direction(WS, np.ones(5), 1)
    with pytest.raises(UserInputError, match="out of range"):
        add_direction(WS, np.ones(4), 1, layers=[6])


def test_average_and_weighted_average():
    assert np.allclose(average_ws(WS)[0], WS.mean(0))
    assert np.allclose(average_ws(WS, [3, 1])[0], 0.75 * WS[0] + 0.25 * WS[1], atol=1e-6)
    with pytest.raises(UserInputError, match="need 2 weights"):
        average_ws(WS, [1])


def test_difference_is_the_step_from_a_to_b():
    d = difference(WS[:1], WS[1:])
    assert np.allclose(WS[0] + d, WS[1])
    unit = difference(WS[:1], WS[1:], normalize=True)
    assert np.allclose(np.linalg.norm(unit, axis=-1), 1)
    with pytest.raises(UserInputError, match="no direction"):
        difference(WS[:1], WS[:1], normalize=True)


def test_interpolate_ws():
    out = interpolate_ws(WS[0], WS[1], [0, 0.5, 1])
    assert np.array_equal(out[0], WS[0]) and np.array_equal(out[2], WS[1])
    assert np.allclose(out[1], (WS[0] + WS[1]) / 2)


def test_truncate_ws_matches_the_mapping_networks_truncation(sg2_model):
    G = load_generator(sg2_model)
    z = z_from_seeds([0, 1], G.z_dim)
    with torch.inference_mode():
        full = G.mapping(z, None).numpy()
        cut = G.mapping(z, None, truncation_psi=0.6, truncation_cutoff=3).numpy()
    assert np.allclose(truncate_ws(full, G.mapping.w_avg, 0.6, layers=range(3)), cut, atol=1e-6)

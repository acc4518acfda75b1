"""Editing and variations of a latent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.checkpoints import load_network
from stylegan.errors import UserInputError
from stylegan.latent import editing as E
from stylegan.latent.mixing import layer_groups
from stylegan.latent.sampling import GenerationRequest
from stylegan.latent.seeds import z_from_seeds


@pytest.fixture(scope="module")
def G(sg2_model):
    return load_network(sg2_model, which=("G_ema",)).G_ema


@pytest.fixture(scope="module")
def R(G):
    return GenerationRequest(G)


def _ws(G, seeds):
    return G.mapping(z_from_seeds(seeds, G.z_dim), None)


def test_parse_strengths():
    assert E.parse_strengths("-3:3:7") == pytest.approx([-3, -2, -1, 0, 1, 2, 3])
    assert E.parse_strengths("-2,0,2.5") == [-2, 0, 2.5]
    assert E.parse_strengths("1e-1") == [0.1]
    assert E.parse_strengths(2) == [2.0]
    for bad in ("", "a:b:c", "1:2:0", "nan"):
        with pytest.raises(UserInputError):
            E.parse_strengths(bad)


def test_apply_direction_moves_only_the_chosen_layers(G):
    ws = _ws(G, [0, 1])
    d = np.zeros(G.w_dim, np.float32)
    d[3] = 1
    out = E.apply_direction(ws, d, [-1, 0, 2], layers=[1, 2])
    assert out.shape == (2, 3, G.num_ws, G.w_dim)
    delta = out - ws[:, None]
    assert torch.allclose(delta[:, :, [1, 2], 3], torch.tensor([-1.0, 0, 2])[None, :, None].expand(2, 3, 2))
    delta[:, :, [1, 2], 3] = 0
    assert delta.abs().max() == 0
    with pytest.raises(UserInputError, match="w_dim"):
        E.apply_direction(ws, np.zeros(G.w_dim + 1), [1])


def test_truncation_sweep_ends_at_the_latent_and_at_the_mean(G, R):
    w = _ws(G, [5])[0]
    w_avg = G.mapping.w_avg
    imgs = E.truncation_sweep(R, w, [1.0, 0.0])
    assert np.array_equal(imgs[0], R.images(w[None])[0])
    assert np.array_equal(imgs[1], R.images(w_avg[None, None].repeat(1, G.num_ws, 1))[0])


def test_style_variations_take_each_group_from_the_seeds(G, R):
    w = _ws(G, [5])[0]
    seed_ws = _ws(G, [1, 2, 3])
    out = E.style_variations(R, w, seed_ws)
    groups = [g for g, idx in layer_groups(G).items() if idx]
    assert list(out) == groups
    base = R.images(w[None])[0]
    for g in groups:
        assert out[g].shape == (3, *base.shape)
        assert all(not np.array_equal(img, base) for img in out[g])


def test_noise_variations_differ_only_in_detail(G, R):
    w = _ws(G, [5])[0]
    imgs = E.noise_variations(R, w, 3, seed=1).astype(int)
    assert not np.array_equal(imgs[0], imgs[1])
    base = R.images(w[None])[0].astype(int)
    unrelated = R.images(_ws(G, [77]))[0].astype(int)
    assert np.abs(imgs[0] - base).mean() < 0.5 * np.abs(unrelated - base).mean()


def test_drawing_uses_a_projections_noise_maps(G, R):
    w = _ws(G, [5])
    noise = {k: torch.randn([1, 1, *m.shape]) for k, m in G.synthesis.noise_maps().items()}
    assert not np.array_equal(R.images(w, noise=noise), R.images(w))
    two = R.images(w.repeat(2, 1, 1), noise=noise)
    assert np.array_equal(two[0], two[1])


def test_pingpong_loops_through_both_ends():
    s = E.pingpong([-3, 3], 40)
    assert s[0] == 0 and s.max() == pytest.approx(3) and s.min() == pytest.approx(-3)
    assert len(s) == 40

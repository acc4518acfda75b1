"""Latents from seeds and from .npz files, mixed in one list."""

import numpy as np
import pytest

from stylegan.checkpoints import load_generator
from stylegan.errors import UserInputError
from stylegan.latent.io import save_ws
from stylegan.latent.sampling import GenerationRequest
from stylegan.latent.sources import as_ws_tensor


def parse_latents(G, items, truncation_psi=1.0):
    return GenerationRequest(G, truncation_psi).latents(items)


def seed_ws(G, seeds, truncation_psi=1.0):
    return GenerationRequest(G, truncation_psi).seed_latents(seeds).ws


@pytest.fixture(scope="module")
def G(sg2_model):
    return load_generator(sg2_model)


def test_seeds_and_files_in_order(G, tmp_path):
    saved = seed_ws(G, [7, 8])
    f = save_ws(tmp_path / "pair.npz", saved, seeds=[7, 8])
    single = save_ws(tmp_path / "one.npz", saved[:1])
    lat = parse_latents(G, f"1-2,{f},{single}")
    assert lat.labels == ["1", "2", "pair-00", "pair-01", "one"]
    assert lat.seeds == [1, 2, 7, 8, None]
    assert np.array_equal(lat.ws[2:4], saved) and np.array_equal(lat.ws[4], saved[0])
    assert np.array_equal(lat.ws[1], seed_ws(G, [2])[0])
    assert lat.z is None                                  # a file without z: no slerp through it
    assert parse_latents(G, [3, "4"]).z.shape == (2, G.z_dim)


def test_a_seeds_w_does_not_depend_on_the_other_seeds(G):
    assert np.array_equal(parse_latents(G, "1-9").ws[4], parse_latents(G, "5").ws[0])


def test_truncation_applies_to_seeds_only(G, tmp_path):
    f = save_ws(tmp_path / "a.npz", seed_ws(G, [5]))
    lat = parse_latents(G, ["5", f], truncation_psi=0.5)
    assert np.array_equal(lat.ws[0], seed_ws(G, [5], truncation_psi=0.5)[0])
    assert np.array_equal(lat.ws[1], seed_ws(G, [5])[0])


def test_single_w_files_are_broadcast_to_every_layer(G, tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, w=np.ones([1, G.w_dim], np.float32))    # NVIDIA-style single w
    lat = parse_latents(G, str(path))
    assert lat.ws.shape == (1, G.num_ws, G.w_dim) and (lat.ws == 1).all()


def test_bad_latents(G, tmp_path):
    np.savez(tmp_path / "bad.npz", ws=np.ones([1, 3, G.w_dim], np.float32))
    with pytest.raises(UserInputError, match="3 layers, the model has 8"):
        parse_latents(G, str(tmp_path / "bad.npz"))
    with pytest.raises(UserInputError, match="file not found"):
        parse_latents(G, "missing.npz")
    with pytest.raises(UserInputError, match="not a seed"):
        parse_latents(G, "1,x")
    with pytest.raises(UserInputError, match="NaN"):
        as_ws_tensor(G, np.full([1, G.num_ws, G.w_dim], np.nan))

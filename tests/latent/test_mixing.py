"""Style groups per model, layer specs, ws mixing and the mixing grid."""

import dataclasses

import numpy as np
import pytest
import torch
from support.models import tiny_config

from stylegan.checkpoints import load_generator
from stylegan.errors import UserInputError
from stylegan.latent.mixing import (
    layer_groups,
    layer_resolutions,
    mix_ws,
    parse_layers,
    render_style_mix,
)
from stylegan.latent.sampling import GenerationRequest
from stylegan.networks import Generator


def _sg3(resolution):
    cfg = tiny_config("stylegan3", resolution=resolution, channels=32)
    return Generator(dataclasses.replace(cfg, synthesis=dataclasses.replace(cfg.synthesis, num_layers=14,
                                                                            margin_size=10)))


@pytest.fixture(scope="module")
def G(sg2_model):
    return load_generator(sg2_model)


def test_stylegan2_1024_groups_are_the_papers_resolutions():
    G = Generator(tiny_config("stylegan2", resolution=1024, channels=4))
    assert G.num_ws == 18
    assert layer_resolutions(G)[:5] == [4, 4, 8, 8, 16] and layer_resolutions(G)[-1] == 1024
    assert layer_groups(G) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}


def test_stylegan3_groups_follow_the_layer_cutoffs():
    g1024 = _sg3(1024)   # official T/R 1024 layer schedule: cutoffs 2, 2, 3.2, 5.0, 8, 12.7, 20.2, 32, ...
    assert layer_groups(g1024) == {"coarse": [0, 1, 2], "middle": [3, 4, 5], "fine": list(range(6, 16))}
    g256 = _sg3(256)     # same split as a StyleGAN2 model of that size
    assert layer_groups(g256) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 16))}
    for g in (g1024, g256):  # every ws index is in exactly one group
        assert sorted(sum(layer_groups(g).values(), [])) == list(range(g.num_ws))


def test_parse_layers_specs(G):
    assert G.num_ws == 8
    assert parse_layers("coarse", G) == [0, 1, 2, 3]
    assert parse_layers("middle", G) == [4, 5, 6, 7]
    assert parse_layers("coarse+middle", G) == parse_layers("all", G) == list(range(8))
    assert parse_layers("0-2,5", G) == [0, 1, 2, 5]
    assert parse_layers("5-", G) == [5, 6, 7]
    assert parse_layers("-1", G) == [0, 1]
    assert parse_layers(" 3 ", 8) == [3]
    assert parse_layers([1, "6-7"], G) == [1, 6, 7]
    assert parse_layers(range(2), G) == [0, 1]


@pytest.mark.parametrize("spec, message", [
    ("0-8", "layer 8 is out of range: this model has 8 ws"),
    ("fine", "has no fine layers"),
    ("3-1", "end is smaller"),
    ("eyes", "not a layer"),
    ("", "no layers given"),
    ([9], "layer 9 is out of range"),
])
def test_parse_layers_rejects_bad_specs(G, spec, message):
    with pytest.raises(UserInputError, match=message):
        parse_layers(spec, G)


def test_group_names_need_the_model():
    with pytest.raises(UserInputError, match="depends on the model"):
        parse_layers("coarse", 18)


def test_mix_ws_takes_the_column_layers():
    a = np.zeros([2, 6, 4], np.float32)
    b = np.ones([3, 6, 4], np.float32)
    grid = mix_ws(a[:, None], b[None], [1, 4])
    assert grid.shape == (2, 3, 6, 4)
    assert (grid[..., [1, 4], :] == 1).all() and (grid[..., [0, 2, 3, 5], :] == 0).all()
    assert (a == 0).all()                                     # inputs untouched
    t = mix_ws(torch.zeros(6, 4), torch.ones(6, 4), [0])
    assert isinstance(t, torch.Tensor) and t[0].eq(1).all() and t[1:].eq(0).all()


def test_style_mix_images_are_synthesized_from_the_mixed_ws(G):
    request = GenerationRequest(G, truncation_psi=0.8)
    rows = torch.from_numpy(request.seed_latents([1, 2]).ws)
    cols = torch.from_numpy(request.seed_latents([3, 4, 5]).ws)
    res = render_style_mix(request, rows, cols, "middle", row_labels=[1, 2], col_labels=[3, 4, 5])
    assert res.layers == [4, 5, 6, 7]
    expected_ws = torch.cat([rows[1, :4], cols[2, 4:]])          # row 2 coarse, column 5 middle
    assert np.array_equal(res.mixed_ws[1, 2], expected_ws.numpy())
    direct = request.images(expected_ws[None])[0]
    assert np.abs(res.mixed[1, 2].astype(int) - direct).max() <= 1
    assert not np.array_equal(res.mixed[1, 2], res.row_images[1])  # the middle layers changed the image

    # grid: (1 + 2) x (1 + 3) cells of 32x32, blank corner, column images on top, row images on the left
    assert res.grid.shape == (3 * 32, 4 * 32, 3)
    assert (res.grid[:32, :32] == 0).all()
    assert np.array_equal(res.grid[:32, 32 * 3:], res.col_images[2])
    assert np.array_equal(res.grid[32 * 2:, :32], res.row_images[1])
    assert np.array_equal(res.grid[32 * 2:, 32 * 3:], res.mixed[1, 2])
    names = [name for name, _ in res.items()]
    assert names[:5] == ["1-1", "2-2", "3-3", "4-4", "5-5"] and "2-5" in names and len(names) == 5 + 6

"""Configs rebuild identical networks; inputs are checked with messages a user can act on."""

import pytest
import torch

from stylegan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from support.models import tiny_config


@pytest.mark.parametrize("generation", ["stylegan2", "stylegan3"])
def test_config_round_trips_through_json(generation):
    cfg = tiny_config(generation, c_dim=3)
    again = GeneratorConfig.from_dict(cfg.to_dict())
    assert again == cfg
    G1, G2 = Generator(cfg), Generator(again)
    assert {k: v.shape for k, v in G1.state_dict().items()} == {k: v.shape for k, v in G2.state_dict().items()}


def test_discriminator_config_round_trip():
    cfg = DiscriminatorConfig(c_dim=2, img_resolution=32, channel_base=1024, channel_max=32, mbstd_group_size=2)
    assert DiscriminatorConfig.from_dict(cfg.to_dict()) == cfg


def test_stylegan2_num_ws_follows_resolution():
    for res, expected in [(32, 8), (64, 10), (256, 14)]:
        G = Generator(tiny_config("stylegan2", resolution=res, channels=8))
        assert G.num_ws == expected == 2 * res.bit_length() - 4


def test_wrong_shapes_are_refused_clearly():
    G = Generator(tiny_config("stylegan2", c_dim=2))
    with pytest.raises(ValueError, match=r"z must have shape \[N, 32\]"):
        G.mapping(torch.zeros([1, 5]), torch.zeros([1, 2]))
    with pytest.raises(ValueError, match="one-hot class labels"):
        G.mapping(torch.zeros([1, 32]), None)
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 8, 32\]"):
        G.synthesis(torch.zeros([1, 7, 32]))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(torch.zeros([1, 8, 32]), noise_mode="sometimes")
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channel_base=512, channel_max=16))
    with pytest.raises(ValueError, match="divisible by the minibatch-std group size"):
        D(torch.zeros([3, 3, 32, 32]).repeat(2, 1, 1, 1)[:6][:5])


def test_noise_modes_behave():
    G = Generator(tiny_config("stylegan2")).eval()
    for p in G.parameters():
        if p.ndim == 0:
            p.data.fill_(1.0)  # noise strengths
    ws = G.mapping(torch.randn([1, 32]), None).detach()
    with torch.no_grad():
        const1, const2 = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
        rand1, rand2 = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
        none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const1, const2)
    assert not torch.equal(rand1, rand2)
    assert not torch.equal(none, const1)

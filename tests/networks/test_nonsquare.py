"""Non-square models (config ``img_shape``): StyleGAN2's constant and noise maps have the native aspect,
StyleGAN3 is the square network on its native grid, the discriminator's head sees the native aspect; a
square stays exactly the old config (docs/canvas.md, "Non-square models")."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from stylegan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from support.models import tiny_config


def rect_config(generation: str, shape: tuple[int, int]) -> GeneratorConfig:
    return dataclasses.replace(tiny_config(generation, resolution=max(shape), channels=16), img_shape=shape)


def rect_discriminator(shape: tuple[int, int]) -> Discriminator:
    return Discriminator(DiscriminatorConfig(img_resolution=max(shape), img_shape=shape, channel_base=256,
                                             channel_max=16, mbstd_group_size=2))


@pytest.mark.parametrize("generation", ["stylegan2", "stylegan3"])
@pytest.mark.parametrize("shape", [(16, 32), (32, 8)])
def test_generator_and_discriminator_work_at_the_native_shape(generation, shape):
    torch.manual_seed(0)
    cfg = rect_config(generation, shape)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["img_shape"] == list(shape)
    G, D = Generator(cfg), rect_discriminator(shape)
    assert G.img_shape == G.synthesis.img_shape == D.img_shape == shape
    img = G(torch.randn([4, G.z_dim]))
    assert img.shape == (4, 3, *shape)
    if generation == "stylegan2":
        cells = tuple(v * 4 // max(shape) for v in shape)
        assert tuple(G.synthesis.b4.const.shape[1:]) == cells
        for name, m in G.synthesis.noise_maps().items():
            res = int(name.split(".")[0][1:])
            assert tuple(m.shape) == tuple(v * res // max(shape) for v in shape), name
    assert D.b4.fc.weight.shape[1] == D.b4.in_channels * (shape[0] * 4 // max(shape)) * (shape[1] * 4 // max(shape))
    logits = D(img)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in G.named_parameters()
               if p.requires_grad and "noise_strength" not in n and "mapping" not in n and "affine" not in n)
    with pytest.raises(ValueError, match=rf"discriminator input must be \[N, 3, {shape[0]}, {shape[1]}\]"):
        D(torch.zeros([2, 3, shape[1], shape[0]]))
    with torch.no_grad():     # the native shape as an explicit canvas is the ordinary path, byte for byte
        ws = G.mapping(torch.randn([2, G.z_dim]), None)
        assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const", canvas=shape))
        square = G.synthesis(ws, noise_mode="const", canvas=(max(shape),) * 2)
    assert square.shape == (2, 3, max(shape), max(shape))


def test_stylegan2_canvases_extend_the_native_constant():
    G = Generator(rect_config("stylegan2", (16, 32))).eval()
    assert G.synthesis.canvas_size(None) == (16, 32) and G.synthesis.const_cells((32, 32)) == (4, 4)
    maps = G.synthesis.noise_maps(canvas=(32, 64), extension="tile")
    native = G.synthesis.noise_maps()
    for name, m in maps.items():
        h, w = native[name].shape
        assert m.shape == (2 * h, 2 * w)                        # 4x8 cells around the native 2x4
        top, left = h // 2, w // 2                              # the native map in the middle ...
        assert torch.equal(m[top:top + h, left:left + w], native[name])
        assert torch.equal(m[:top, left:left + w], native[name][h - top:])   # ... tiled copies around it
    with torch.no_grad():
        out = G.synthesis(G.mapping(torch.randn([1, G.z_dim]), None), canvas=(32, 64), noise_mode="const")
    assert out.shape == (1, 3, 32, 64)


def test_stylegan3_nonsquare_is_the_square_network_on_its_native_grid():
    torch.manual_seed(1)
    square, rect = Generator(tiny_config("stylegan3", resolution=32, channels=16)), Generator(
        rect_config("stylegan3", (16, 32)))
    assert {k: v.shape for k, v in square.state_dict().items()} == {k: v.shape for k, v in rect.state_dict().items()}
    rect.load_state_dict(square.state_dict())
    ws = square.mapping(torch.randn([2, square.z_dim]), None)
    with torch.no_grad():
        assert torch.equal(rect.synthesis(ws), square.synthesis(ws, canvas=(16, 32)))
        assert torch.equal(rect.synthesis(ws, canvas=(32, 32)), square.synthesis(ws))
    first = getattr(rect.synthesis, rect.synthesis.layer_names[0])
    before = first.magnitude_ema.clone()
    rect.synthesis(ws.detach(), update_emas=True).square().mean().backward()
    assert not torch.equal(first.magnitude_ema, before)
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


def test_square_shapes_are_the_old_configs_and_bad_shapes_are_refused():
    cfg = tiny_config("stylegan2")
    assert dataclasses.replace(cfg, img_shape=(32, 32)) == cfg and "img_shape" not in cfg.to_dict()
    assert GeneratorConfig.from_dict({**cfg.to_dict(), "img_shape": [32, 32]}) == cfg
    d = DiscriminatorConfig(img_resolution=16).to_dict()
    assert "img_shape" not in d
    assert DiscriminatorConfig.from_dict({**d, "img_shape": [4, 16]}).shape == (4, 16)
    for bad, message in [([8, 32], "its longer side must be img_resolution"), ([16, 3], "powers of two"),
                         ([16, 2], "aspect"), ({"h": 4}, "two integers")]:
        with pytest.raises(ValueError, match=f"DiscriminatorConfig.img_shape .*{message}"):
            DiscriminatorConfig.from_dict({**d, "img_shape": bad})
    with pytest.raises(ValueError, match="DiscriminatorConfig.img_shape: non-square models are StyleGAN2"):
        DiscriminatorConfig(img_resolution=16, img_shape=(8, 16), generation="stylegan1")


def test_one_shape_rule_for_configs_synthesis_networks_and_datasets():
    """``shape_problem`` is the one check: a config, a StyleGAN2 synthesis network built directly (which
    used to take a 12x16 shape) and a dataset (which also needs the longer side >= 8) agree on it."""
    from stylegan.data.dataset import check_shape
    from stylegan.errors import DatasetError
    from stylegan.networks.config import shape_problem
    from stylegan.networks.stylegan2 import SynthesisNetwork
    for shape in [(16, 16), (16, 4), (8, 2), (4, 8), (12, 16), (16, 3), (16, 2), (2, 16), (0, 16)]:
        problem = shape_problem(*shape)
        try:
            DiscriminatorConfig(img_resolution=16, img_shape=shape)
            config_ok = True
        except ValueError as exc:
            config_ok = False
            assert problem is not None and problem in str(exc) or max(shape) != 16
        try:
            check_shape(*shape, "images are")
            data_ok = True
        except DatasetError:
            data_ok = False
        assert data_ok == (problem is None and max(shape) >= 8)
        if max(shape) == 16:
            assert config_ok == (problem is None)
            if problem is not None:
                with pytest.raises(ValueError, match="powers of two and at most 4:1"):
                    SynthesisNetwork(8, 16, 3, img_shape=shape)

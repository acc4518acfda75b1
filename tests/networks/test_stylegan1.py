"""StyleGAN1 generator and discriminator: the common network API, noise, and the layer math.

Whole-network numerics against TensorFlow's formulas live in tests/checkpoints/test_tf.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.checkpoints import Checkpoint, load_network, save_network
from stylegan.networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                               StyleGAN1SynthesisConfig, build_discriminator)
from stylegan.networks import stylegan1


def tiny_sg1(resolution=16, **syn) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig("stylegan1", z_dim=8, w_dim=8, img_resolution=resolution, img_channels=3,
                          mapping=MappingConfig(num_layers=2),
                          synthesis=StyleGAN1SynthesisConfig(channel_base=64, channel_max=16, **syn))
    G = Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.uniform_(0.2, 0.5)
    return G


def tiny_d(c_dim=0) -> Discriminator:
    torch.manual_seed(1)
    return build_discriminator(DiscriminatorConfig(generation="stylegan1", c_dim=c_dim, img_resolution=16,
                                             channel_base=64, channel_max=16, resample_filter=(1, 2, 1))).eval()


def test_generator_api_and_parameter_names():
    G = tiny_sg1()
    assert (G.generation, G.num_ws, G.synthesis.num_ws) == ("stylegan1", 6, 6)
    names = dict(G.named_parameters())
    assert names["synthesis.b4.const"].shape == (16, 4, 4)
    assert names["synthesis.b4.conv0.noise_strength"].shape == (16,)          # per-channel noise strength
    assert names["synthesis.b4.conv0.affine.weight"].shape == (32, 8)          # AdaIN scale and shift
    assert "synthesis.b4.conv0.weight" not in names                            # the constant's epilogue
    assert names["synthesis.b16.conv0.weight"].shape == (4, 8, 3, 3)           # C(r) = min(64 // r, 16)
    assert names["synthesis.b16.torgb.weight"].shape == (3, 4, 1, 1)
    assert dict(G.named_buffers())["synthesis.b16.conv1.noise_const"].shape == (16, 16)
    z = torch.randn(2, 8)
    ws = G.mapping(z, None, truncation_psi=0.5)
    assert ws.shape == (2, 6, 8)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def test_noise_modes():
    G = tiny_sg1()
    ws = G.mapping(torch.randn(2, 8), None)
    const = G.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="random"))
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
    with torch.no_grad():
        for layer in (m for m in G.modules() if isinstance(m, stylegan1.SynthesisLayer)):
            layer.noise_strength.zero_()
    torch.testing.assert_close(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fixed")
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 6, 8\]"):
        G.synthesis(ws[:, :5])


def test_each_w_controls_its_own_layer():
    """Layer i reads ws[:, i]: changing only the last w changes the image, but less than changing all."""
    G = tiny_sg1()
    ws = G.mapping(torch.randn(1, 8), None)
    other = G.mapping(torch.randn(1, 8), None)
    base = G.synthesis(ws, noise_mode="const")
    last = ws.clone()
    last[:, -1] = other[:, -1]
    all_ = G.synthesis(other, noise_mode="const")
    d_last = (G.synthesis(last, noise_mode="const") - base).abs().mean()
    assert 0 < d_last < (all_ - base).abs().mean()


def test_up_layer_is_nearest_conv_blur_then_adain():
    """One 'up' layer against its definition written out with plain torch ops."""
    layer = stylegan1.SynthesisLayer(4, 6, w_dim=5, resolution=8, kind="up").eval()
    torch.manual_seed(2)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    x, w = torch.randn(2, 4, 4, 4), torch.randn(2, 5)
    up = x.repeat_interleave(2, 2).repeat_interleave(2, 3)
    y = F.conv2d(up, layer.weight * math.sqrt(2) / math.sqrt(4 * 9), padding=1)
    blur = torch.tensor([1.0, 2, 1])
    blur = (torch.outer(blur, blur) / 16).expand(6, 1, 3, 3)
    y = F.conv2d(F.pad(y, [1, 1, 1, 1]), blur, groups=6)
    y = y + layer.noise_const * layer.noise_strength.reshape(1, -1, 1, 1)
    y = F.leaky_relu(y + layer.bias.reshape(1, -1, 1, 1), 0.2)
    y = (y - y.mean([2, 3], keepdim=True)) / (y.var([2, 3], unbiased=False, keepdim=True) + 1e-8).sqrt()
    style = w @ (layer.affine.weight / math.sqrt(5)).t() + layer.affine.bias
    y = y * style[:, :6, None, None] + style[:, 6:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(layer(x, w, noise_mode="const"), y, rtol=1e-4, atol=1e-5)


def test_discriminator_is_built_from_its_config():
    D = tiny_d()
    assert isinstance(D, stylegan1.Discriminator)
    with pytest.raises(ValueError, match="build_discriminator"):       # the StyleGAN2 class refuses the config
        Discriminator(D.config)
    assert dict(D.named_parameters())["b4.fc.weight"].shape == (16, 16 * 16)
    assert D(torch.randn(4, 3, 16, 16)).shape == (4, 1)
    with pytest.raises(ValueError, match="divisible"):
        D(torch.randn(6, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[N, 3, 16, 16\]"):
        D(torch.randn(4, 3, 8, 8))


def test_conditional_discriminator_projects_onto_the_label():
    D = tiny_d(c_dim=3)
    img = torch.randn(4, 3, 16, 16)
    per_class = torch.stack([D(img, torch.eye(3)[[k] * 4]) for k in range(3)], dim=1)[..., 0]
    mixed = D(img, torch.eye(3)[[0, 1, 2, 0]])
    torch.testing.assert_close(mixed[:, 0], per_class[torch.arange(4), torch.tensor([0, 1, 2, 0])])
    with pytest.raises(ValueError, match="one-hot"):
        D(img)


def test_native_format_round_trip(tmp_path):
    G, D = tiny_sg1(), tiny_d()
    path = save_network(Checkpoint(G_ema=G, D=D), tmp_path / "sg1.safetensors")
    back = load_network(path)
    assert back.G_ema.config == G.config and back.D.config.generation == "stylegan1"
    z = torch.randn(2, 8)
    torch.testing.assert_close(back.G_ema(z, noise_mode="const"), G(z, noise_mode="const"), rtol=0, atol=0)
    img = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(back.D(img), D(img), rtol=0, atol=0)

"""The StyleGAN2 discriminator and the factory that builds a discriminator of any generation."""

import pytest
import torch

from stylegan.networks import (Discriminator, DiscriminatorConfig, StyleGAN1Discriminator, build_discriminator)
from stylegan.networks.discriminator import MinibatchStdLayer


def _config(**kw):
    return DiscriminatorConfig(img_resolution=32, channel_base=512, channel_max=16, **kw)


def _images(n, seed=0):
    return torch.randn([n, 3, 32, 32], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_logits_shape_and_reference_implementation(architecture):
    torch.manual_seed(0)
    D = Discriminator(_config(architecture=architecture)).eval()
    assert D.block_resolutions == [32, 16, 8]
    img = _images(4)
    with torch.no_grad():
        fast = D(img)
        ref = D(img, impl="reference")
    assert fast.shape == (4, 1) and torch.isfinite(fast).all()
    assert (fast - ref).abs().max().item() < 1e-4
    assert not torch.allclose(fast[0], fast[1])                     # the images are told apart


def test_conditional_logits_project_onto_the_label():
    torch.manual_seed(0)
    D = Discriminator(_config(c_dim=2)).eval()
    img = _images(2).repeat(2, 1, 1, 1)                              # each image with each of 2 labels
    c = torch.eye(2).repeat_interleave(2, 0)
    with torch.no_grad():
        logits = D(img, c)
    assert logits.shape == (4, 1)
    assert not torch.allclose(logits[0], logits[2])                 # same image, another label
    with pytest.raises(ValueError, match="one-hot"):
        D(img, None)


def test_factory_builds_the_class_of_the_generation():
    assert type(build_discriminator(_config())) is Discriminator
    cfg1 = _config(generation="stylegan1", resample_filter=(1, 2, 1))
    D1 = build_discriminator(cfg1)
    assert type(D1) is StyleGAN1Discriminator and D1.config == cfg1
    assert D1(_images(2)).shape == (2, 1)
    with pytest.raises(ValueError, match="build_discriminator"):
        Discriminator(cfg1)
    assert D1.set_half_dtype(torch.float16) is D1                   # accepted; StyleGAN1 runs in fp32
    with pytest.raises(ValueError, match="half dtype"):
        build_discriminator(_config()).set_half_dtype(torch.float64)


def test_frozen_layers_are_buffers():
    D = build_discriminator(_config(), freeze_layers=2)
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())
    assert "b32.fromrgb.weight" in buffers and "b32.conv0.weight" in buffers    # layers 0 and 1
    assert "b32.conv1.weight" in params and "b4.fc.weight" in params


def test_minibatch_std_appends_the_group_spread():
    layer = MinibatchStdLayer(group_size=2)
    x = torch.stack([torch.zeros(4, 2, 2), torch.full((4, 2, 2), 2.0), torch.ones(4, 2, 2), torch.ones(4, 2, 2)])
    y = layer(x)
    assert y.shape == (4, 5, 2, 2) and torch.equal(y[:, :4], x)
    # sample n is grouped with sample n + N/G: (0, 2) has spread 0.5, (1, 3) spread 0.5 as well
    assert torch.allclose(y[:, 4], torch.full((4, 2, 2), 0.5), atol=1e-4)
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdLayer(group_size=4)(torch.zeros(6, 4, 2, 2))


def test_wrong_input_shape_is_refused():
    D = Discriminator(_config())
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        D(torch.zeros([2, 3, 16, 16]))

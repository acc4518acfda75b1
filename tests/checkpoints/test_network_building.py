"""Building networks from files (checkpoints/architecture.py): the shape probe agrees with a real build for every
generation and architecture while allocating nothing, and a network is built only when it fits the file."""

from __future__ import annotations

import resource

import pytest
import torch

from stylegan.checkpoints.architecture import (NetworkBudget, as_float, as_int, as_ints, build_network,
                                               channel_base_max, probe_shapes)
from stylegan.errors import CheckpointError
from stylegan.networks import (build_discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                               StyleGAN1SynthesisConfig, StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)

CONFIGS = {
    "sg2-skip": GeneratorConfig("stylegan2", img_resolution=64, c_dim=3,
                                synthesis=StyleGAN2SynthesisConfig(channel_base=2048, channel_max=64)),
    "sg2-resnet": GeneratorConfig("stylegan2", img_resolution=32, synthesis=StyleGAN2SynthesisConfig(
        architecture="resnet", channel_base=1024, channel_max=64, resample_filter=(1, 2, 1))),
    "sg2-orig": GeneratorConfig("stylegan2", img_resolution=32, synthesis=StyleGAN2SynthesisConfig(
        architecture="orig", channel_base=1024, channel_max=64, kernel_size=1, use_noise=False)),
    "sg3-t": GeneratorConfig("stylegan3", img_resolution=64, mapping=MappingConfig(num_layers=2),
                             synthesis=StyleGAN3SynthesisConfig(channel_base=4096, channel_max=64)),
    "sg3-r": GeneratorConfig("stylegan3", img_resolution=32, synthesis=StyleGAN3SynthesisConfig(
        channel_base=4096, channel_max=64, conv_kernel=1, use_radial_filters=True, num_layers=6)),
    "sg1": GeneratorConfig("stylegan1", img_resolution=64, synthesis=StyleGAN1SynthesisConfig(
        channel_base=2048, channel_max=64)),
    "sg2-rect": GeneratorConfig("stylegan2", img_resolution=32, img_shape=(16, 32), synthesis=StyleGAN2SynthesisConfig(
        channel_base=1024, channel_max=64)),
    "sg3-rect": GeneratorConfig("stylegan3", img_resolution=32, img_shape=(32, 8), synthesis=StyleGAN3SynthesisConfig(
        channel_base=2048, channel_max=32, num_layers=4)),
    "D-sg2-rect": DiscriminatorConfig(img_resolution=32, img_shape=(8, 32), channel_base=1024, channel_max=64),
    "D-sg2": DiscriminatorConfig(c_dim=4, img_resolution=64, channel_base=2048, channel_max=64),
    "D-sg2-skip": DiscriminatorConfig(img_resolution=32, architecture="skip", channel_base=1024, channel_max=64),
    "D-sg1": DiscriminatorConfig(img_resolution=32, channel_base=1024, channel_max=64, generation="stylegan1",
                                 num_fp16_res=0, conv_clamp=None),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_shape_probe_agrees_with_a_real_build(name):
    cfg = CONFIGS[name]
    build = build_discriminator if name.startswith("D") else Generator
    real = {k: (tuple(v.shape), v.dtype) for k, v in build(cfg).state_dict().items()}
    assert probe_shapes(build, cfg) == real


def test_the_probe_of_a_huge_network_allocates_nothing():
    cfg = GeneratorConfig("stylegan2", img_resolution=1024,
                          synthesis=StyleGAN2SynthesisConfig(channel_base=1 << 30, channel_max=1 << 14))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    shapes = probe_shapes(Generator, cfg)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert sum(torch.Size(s).numel() for s, _ in shapes.values()) > 30e9            # 120 GB as fp32 ...
    assert grown < 200 * 1024                                                     # ... and < 200 MB were used


def test_a_network_is_built_only_when_the_file_holds_it_and_it_fits():
    cfg = CONFIGS["sg2-skip"]
    G = Generator(cfg)
    tensors = dict(G.state_dict())
    built = build_network(Generator, cfg, tensors, "m.pkl: G", NetworkBudget("m.pkl", 10 << 20))
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), tensors.values()))
    assert not built.training and not any(p.requires_grad for p in built.parameters())
    with pytest.raises(CheckpointError, match="more than m.pkl's 64.0 MB allowance"):
        build_network(Generator, cfg, tensors, "m.pkl: G", _tight())
    small = {k: v for k, v in tensors.items() if not k.endswith("resample_filter")}
    with pytest.raises(CheckpointError, match="missing"):
        build_network(Generator, cfg, small, "G", NetworkBudget("x", 1 << 30))
    kept = build_network(Generator, cfg, small, "G", NetworkBudget("x", 1 << 30), defaults=("resample_filter",))
    assert torch.equal(kept.synthesis.b4.resample_filter, G.synthesis.b4.resample_filter)
    with pytest.raises(CheckpointError, match="invalid architecture: GeneratorConfig.z_dim is 0"):
        build_network(Generator, cfg.replace(z_dim=0), tensors, "G", NetworkBudget("x", 1 << 30))


def _tight() -> NetworkBudget:
    budget = NetworkBudget("m.pkl", 0)
    budget.spent = budget.limit                        # the file's allowance is used up by earlier networks
    return budget


def test_channel_schedules_and_typed_fields():
    assert channel_base_max({4: 512, 8: 512, 16: 256, 32: 128}) == (4096, 512)
    with pytest.raises(CheckpointError, match="do not follow"):
        channel_base_max({4: 8, 8: 64})
    with pytest.raises(CheckpointError, match="are not positive"):
        channel_base_max({4: 0})
    assert as_int(torch.tensor(3).numpy(), "x") == 3 and as_float(2, "x") == 2.0
    assert as_ints([4, 8], "x", 4) == [4, 8]
    for bad in ("3", 3.5, True, None, [3]):
        with pytest.raises(CheckpointError, match="x must be an integer"):
            as_int(bad, "x")
    with pytest.raises(CheckpointError, match="x is 9; it must lie between 0 and 8"):
        as_int(9, "x", 0, 8)
    with pytest.raises(CheckpointError, match="must be a finite number, not nan"):
        as_float(float("nan"), "x")

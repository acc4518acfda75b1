"""Small real model files for tests: random-weight networks saved through the real writers,
and the official reference networks (weights from tests/reference) in our native format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from stylegan.checkpoints import Checkpoint, save_network
from stylegan.networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                               StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO / "tests" / "reference"     # copies of ../shared/reference, shipped so users' runs check fidelity


def tiny_config(generation: str = "stylegan2", resolution: int = 32, c_dim: int = 0, channels: int = 32,
                z_dim: int = 32, w_dim: int = 32, variant: str = "t") -> GeneratorConfig:
    if generation == "stylegan2":
        syn = StyleGAN2SynthesisConfig(channel_base=channels * resolution, channel_max=channels)
        mapping = MappingConfig(num_layers=2)
    else:
        syn = StyleGAN3SynthesisConfig(channel_base=channels * 32, channel_max=channels, num_layers=6,
                                       margin_size=4, conv_kernel=1 if variant == "r" else 3,
                                       use_radial_filters=variant == "r")
        mapping = MappingConfig(num_layers=2)
    return GeneratorConfig(generation, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution,
                           img_channels=3, mapping=mapping, synthesis=syn)


def make_tiny_checkpoint(generation: str = "stylegan2", resolution: int = 32, c_dim: int = 0, seed: int = 0,
                         img_shape: tuple[int, int] | None = None, **kwargs) -> Checkpoint:
    """Random but well-behaved networks: non-zero noise strengths and a w_avg that is the real mean;
    ``img_shape`` (H, W): a non-square model (``resolution`` is then its longer side)."""
    torch.manual_seed(seed)
    cfg = tiny_config(generation, resolution, c_dim, **kwargs).replace(img_shape=img_shape)
    G = Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        z = torch.randn([512, cfg.z_dim])
        c = torch.eye(c_dim)[torch.randint(c_dim, [512])] if c_dim else None
        G.mapping.w_avg.copy_(G.mapping(z, c)[:, 0].mean(0))
    D = Discriminator(DiscriminatorConfig(c_dim=c_dim, img_resolution=resolution, img_shape=img_shape,
                                          channel_base=kwargs.get("channels", 32) * resolution,
                                          channel_max=kwargs.get("channels", 32))).eval().requires_grad_(False)
    return Checkpoint(G_ema=G, G=G, D=D, source_format="native")


def save_tiny(path: Path, generation: str = "stylegan2", **kwargs) -> Path:
    save_network(make_tiny_checkpoint(generation, **kwargs), path)
    return path


def reference_npz(name: str) -> Path:
    return REFERENCE_DIR / f"official-{name}-64.npz"


def reference_checkpoint(name: str) -> Checkpoint:
    """The official reference networks (sg2, sg3t, sg3r) with their published-code weights."""
    d = np.load(reference_npz(name))
    meta = json.loads(str(d["meta_json"]))
    gk = meta["G_ema"]["init_kwargs"]
    mapping = MappingConfig(num_layers=gk["mapping_kwargs"]["num_layers"])
    if name == "sg2":
        syn = StyleGAN2SynthesisConfig(channel_base=gk["channel_base"], channel_max=gk["channel_max"])
        gen = "stylegan2"
    else:
        syn = StyleGAN3SynthesisConfig(channel_base=gk["channel_base"], channel_max=gk["channel_max"],
                                       conv_kernel=gk.get("conv_kernel", 3),
                                       use_radial_filters=gk.get("use_radial_filters", False))
        gen = "stylegan3"
    G = Generator(GeneratorConfig(gen, z_dim=gk["z_dim"], c_dim=gk["c_dim"], w_dim=gk["w_dim"],
                                  img_resolution=gk["img_resolution"], img_channels=gk["img_channels"],
                                  mapping=mapping, synthesis=syn))
    dk = meta["D"]["init_kwargs"]
    D = Discriminator(DiscriminatorConfig(c_dim=dk["c_dim"], img_resolution=dk["img_resolution"],
                                          img_channels=dk["img_channels"], channel_base=dk["channel_base"],
                                          channel_max=dk["channel_max"]))
    for net, prefix in ((G, "G_ema/"), (D, "D/")):
        net.load_state_dict({k[len(prefix):]: torch.from_numpy(d[k]) for k in d.files if k.startswith(prefix)})
        net.eval().requires_grad_(False)
    return Checkpoint(G_ema=G, G=G, D=D, source_format="native")

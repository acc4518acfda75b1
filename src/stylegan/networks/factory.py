"""Networks from their configs where the class depends on the generation."""

from __future__ import annotations

from torch import nn

from .config import DiscriminatorConfig
from .discriminator import Discriminator
from .stylegan1 import Discriminator as StyleGAN1Discriminator


def build_discriminator(config: DiscriminatorConfig, freeze_layers: int = 0) -> nn.Module:
    """The discriminator ``config`` describes: StyleGAN1's ``D_basic`` for ``generation='stylegan1'``,
    else the StyleGAN2 discriminator (also trained against StyleGAN3 generators)."""
    if config.generation == "stylegan1":
        return StyleGAN1Discriminator(config, freeze_layers)
    return Discriminator(config, freeze_layers)

"""The networks: pure math, no I/O. Nothing here imports the rest of the package."""

from .config import (DiscriminatorConfig, GeneratorConfig, MappingConfig, StyleGAN1SynthesisConfig,
                     StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)
from .discriminator import Discriminator
from .generator import Generator
from .stylegan1 import Discriminator as StyleGAN1Discriminator
from .synthesis import IMPLS, NOISE_MODES, StyleLayer


def build_discriminator(config: DiscriminatorConfig, freeze_layers: int = 0):
    """The discriminator ``config`` describes: StyleGAN1's ``D_basic`` for ``generation='stylegan1'``,
    else the StyleGAN2 discriminator (also trained against StyleGAN3 generators)."""
    if config.generation == "stylegan1":
        return StyleGAN1Discriminator(config, freeze_layers)
    return Discriminator(config, freeze_layers)


__all__ = [
    "Generator", "Discriminator", "StyleGAN1Discriminator", "build_discriminator", "GeneratorConfig",
    "DiscriminatorConfig", "MappingConfig", "StyleGAN1SynthesisConfig", "StyleGAN2SynthesisConfig",
    "StyleGAN3SynthesisConfig", "NOISE_MODES", "IMPLS", "StyleLayer",
]

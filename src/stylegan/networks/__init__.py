"""The networks: pure math, no I/O. Nothing here imports the rest of the package."""

from .config import (DiscriminatorConfig, GeneratorConfig, MappingConfig, StyleGAN1SynthesisConfig,
                     StyleGAN2SynthesisConfig, StyleGAN3SynthesisConfig)
from .discriminator import Discriminator
from .generator import Generator

__all__ = [
    "Generator", "Discriminator", "GeneratorConfig", "DiscriminatorConfig", "MappingConfig",
    "StyleGAN1SynthesisConfig", "StyleGAN2SynthesisConfig", "StyleGAN3SynthesisConfig",
]

"""The networks: pure math, no I/O. Nothing here imports the rest of the package.

Names are imported lazily, so ``stylegan.networks.options`` (the noise modes and implementations the
command line lists) loads without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Generator": "generator", "Discriminator": "discriminator", "build_discriminator": "factory",
    "GeneratorConfig": "config", "DiscriminatorConfig": "config", "MappingConfig": "config",
    "StyleGAN1SynthesisConfig": "config", "StyleGAN2SynthesisConfig": "config", "StyleGAN3SynthesisConfig": "config",
    "StyleLayer": "synthesis", "NOISE_MODES": "options", "IMPLS": "options",
}
_ALIASES = {"StyleGAN1Discriminator": ("stylegan1", "Discriminator")}

__all__ = sorted(_EXPORTS) + sorted(_ALIASES)


def __getattr__(name: str):
    module, attr = _ALIASES.get(name) or (_EXPORTS.get(name), name)
    if module is None:
        raise AttributeError(f"module 'stylegan.networks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__

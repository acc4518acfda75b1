"""StyleGAN 1/2/3 in pure PyTorch.

    import stylegan
    G = stylegan.load_generator("stylegan3-t-ffhq-1024x1024.pkl")    # or a URL, our .safetensors, None = built-in
    images = stylegan.generate_images(G, seeds=[0, 1, 2], truncation_psi=0.7)

Names are imported lazily so ``import stylegan`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # checkpoints
    "load_network": "stylegan.checkpoints", "load_generator": "stylegan.checkpoints",
    "load_discriminator": "stylegan.checkpoints", "save_network": "stylegan.checkpoints",
    "Checkpoint": "stylegan.checkpoints",
    # networks
    "Generator": "stylegan.networks", "Discriminator": "stylegan.networks",
    "GeneratorConfig": "stylegan.networks", "DiscriminatorConfig": "stylegan.networks",
    # errors
    "StyleGANError": "stylegan.errors", "CheckpointError": "stylegan.errors", "DatasetError": "stylegan.errors",
    "UserInputError": "stylegan.errors",
}
for _name in ("load_model", "generate_images", "seeds_to_ws", "style_mix", "video_frames", "render_video",
              "ImageBatch", "StyleMixResult", "VideoFrames", "parse_layers", "layer_groups", "layer_resolutions",
              "mix_ws", "add_direction", "average_ws", "difference", "interpolate_ws", "truncate_ws", "load_ws",
              "save_ws", "load_directions", "save_directions"):
    _EXPORTS[_name] = "stylegan.api"

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylegan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__

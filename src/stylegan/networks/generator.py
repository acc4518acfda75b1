"""The generator: mapping network + synthesis network of any generation, one class, one API."""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from . import stylegan1, stylegan2, stylegan3
from .config import GeneratorConfig
from .layers import MappingNetwork, check_half_dtype

SYNTHESIS_NETWORKS = {"stylegan1": stylegan1.SynthesisNetwork, "stylegan2": stylegan2.SynthesisNetwork,
                      "stylegan3": stylegan3.SynthesisNetwork}


class Generator(nn.Module):
    """z [N, z_dim] (+ one-hot c [N, c_dim]) -> image [N, img_channels, H, W] in about [-1, 1].

    ``G.mapping(z, c, truncation_psi, truncation_cutoff) -> ws [N, num_ws, w_dim]`` and
    ``G.synthesis(ws, noise_mode=...)`` behave like NVIDIA's networks; the synthesis network
    describes itself and takes explicit noise, transform and implementation
    (:mod:`stylegan.networks.synthesis`).
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.c_dim = config.c_dim
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_shape = config.shape          # (H, W) of the default render (non-square models: docs/canvas.md)
        self.img_channels = config.img_channels
        shape = {} if config.img_shape is None else {"img_shape": config.img_shape}
        self.synthesis = SYNTHESIS_NETWORKS[config.generation](config.w_dim, config.img_resolution,
                                                               config.img_channels, config.synthesis, **shape)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.num_ws, config.mapping)

    @property
    def generation(self) -> str:
        return self.config.generation

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    def set_half_dtype(self, dtype: torch.dtype | None) -> "Generator":
        """Run the layers built for half precision (the highest ``num_fp16_res`` resolutions) in
        fp16 or bf16 on CUDA, as the official networks do; ``None`` (the default) keeps fp32."""
        self.synthesis.half_dtype = check_half_dtype(dtype)
        return self

    def compile_synthesis(self, **options) -> "Generator":
        """Compile the synthesis network with ``torch.compile`` (in place: parameter names, saving and
        loading are unchanged). Pays a one-time compilation per input shape, so it suits long runs
        (videos, many seeds) on GPUs; ``options`` go to ``torch.compile`` (e.g. ``mode``)."""
        if not hasattr(nn.Module, "compile"):
            raise RuntimeError(f"compiling needs torch >= 2.2 (this is {torch.__version__})")
        on_cpu = next(self.synthesis.parameters()).device.type == "cpu"
        if on_cpu and not any(shutil.which(c) for c in (os.environ.get("CXX"), "g++", "clang++", "c++") if c):
            raise RuntimeError("compiling for the CPU needs a C++ compiler (g++ or clang++) on PATH")
        self.synthesis.compile(**options)
        return self

    def extra_repr(self) -> str:
        return (f"{self.config.variant}, z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
                f"num_ws={self.num_ws}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"
                + (f", img_shape={self.img_shape}" if self.config.img_shape else ""))

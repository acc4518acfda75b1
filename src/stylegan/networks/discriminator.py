"""The StyleGAN2 discriminator (also trained against StyleGAN3 generators): resnet/skip/orig
blocks, minibatch standard deviation, projection conditioning."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import ops
from .config import DiscriminatorConfig
from .layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, block_dtype, check_half_dtype


class DiscriminatorBlock(nn.Module):
    """One resolution: (fromrgb) + conv0 + conv1 (down 2), with a resnet skip if asked."""

    def __init__(
        self,
        in_channels: int,                  # 0 for the first (highest-resolution) block
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,              # index of this block's first layer (for freezing)
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,            # layers with index < freeze_layers are not trainable
    ):
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown discriminator architecture {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.num_layers = 0

        def trainable_next():
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       conv_clamp=conv_clamp, channels_last=self.channels_last,
                                       trainable=trainable_next())
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 conv_clamp=conv_clamp, channels_last=self.channels_last, trainable=trainable_next())
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp,
                                 channels_last=self.channels_last, trainable=trainable_next())
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last,
                                    trainable=trainable_next())

    def forward(self, x, img, force_fp32: bool = False, half_dtype=None, impl: str = "fast"):
        device = img.device if img is not None else x.device
        dtype = block_dtype(self.use_fp16, force_fp32, device, half_dtype)
        memory_format = torch.channels_last if self.channels_last and dtype != torch.float32 else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img.to(dtype=dtype, memory_format=memory_format))
            x = x + y if x is not None else y
            img = ops.downsample2d(img, self.resample_filter, impl=impl) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5), impl=impl)
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5), impl=impl)
            x = y + x
        else:
            x = self.conv1(self.conv0(x), impl=impl)
        return x, img


class MinibatchStdLayer(nn.Module):
    """Append the per-group standard deviation of features as extra channels (Karras 2018, Sec. 3)."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"discriminator batch size {n} must be divisible by the minibatch-std group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)                 # sample n is in group n mod (N/G)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])                              # [N/G, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)          # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head (``4H/R`` x ``4W/R`` for a non-square model: ``size``): minibatch std, conv, dense,
    output (projected onto the label embedding if conditional)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None, size: tuple[int, int] | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.size = tuple(size) if size is not None else (resolution, resolution)
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * self.size[0] * self.size[1], in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """image [N, C, H, W] (+ one-hot c) -> realness logits [N, 1].

    The StyleGAN2 discriminator (also StyleGAN3's). ``networks.build_discriminator(config)`` builds
    the right class for any config (StyleGAN1's is :class:`stylegan.networks.stylegan1.Discriminator`,
    with the same API). A non-square config (``img_shape``) keeps the blocks, which halve both sides
    from ``R`` (the longer) down to 4; the epilogue sees ``4H/R`` x ``4W/R``.
    """

    def __init__(self, config: DiscriminatorConfig, freeze_layers: int = 0):
        super().__init__()
        if config.generation != "stylegan2":
            raise ValueError(f"a {config.generation} discriminator config: build it with "
                             f"stylegan.networks.build_discriminator(config)")
        cfg = config
        self.config = config
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_shape = cfg.shape
        self.img_channels = cfg.img_channels
        log2 = int(np.log2(cfg.img_resolution))
        if cfg.img_resolution < 8 or 2**log2 != cfg.img_resolution:
            raise ValueError(f"the discriminator needs a power-of-two resolution >= 8, got {cfg.img_resolution}")
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {res: min(cfg.channel_base // res, cfg.channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        cmap_dim = cfg.cmap_dim if cfg.cmap_dim is not None else channels[4]
        if cfg.c_dim == 0:
            cmap_dim = 0
        self.half_dtype = None  # set by set_half_dtype(); None = fp32 everywhere
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < cfg.img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], resolution=res,
                                       img_channels=cfg.img_channels, first_layer_idx=layer_idx,
                                       architecture=cfg.architecture, activation=cfg.activation,
                                       resample_filter=cfg.resample_filter, conv_clamp=cfg.conv_clamp,
                                       use_fp16=(res >= fp16_resolution), freeze_layers=freeze_layers)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, num_ws=None, config=cfg.mapping)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, img_channels=cfg.img_channels,
                                        architecture=cfg.architecture, mbstd_group_size=cfg.mbstd_group_size,
                                        mbstd_num_channels=cfg.mbstd_num_channels, activation=cfg.activation,
                                        conv_clamp=cfg.conv_clamp,
                                        size=tuple(v * 4 // cfg.img_resolution for v in self.img_shape))

    def set_half_dtype(self, dtype: torch.dtype | None) -> "Discriminator":
        """Run the blocks built for half precision in fp16/bf16 on CUDA; ``None`` keeps fp32."""
        self.half_dtype = check_half_dtype(dtype)
        return self

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                impl: str = "fast", **_unused) -> torch.Tensor:
        """``impl='reference'``: the resampling filters run NVIDIA's reference way (same function)."""
        expected = (self.img_channels, *self.img_shape)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"discriminator input must be [N, {expected[0]}, {expected[1]}, {expected[2]}], "
                             f"got {tuple(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32, half_dtype=self.half_dtype, impl=impl)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

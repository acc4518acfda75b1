"""StyleGAN1 (Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019).

Synthesis: a learned 4x4 constant, per layer ``conv -> + noise * per-channel strength -> + bias ->
leaky ReLU(0.2) -> instance norm -> AdaIN style (x * scale + shift)``; up-sampling layers are
nearest-neighbour x2, 3x3 conv, then a [1,2,1] blur (Sec. 2 and Appendix C of the paper). The
discriminator is the progressive-growing ``D_basic`` at its final level of detail (FromRGB, blurred
stride-2 convolutions, minibatch stddev, two dense layers).

The math follows NVIDIA's TensorFlow code (format notes §4.6): equalized-lr gains live *inside* the
weights (``w * gain / sqrt(fan_in)``, gain sqrt(2) before leaky ReLU, 1 before linear outputs), so
every stored weight and bias equals the TensorFlow value (convolutions transposed to
``[out, in, kh, kw]``, dense layers to ``[out, in]``), with one exception: ``affine.bias`` holds the
AdaIN scale with its ``+1`` baked in (as StyleGAN2's ``affine.bias``).

Parameter names (ours; NVIDIA never wrote a PyTorch StyleGAN1), resolution ``r``, ``C(r)`` channels:

==========================================  ===================  =======================================
name                                        shape                TensorFlow variable
==========================================  ===================  =======================================
``synthesis.b4.const``                      ``[C(4), 4, 4]``     ``4x4/Const/const`` (``[0]``)
``synthesis.b4.conv0.{bias,noise_strength}``  ``[C(4)]``         ``4x4/Const/{bias,Noise/weight}``
``synthesis.b4.conv0.affine.{weight,bias}`` ``[2C, w]``/``[2C]`` ``4x4/Const/StyleMod/{weight,bias}``
``synthesis.b{r}.conv{0,1}.weight``         ``[C, C_in, 3, 3]``  ``{r}x{r}/Conv0_up``, ``Conv1``, ``4x4/Conv``
``synthesis.b{r}.conv{0,1}.noise_const``    ``[r, r]``           ``noise{2 log2(r) - 4 + i}``
``synthesis.b{R}.torgb.{weight,bias}``      ``[I, C, 1, 1]``     ``ToRGB_lod0``
``D.b{R}.fromrgb.{weight,bias}``            ``[C, I, 1, 1]``     ``FromRGB_lod0``
``D.b{r}.conv0``, ``D.b{r}.conv1``          3x3                  ``{r}x{r}/Conv0``, ``Conv1_down``
``D.b4.conv``, ``D.b4.fc``, ``D.b4.out``    3x3, dense, dense    ``4x4/Conv``, ``Dense0``, ``Dense1``
==========================================  ===================  =======================================

In the 4x4 block, ``conv0`` is the constant's epilogue (no convolution) and ``conv1`` the 3x3
convolution, so that ``conv0``/``conv1`` of block ``r`` use ``ws[:, 2 log2(r) - 4]`` and ``+1``
as in StyleGAN2. Channels: ``C(r) = min(channel_base // r, channel_max)`` (``channel_base`` is twice
TensorFlow's ``fmap_base``, as for StyleGAN2).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import ops
from .config import DiscriminatorConfig, StyleGAN1SynthesisConfig
from .discriminator import MinibatchStdLayer
from .layers import FullyConnectedLayer, check_half_dtype
from .synthesis import (DEFAULT_CONST_EXTENSION, ConstantCanvas, StyleLayer, block_layer_resolutions, centre_crop,
                        check_call, check_canvas, check_noise, check_ws, split_noise)

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2)


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at resolution ``res`` (TensorFlow ``nf(log2(res) - 1)``)."""
    return min(channel_base // res, channel_max)


def blur(x: torch.Tensor, f: torch.Tensor, impl: str = "fast") -> torch.Tensor:
    """'Same'-padded depthwise FIR filter (StyleGAN1's ``blur2d``; the filter is symmetric)."""
    return ops.filter2d(x, f, impl=impl)


class Conv(nn.Module):
    """Equalized-lr convolution with the activation gain in the weight: ``conv(x, w * gain / sqrt(fan_in)) + b``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = SQRT2, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, padding=self.padding)

    def add_bias(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.reshape(1, -1, 1, 1) if self.bias is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_bias(self.conv(x))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class Dense(nn.Module):
    """Equalized-lr dense layer, gain in the weight: ``x @ (w * gain / sqrt(fan_in))^T + b``."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]))
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_gain = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias.unsqueeze(0), x, (self.weight * self.weight_gain).t())


class SynthesisLayer(nn.Module):
    """One style input: (conv) -> noise -> bias -> lrelu -> instance norm -> AdaIN.

    ``kind``: ``'const'`` (epilogue of the learned constant, no convolution), ``'conv'`` (3x3) or
    ``'up'`` (nearest x2, 3x3, blur).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kind: str = "conv",
                 use_noise: bool = True, blur_filter=(1, 2, 1)):
        super().__init__()
        if kind not in ("const", "conv", "up"):
            raise ValueError(f"unknown StyleGAN1 layer kind {kind!r}")
        self.kind = kind
        self.out_channels = out_channels
        self.resolution = resolution
        self.use_noise = use_noise
        if kind != "const":
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
            self.weight_gain = SQRT2 / math.sqrt(in_channels * 9)
        if kind == "up":
            self.register_buffer("blur_filter", ops.setup_filter(blur_filter), persistent=False)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = FullyConnectedLayer(w_dim, 2 * out_channels,
                                          bias_init=[1.0] * out_channels + [0.0] * out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None,
                impl: str = "fast") -> torch.Tensor:
        """``noise``: an explicit map ([N or 1, 1, H, W] or [H, W]) used instead of ``noise_mode``; the
        per-channel strengths scale it (StyleGAN1's noise is one map broadcast over channels)."""
        if self.kind == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.kind != "const":
            x = F.conv2d(x, self.weight * self.weight_gain, padding=1)
        if self.kind == "up":
            x = blur(x, self.blur_filter, impl)
        if self.use_noise and (noise is not None or noise_mode != "none"):
            r = self.resolution
            if noise is not None:
                noise = noise.to(self.noise_const.device, self.noise_const.dtype).reshape(-1, 1, *noise.shape[-2:])
            elif noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, r, r], device=x.device)
            else:
                noise = self.noise_const.reshape(1, 1, r, r)
            x = torch.addcmul(x, noise, self.noise_strength.reshape(1, -1, 1, 1))
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), LRELU_SLOPE)
        x = F.instance_norm(x, eps=1e-8)                       # (x - mean) / sqrt(var + 1e-8) over H, W
        style = self.affine(w)
        scale, shift = style[:, :self.out_channels], style[:, self.out_channels:]
        return torch.addcmul(shift.reshape(*shift.shape, 1, 1), x, scale.reshape(*scale.shape, 1, 1))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, out_channels={self.out_channels}, resolution={self.resolution}"


class SynthesisBlock(nn.Module):
    """Two style layers at one resolution (the 4x4 block starts from the learned constant)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, config: StyleGAN1SynthesisConfig):
        super().__init__()
        self.resolution = resolution
        self.is_last = is_last
        self.num_conv = 2
        self.num_torgb = 0
        kw = dict(w_dim=w_dim, resolution=resolution, use_noise=config.use_noise, blur_filter=config.blur_filter)
        if resolution == 4:
            self.const = nn.Parameter(torch.ones([out_channels, 4, 4]))
            self.conv0 = SynthesisLayer(0, out_channels, kind="const", **kw)
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, kind="up", **kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, kind="conv", **kw)
        if is_last:
            self.torgb = Conv(out_channels, img_channels, kernel_size=1, gain=1)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "random", noise: dict | None = None,
                impl: str = "fast", const: torch.Tensor | None = None):
        """``const``: the 4x4 block's input in place of the learned constant (a canvas's extension of it)."""
        noise = noise or {}
        if self.resolution == 4:
            x = (self.const if const is None else const).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, noise=noise.get("conv0"), impl=impl)
        x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, noise=noise.get("conv1"), impl=impl)
        img = self.torgb(x) if self.is_last else None
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class SynthesisNetwork(ConstantCanvas, nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, R, R]; ``num_ws = 2 log2(R) - 2`` (one w per layer); canvases:
    :class:`ConstantCanvas`.

    StyleGAN1 has no half-precision layers: ``half_dtype`` is accepted and ignored (fp32 always).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 config: StyleGAN1SynthesisConfig = StyleGAN1SynthesisConfig()):
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"StyleGAN1 needs a power-of-two resolution >= 4, got {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_shape = (img_resolution, img_resolution)    # StyleGAN1 models are square
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = 0
        self.half_dtype = None
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        self.channels = {r: channels_at(r, config.channel_base, config.channel_max) for r in self.block_resolutions}
        self.num_ws = 2 * len(self.block_resolutions)
        for res in self.block_resolutions:
            block = SynthesisBlock(self.channels.get(res // 2, 0), self.channels[res], w_dim, res, img_channels,
                                   is_last=(res == img_resolution), config=config)
            setattr(self, f"b{res}", block)

    has_input_transform = False

    def style_layers(self, include_torgb: bool = False) -> list[StyleLayer]:
        """``conv0``/``conv1`` of block ``r`` use ``ws[2 log2(r) - 4]`` and ``+1``; the ToRGB has no style."""
        return [StyleLayer(2 * i + k, f"b{res}.{name}", getattr(getattr(self, f"b{res}"), name).affine)
                for i, res in enumerate(self.block_resolutions) for k, name in enumerate(("conv0", "conv1"))]

    @property
    def layer_resolutions(self) -> list[int]:
        """Resolution ``2**k`` owns ws ``2k-4`` and ``2k-3``."""
        return block_layer_resolutions(self.num_ws, self.img_resolution)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                noise: dict | None = None, transform=None, impl: str = "fast", canvas=None,
                extension: str = DEFAULT_CONST_EXTENSION, **_unused) -> torch.Tensor:
        """``noise``: explicit maps by layer name (see :meth:`noise_maps`), per sample ([N, 1, H, W]) or
        shared, in place of ``noise_mode``. ``transform`` must be None (no input transform).
        ``canvas=(H, W)``: render that size from the constant continued by ``extension`` (as
        StyleGAN2's ``forward_canvas``; instance norm then takes its statistics over the whole canvas)."""
        check_ws(ws, self.num_ws, self.w_dim)
        check_call(noise_mode, impl)
        if transform is not None:
            raise ValueError("a StyleGAN1 synthesis network has no input transform")
        canvas = check_canvas(canvas, self.img_resolution)
        const = None
        if canvas is None:
            noise = check_noise(noise, self.noise_maps(), ws.shape[0]) if noise else {}
        else:
            const, noise = self.canvas_inputs(canvas, noise, noise_mode, ws.shape[0], extension)
        ws = ws.to(torch.float32)
        x = img = None
        for i, res in enumerate(self.block_resolutions):
            x, img = getattr(self, f"b{res}")(x, ws[:, 2 * i: 2 * i + 2], noise_mode=noise_mode,
                                             noise=split_noise(noise, f"b{res}."), impl=impl,
                                             const=const if res == 4 else None)
        return img if canvas is None else centre_crop(img, canvas).contiguous()


class DiscriminatorBlock(nn.Module):
    """``conv0`` (3x3, lrelu) then ``conv1``: blur, 3x3, 2x2 average pool, lrelu (``Conv1_down``)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, img_channels: int,
                 has_fromrgb: bool, blur_filter=(1, 2, 1)):
        super().__init__()
        self.resolution = resolution
        if has_fromrgb:
            self.fromrgb = Conv(img_channels, in_channels, kernel_size=1)
        self.conv0 = Conv(in_channels, in_channels, kernel_size=3)
        self.conv1 = Conv(in_channels, out_channels, kernel_size=3)
        self.register_buffer("blur_filter", ops.setup_filter(blur_filter), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor, impl: str = "fast") -> torch.Tensor:
        if x is None:
            x = F.leaky_relu(self.fromrgb(img), LRELU_SLOPE)
        x = F.leaky_relu(self.conv0(x), LRELU_SLOPE)
        x = F.avg_pool2d(self.conv1.conv(blur(x, self.blur_filter, impl)), 2)
        return F.leaky_relu(self.conv1.add_bias(x), LRELU_SLOPE)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, 3x3 conv, dense, linear output (one score per class if conditional)."""

    def __init__(self, in_channels: int, hidden: int, c_dim: int, mbstd_group_size: int | None,
                 mbstd_num_channels: int):
        super().__init__()
        self.c_dim = c_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv(in_channels + mbstd_num_channels, in_channels, kernel_size=3)
        self.fc = Dense(in_channels * 16, hidden)
        self.out = Dense(hidden, max(c_dim, 1), gain=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = F.leaky_relu(self.conv(x), LRELU_SLOPE)
        x = F.leaky_relu(self.fc(x.flatten(1)), LRELU_SLOPE)
        x = self.out(x)
        if self.c_dim > 0:
            x = (x * c.to(x.dtype)).sum(dim=1, keepdim=True)
        return x


class Discriminator(nn.Module):
    """StyleGAN1's ``D_basic`` (fully grown): image [N, C, R, R] (+ one-hot c) -> logits [N, 1].

    Built by ``build_discriminator(DiscriminatorConfig(generation='stylegan1', ...))``, with the API of
    :class:`stylegan.networks.discriminator.Discriminator`; uses the config's
    ``channel_base``/``channel_max`` (``C(r) = min(channel_base // r, channel_max)``; the hidden dense
    layer has ``min(channel_base // 2, channel_max)`` features), ``mbstd_*``, ``c_dim`` (the output
    has one score per class and is projected onto the label, as TensorFlow's ``D_basic``) and
    ``resample_filter`` (the blur, default ``[1, 2, 1]``). Everything runs in fp32.
    """

    def __init__(self, config: DiscriminatorConfig, freeze_layers: int = 0):
        super().__init__()
        if freeze_layers:
            raise ValueError("freezing layers is not supported for the StyleGAN1 discriminator")
        cfg = config
        self.config = config
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.half_dtype = None
        log2 = int(np.log2(cfg.img_resolution))
        if cfg.img_resolution < 8 or 2**log2 != cfg.img_resolution:
            raise ValueError(f"the discriminator needs a power-of-two resolution >= 8, got {cfg.img_resolution}")
        if cfg.activation != "lrelu":
            raise ValueError("the StyleGAN1 discriminator supports only the lrelu activation")
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {r: channels_at(r, cfg.channel_base, cfg.channel_max) for r in self.block_resolutions + [4, 2]}
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(ch[res], ch[res // 2], res, cfg.img_channels,
                                                        has_fromrgb=(res == cfg.img_resolution),
                                                        blur_filter=cfg.resample_filter))
        self.b4 = DiscriminatorEpilogue(ch[4], ch[2], cfg.c_dim, cfg.mbstd_group_size, cfg.mbstd_num_channels)

    def set_half_dtype(self, dtype: torch.dtype | None) -> "Discriminator":
        """Accepted for API symmetry: StyleGAN1's discriminator always runs in fp32."""
        check_half_dtype(dtype)
        return self

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, impl: str = "fast",
                **_unused) -> torch.Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"discriminator input must be [N, {expected[0]}, {expected[1]}, {expected[2]}], "
                             f"got {tuple(img.shape)}")
        if self.c_dim > 0 and (c is None or c.ndim != 2 or c.shape[1] != self.c_dim):
            raise ValueError(f"c must have shape [N, {self.c_dim}] (one-hot class labels)")
        img = img.to(torch.float32)
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img, impl)
        return self.b4(x, c)

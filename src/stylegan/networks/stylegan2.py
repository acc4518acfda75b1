"""StyleGAN2 synthesis network: modulated/demodulated convolutions, skip/resnet/orig architectures.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020), Sec. 2.2 (weight
demodulation, Eq. 1-3). Parameter names match NVIDIA's so official state dicts load unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import ops
from .config import MAX_ASPECT, StyleGAN2SynthesisConfig, shape_problem
from .layers import Conv2dLayer, FullyConnectedLayer, block_dtype
from .synthesis import (DEFAULT_CONST_EXTENSION, ConstantCanvas, StyleLayer, block_layer_resolutions, centre_crop,
                        check_call, check_canvas, check_noise, check_ws, memory_format_for, one_at_a_time,
                        split_noise)

POSITIVELY_HOMOGENEOUS = ("linear", "lrelu", "relu")  # act(g * x) == g * act(x) for g > 0


def modulated_conv2d(
    x: torch.Tensor,                       # [N, I, H, W]
    weight: torch.Tensor,                  # [O, I, k, k]
    styles: torch.Tensor,                  # [N, I]
    noise: torch.Tensor | None = None,     # broadcastable to the output
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    impl: str = "fast",                    # implementation of the FIR resampling (see ops.upfirdn2d)
) -> torch.Tensor:
    """Modulate the weights per sample by ``styles``, optionally demodulate (StyleGAN2 Eq. 1, 3), convolve.

    ``fused_modconv=True`` runs one grouped convolution with per-sample weights (best at batch 1);
    ``False`` scales the activations before and after one shared convolution (best for batches).
    Both compute the same function.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if styles.shape != (n, in_ch):
        raise ValueError(f"styles must be [{n}, {in_ch}], got {tuple(styles.shape)}")
    if x.dtype in (torch.float16, torch.bfloat16) and demodulate:
        # Pre-normalise to keep fp16 in range; an exact no-op mathematically since demodulation follows.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # sum_{i,k} (w[o,i,k] * s[n,i])^2 = s^2 @ (sum_k w^2)^T, without the [N,O,I,k,k] tensor.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = ops.conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                padding=padding, flip_weight=flip_weight, impl=impl)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = ops.conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            groups=n, flip_weight=flip_weight, impl=impl)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def styled_conv2d(
    x: torch.Tensor,                       # [N, I, H, W]
    weight: torch.Tensor,                  # [O, I, k, k]
    styles: torch.Tensor,                  # [N, I]
    bias: torch.Tensor | None,             # [O]
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    activation: str = "lrelu",
    gain: float = 1.0,
    clamp: float | None = None,
    impl: str = "fast",
) -> torch.Tensor:
    """One whole StyleGAN2 layer, ``clamp(act(modulated_conv2d(x) + noise + bias) * gain)``, with as
    few passes over the activations as possible.

    The output gain is folded into the (tiny) weights, demodulation coefficients, bias and noise
    (the activations used are positively homogeneous); the bias goes into the convolution itself
    where possible; the remaining element-wise steps run in place when no gradient is needed.
    Same function as :func:`modulated_conv2d` + :func:`ops.bias_act`, fewer memory round trips;
    ``impl='reference'`` computes exactly that (:func:`styled_conv2d_reference`).
    """
    if impl == "reference":
        return styled_conv2d_reference(x, weight, styles, bias, noise, up, padding, resample_filter, demodulate,
                                       flip_weight, activation, gain, clamp)
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if styles.shape != (n, in_ch):
        raise ValueError(f"styles must be [{n}, {in_ch}], got {tuple(styles.shape)}")
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16) and demodulate:
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    fold = activation in POSITIVELY_HOMOGENEOUS and gain > 0
    g = float(gain) if fold else 1.0
    scale = None  # per-sample, per-output-channel scale [N, O]
    if demodulate:
        scale = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
    if g != 1:
        scale = scale * g if scale is not None else torch.full([n, out_ch], g, device=x.device, dtype=styles.dtype)
    b = bias * g if bias is not None and g != 1 else bias
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
        if scale is not None:
            w = w * scale.reshape(n, out_ch, 1, 1, 1)
        conv_bias = b.to(dtype).repeat(n) if (b is not None and up == 1) else None
        y = x.reshape(1, n * in_ch, *x.shape[2:]) if n > 1 else x
        y = ops.conv2d_resample(y, w.reshape(n * out_ch, in_ch, kh, kw).to(dtype), f=resample_filter, up=up,
                                padding=padding, groups=n, flip_weight=flip_weight, bias=conv_bias)
        y = y.reshape(n, out_ch, *y.shape[2:]) if n > 1 else y
        if conv_bias is not None:
            b = None
        scale = None
    else:
        y = x * styles.to(dtype).reshape(n, in_ch, 1, 1)
        y = ops.conv2d_resample(y, weight.to(dtype), f=resample_filter, up=up, padding=padding,
                                flip_weight=flip_weight)
    inplace = not (torch.is_grad_enabled() and (y.requires_grad or x.requires_grad))
    if scale is not None and b is not None:
        y = torch.addcmul(b.to(dtype).reshape(1, -1, 1, 1), y, scale.to(dtype).reshape(n, -1, 1, 1))
    elif scale is not None:
        y = y.mul_(scale.to(dtype).reshape(n, -1, 1, 1)) if inplace else y * scale.to(dtype).reshape(n, -1, 1, 1)
    elif b is not None:
        y = y.add_(b.to(dtype).reshape(1, -1, 1, 1)) if inplace else y + b.to(dtype).reshape(1, -1, 1, 1)
    if noise is not None:
        noise = (noise * g if g != 1 else noise).to(dtype)
        y = y.add_(noise) if inplace else y + noise
    if activation == "lrelu":
        y = torch.nn.functional.leaky_relu_(y, 0.2) if inplace else torch.nn.functional.leaky_relu(y, 0.2)
    elif activation != "linear":
        y = ops.bias_act(y, act=activation, gain=1.0)
    if not fold and gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp_(-clamp, clamp) if inplace else y.clamp(-clamp, clamp)
    return y


def styled_conv2d_reference(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                            demodulate=True, flip_weight=True, activation="lrelu", gain=1.0, clamp=None):
    """:func:`styled_conv2d` the way NVIDIA's reference path computes it: one grouped convolution with
    per-sample weights for every batch, FIR filters by zero-stuffing, then bias, activation, gain, clamp."""
    y = modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=padding, resample_filter=resample_filter,
                         demodulate=demodulate, flip_weight=flip_weight, fused_modconv=True, impl="reference")
    return ops.bias_act(y, bias, act=activation, gain=gain, clamp=clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + per-pixel noise + bias + activation (one style input)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,                   # output resolution
        kernel_size: int = 3,
        up: int = 1,                       # 2 for the first layer of a block
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        size: tuple[int, int] | None = None,   # (H, W) of the output where not square (non-square models)
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.size = tuple(size) if size is not None else (resolution, resolution)
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ops.activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(list(self.size)))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1.0,
                noise: torch.Tensor | None = None, impl: str = "fast"):
        """``noise``: an explicit map ([N or 1, 1, H, W] or [H, W]) used instead of ``noise_mode``."""
        styles = self.affine(w)
        if not self.use_noise:
            noise = None
        elif noise is not None:
            noise = noise.to(self.noise_const.device, self.noise_const.dtype) * self.noise_strength
        elif noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, *self.size], device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return styled_conv2d(x, self.weight, styles, self.bias, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv, activation=self.activation, gain=self.act_gain * gain,
                             clamp=clamp, impl=impl)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 convolution to image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, w, fused_modconv: bool = True, impl: str = "fast"):
        styles = self.affine(w) * self.weight_gain
        return styled_conv2d(x, self.weight, styles, self.bias, demodulate=False, fused_modconv=fused_modconv,
                             activation="linear", clamp=self.conv_clamp, impl=impl)


class SynthesisBlock(nn.Module):
    """One resolution: (const |) conv0 (up 2) + conv1, plus ToRGB / skip according to the architecture."""

    def __init__(
        self,
        in_channels: int,                  # 0 for the first (4x4) block
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        size: tuple[int, int] | None = None,   # (H, W) of the output where not square (non-square models)
        **layer_kwargs,
    ):
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown synthesis architecture {architecture!r}")
        size = tuple(size) if size is not None else (resolution, resolution)
        layer_kwargs["size"] = None if size == (resolution, resolution) else size
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, *size]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp,
                                    **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, noise_mode="random",
                half_dtype=None, channels_last=None, noise: dict | None = None, impl: str = "fast",
                const: torch.Tensor | None = None):
        """``noise``: explicit maps of this block's layers (``{'conv0': t, 'conv1': t}``, any subset);
        ``const``: the first block's input in place of the learned constant (a canvas's extension of it)."""
        n = ws.shape[0]
        w_iter = iter(ws.unbind(dim=1))
        device = ws.device if x is None else x.device
        dtype = block_dtype(self.use_fp16, force_fp32, device, half_dtype)
        memory_format = memory_format_for(channels_last, device, dtype, impl)
        if fused_modconv is None:
            fused_modconv = n == 1
        noise = noise or {}
        kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
        if self.in_channels == 0:
            const = self.const if const is None else const
            x = const.to(dtype).unsqueeze(0).repeat([n, 1, 1, 1]).contiguous(memory_format=memory_format)
            x = self.conv1(x, next(w_iter), noise=noise.get("conv1"), **kw)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype, memory_format=memory_format)
            y = self.skip(x, gain=np.sqrt(0.5), impl=impl)
            x = self.conv0(x, next(w_iter), noise=noise.get("conv0"), **kw)
            x = self.conv1(x, next(w_iter), noise=noise.get("conv1"), gain=np.sqrt(0.5), **kw)
            x = y + x
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_iter), noise=noise.get("conv0"), **kw)
            x = self.conv1(x, next(w_iter), noise=noise.get("conv1"), **kw)
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter, impl=impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv, impl=impl).to(torch.float32)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}"


class SynthesisNetwork(ConstantCanvas, nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W] (canvases: :class:`ConstantCanvas`).

    ``img_shape=(H, W)`` (the longer side ``img_resolution``) makes a non-square model: the learned
    constant and every noise map have that aspect (``4H/R`` x ``4W/R`` cells), the layers are unchanged."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 config: StyleGAN2SynthesisConfig = StyleGAN2SynthesisConfig(),
                 img_shape: tuple[int, int] | None = None):
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"StyleGAN2 needs a power-of-two resolution >= 4, got {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_shape = tuple(img_shape) if img_shape is not None else (img_resolution, img_resolution)
        if max(self.img_shape) != img_resolution or shape_problem(*self.img_shape):
            raise ValueError(f"img_shape {self.img_shape} needs its longer side {img_resolution}, sides that are "
                             f"powers of two and at most {MAX_ASPECT}:1")
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = config.num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        self.channels = {res: min(config.channel_base // res, config.channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - config.num_fp16_res), 8)
        self.half_dtype = None      # set by Generator.set_half_dtype(); None = fp32 everywhere
        self.channels_last = None   # None: automatic (see memory_format_for)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = self.channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, self.channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=(res == img_resolution),
                                   architecture=config.architecture, resample_filter=config.resample_filter,
                                   conv_clamp=config.conv_clamp, use_fp16=(res >= fp16_resolution),
                                   use_noise=config.use_noise, activation=config.activation,
                                   kernel_size=config.kernel_size,
                                   size=tuple(v * res // img_resolution for v in self.img_shape))
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    has_input_transform = False

    def style_layers(self, include_torgb: bool = False) -> list[StyleLayer]:
        """Every style-modulated layer in order; a block's ToRGB shares its w with the next block's conv0."""
        out, idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            names = (["conv0"] if block.in_channels else []) + ["conv1"]
            out += [StyleLayer(idx + k, f"b{res}.{name}", getattr(block, name).affine) for k, name in enumerate(names)]
            if include_torgb and block.num_torgb:
                out.append(StyleLayer(idx + block.num_conv, f"b{res}.torgb", block.torgb.affine, is_torgb=True))
            idx += block.num_conv
        return out

    @property
    def layer_resolutions(self) -> list[int]:
        """Resolution ``2**k`` owns ws ``2k-4`` and ``2k-3``."""
        return block_layer_resolutions(self.num_ws, self.img_resolution)

    def block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Split ws per block: a block's ToRGB shares its w with the next block's first conv."""
        out, idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, noise: dict | None = None, transform=None,
                impl: str = "fast", canvas=None, extension: str = DEFAULT_CONST_EXTENSION,
                **_unused) -> torch.Tensor:
        """``noise``: explicit maps by layer name (see :meth:`noise_maps`) in place of ``noise_mode``;
        a batch with explicit maps runs whole. ``transform`` must be None (no input transform).
        ``canvas=(H, W)``: render that size from the constant continued by ``extension``
        (:meth:`forward_canvas`)."""
        check_ws(ws, self.num_ws, self.w_dim)
        check_call(noise_mode, impl)
        if transform is not None:
            raise ValueError("a StyleGAN2 synthesis network has no input transform")
        canvas = check_canvas(canvas, self.img_shape)
        if canvas is not None:
            return self.forward_canvas(ws, canvas, extension, noise_mode=noise_mode, force_fp32=force_fp32,
                                       fused_modconv=fused_modconv, noise=noise, impl=impl)
        noise = check_noise(noise, self.noise_maps(), ws.shape[0]) if noise else {}
        if one_at_a_time(ws, fused_modconv, impl) and not noise:
            return torch.cat([self.forward(w, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=True)
                              for w in ws.split(1)])
        ws = ws.to(torch.float32)
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            block = getattr(self, f"b{res}")
            x, img = block(x, img, cur_ws, force_fp32=force_fp32, fused_modconv=fused_modconv,
                           noise_mode=noise_mode, half_dtype=self.half_dtype, channels_last=self.channels_last,
                           noise=split_noise(noise, f"b{res}."), impl=impl)
        return img.contiguous()

    def forward_canvas(self, ws: torch.Tensor, canvas: tuple[int, int], extension: str, noise_mode: str,
                       force_fp32: bool, fused_modconv: bool | None, noise: dict | None,
                       impl: str) -> torch.Tensor:
        """A canvas: the constant (4x4 cells, or the native shape's) continued to :meth:`const_cells` cells (tiled, reflected or
        stretched, the original centred), every noise map continued to match (explicit maps of the
        model's own size too), the layers run unchanged, the result centre-cropped to ``canvas``."""
        if one_at_a_time(ws, fused_modconv, impl) and not noise:
            return torch.cat([self.forward_canvas(w, canvas, extension, noise_mode, force_fp32, True, None, impl)
                              for w in ws.split(1)])
        const, noise = self.canvas_inputs(canvas, noise, noise_mode, ws.shape[0], extension)
        ws = ws.to(torch.float32)
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            block = getattr(self, f"b{res}")
            x, img = block(x, img, cur_ws, force_fp32=force_fp32, fused_modconv=fused_modconv, noise_mode="none",
                           half_dtype=self.half_dtype, channels_last=self.channels_last,
                           noise=split_noise(noise, f"b{res}."), impl=impl, const=const if res == 4 else None)
        return centre_crop(img, canvas).contiguous()

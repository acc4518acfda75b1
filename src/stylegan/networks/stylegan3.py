"""StyleGAN3 (alias-free) synthesis network: Fourier-feature input, filtered leaky ReLU, T and R configs.

Karras et al., "Alias-Free Generative Adversarial Networks" (2021). Layer schedule: Sec. 3.2 and
Appendix F (cutoffs, stopbands and sampling rates grow geometrically, the last layers critically
sampled). Parameter names match NVIDIA's so official state dicts load unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import nn

from . import ops
from .config import StyleGAN3SynthesisConfig
from .layers import FullyConnectedLayer, block_dtype
from .synthesis import (StyleLayer, centre_crop, check_call, check_canvas, check_noise, check_ws, memory_format_for,
                        one_at_a_time, round_canvas)


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter (1-D separable, or 2-D radially symmetric jinc)."""
    if numtaps == 1:
        return None
    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(f, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    f = f / np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


def modulated_conv2d(
    x: torch.Tensor,                       # [N, I, H, W]
    weight: torch.Tensor,                  # [O, I, k, k]
    styles: torch.Tensor,                  # [N, I]
    padding: int = 0,
    demodulate: bool = True,
    input_gain: torch.Tensor | None = None,  # scalar, applied after demodulation
    fused_modconv: bool = True,
    bias: torch.Tensor | None = None,      # [O], added to the output (folded into the convolution)
    impl: str = "fast",                    # 'reference': a grouped convolution, then the bias
) -> torch.Tensor:
    """StyleGAN3's modulated convolution: weights and styles pre-normalised by their RMS, then
    modulate, demodulate, and scale by the input gain (``rsqrt(magnitude_ema)``)."""
    if impl == "reference":
        y = modulated_conv2d(x, weight, styles, padding=padding, demodulate=demodulate, input_gain=input_gain,
                             fused_modconv=True)
        return y if bias is None else y + bias.to(y.dtype).reshape(1, -1, 1, 1)
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    if not fused_modconv:
        scale = styles if input_gain is None else styles * input_gain
        x = x * scale.to(x.dtype).reshape(n, -1, 1, 1)
        x = torch.nn.functional.conv2d(x, weight.to(x.dtype), padding=padding)
        if demodulate:
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
            if bias is not None:
                return torch.addcmul(bias.to(x.dtype).reshape(1, -1, 1, 1), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + bias.to(x.dtype).reshape(1, -1, 1, 1) if bias is not None else x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain
    if n > 1:
        x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    b = bias.to(x.dtype).repeat(n) if bias is not None else None
    x = torch.nn.functional.conv2d(x, w.to(x.dtype), bias=b, padding=padding, groups=n)
    return x.reshape(n, -1, *x.shape[2:]) if n > 1 else x


class SynthesisInput(nn.Module):
    """Fourier features of a continuous, w-controlled rotation + translation of the input plane."""

    def __init__(self, w_dim: int, channels: int, size, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2]).astype(np.int64)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        # Frequencies uniformly inside the disc of radius `bandwidth`, random phases.
        angle = torch.rand([channels]) * (2 * math.pi)
        radius = torch.rand([channels]).sqrt() * bandwidth
        freqs = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))  # stored inverse image transform (NVIDIA's API)
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None, size=None) -> torch.Tensor:
        """``transform``: a 3x3 inverse image transform used instead of the stored buffer; ``size``:
        ``[width, height]`` of the sampling grid instead of :attr:`size` (a canvas: the same spacing,
        ``1 / sampling_rate``, centred, over a wider field)."""
        n = w.shape[0]
        t = self.affine(w)                                     # [N, 4]: rotation (cos, sin), translation
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transform = self.transform if transform is None else torch.as_tensor(transform, dtype=torch.float32)
        transforms = m_r @ m_t @ transform.to(w.device, torch.float32).unsqueeze(0)
        freqs = self.freqs.unsqueeze(0)                        # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]                  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        width, height = (int(v) for v in (self.size if size is None else size))
        gx = (torch.arange(width, device=w.device, dtype=torch.float32) + 0.5 - width / 2) / self.sampling_rate
        gy = (torch.arange(height, device=w.device, dtype=torch.float32) + 0.5 - height / 2) / self.sampling_rate
        # phase[n, y, x, c] = gx * f[n,c,0] + gy * f[n,c,1] + phase[n,c]
        x = (gx.reshape(1, 1, width, 1) * freqs[:, None, None, :, 0]
             + gy.reshape(1, height, 1, 1) * freqs[:, None, None, :, 1]
             + phases[:, None, None, :])
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N, C, H, W] view of NHWC memory (channels-last)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(nn.Module):
    """Modulated convolution followed by the filtered (alias-free) leaky ReLU; or the ToRGB layer."""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size,                           # [width, height] of the input feature map
        out_size,
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = bool(use_fp16)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2]).astype(np.int64)
        self.out_size = np.broadcast_to(np.asarray(out_size), [2]).astype(np.int64)
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        if self.up_factor * in_sampling_rate != self.tmp_sampling_rate:
            raise ValueError("StyleGAN3 layer: sampling rates must be integer multiples")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))

        self.padding = self.padding_for(self.in_size, self.out_size)

    def padding_for(self, in_size, out_size) -> list[int]:
        """``[x_lo, x_hi, y_lo, y_hi]`` so that an input of ``in_size`` ([width, height]) gives exactly
        ``out_size`` after up/conv/down, the two sample grids centred on each other."""
        in_size, out_size = np.asarray(in_size, dtype=np.int64), np.asarray(out_size, dtype=np.int64)
        pad_total = (out_size - 1) * self.down_factor + 1
        pad_total -= (in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        return [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x, w, force_fp32: bool = False, update_emas: bool = False, fused_modconv=None,
                half_dtype=None, impl: str = "fast", padding: list[int] | None = None, **_unused):
        """``padding``: :meth:`padding_for` another input/output size (a canvas) instead of :attr:`padding`."""
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        dtype = block_dtype(self.use_fp16, force_fp32, x.device, half_dtype)
        if fused_modconv is None:
            fused_modconv = x.shape[0] == 1
        x = modulated_conv2d(x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
                             demodulate=(not self.is_torgb), input_gain=input_gain, fused_modconv=fused_modconv,
                             bias=self.bias, impl=impl)  # the filtered lrelu's bias, added before its upsampling
        gain = 1 if self.is_torgb else math.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        return ops.filtered_lrelu(x, self.up_filter, self.down_filter, None,
                                  up=self.up_factor, down=self.down_factor,
                                  padding=self.padding if padding is None else padding,
                                  gain=gain, slope=slope, clamp=self.conv_clamp, impl=impl)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}x{list(self.in_size)}@{self.in_sampling_rate:g}, "
                f"out={self.out_channels}x{list(self.out_size)}@{self.out_sampling_rate:g}, "
                f"up={self.up_factor}, down={self.down_factor}, torgb={self.is_torgb}")


def layer_schedule(img_resolution: int, img_channels: int, config: StyleGAN3SynthesisConfig) -> dict:
    """Per-layer cutoffs, stopbands, sampling rates, sizes and channel counts (index 0 = input)."""
    c = config
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * c.last_stopband_rel
    exponents = np.minimum(np.arange(c.num_layers + 1) / (c.num_layers - c.num_critical), 1)
    cutoffs = c.first_cutoff * (last_cutoff / c.first_cutoff) ** exponents
    stopbands = c.first_stopband * (last_stopband / c.first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + c.margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((c.channel_base / 2) / cutoffs, c.channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates,
                half_widths=half_widths, sizes=sizes, channels=channels)


class SynthesisNetwork(nn.Module):
    """ws [N, num_layers + 2, w_dim] -> image [N, C, H, W].

    ``img_shape=(H, W)`` (the longer side ``img_resolution``) makes a non-square model: the same layers
    and weights as the square one (they do not depend on the grid), whose default render is the canvas
    ``(H, W)`` (:meth:`canvas_sizes`: every grid narrowed on the short side, nothing cropped)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 config: StyleGAN3SynthesisConfig = StyleGAN3SynthesisConfig(),
                 img_shape: tuple[int, int] | None = None):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = config.num_layers + 2
        self.img_resolution = img_resolution
        self.img_shape = tuple(img_shape) if img_shape is not None else (img_resolution, img_resolution)
        if max(self.img_shape) != img_resolution or min(self.img_shape) % 2:
            raise ValueError(f"img_shape {self.img_shape} needs its longer side {img_resolution} and even sides")
        self.img_channels = img_channels
        self.num_layers = config.num_layers
        self.num_critical = config.num_critical
        self.margin_size = config.margin_size
        self.output_scale = config.output_scale
        self.num_fp16_res = config.num_fp16_res
        self.half_dtype = None      # set by Generator.set_half_dtype(); None = fp32 everywhere
        self.channels_last = None   # None: automatic (see synthesis.memory_format_for)
        s = layer_schedule(img_resolution, img_channels, config)
        self.input = SynthesisInput(w_dim=w_dim, channels=int(s["channels"][0]), size=int(s["sizes"][0]),
                                    sampling_rate=s["sampling_rates"][0], bandwidth=s["cutoffs"][0])
        self.layer_names = []
        for idx in range(config.num_layers + 1):
            prev = max(idx - 1, 0)
            is_torgb = idx == config.num_layers
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=is_torgb,
                is_critically_sampled=(idx >= config.num_layers - config.num_critical),
                use_fp16=(s["sampling_rates"][idx] * (2**config.num_fp16_res) > img_resolution),
                in_channels=int(s["channels"][prev]), out_channels=int(s["channels"][idx]),
                in_size=int(s["sizes"][prev]), out_size=int(s["sizes"][idx]),
                in_sampling_rate=int(s["sampling_rates"][prev]), out_sampling_rate=int(s["sampling_rates"][idx]),
                in_cutoff=s["cutoffs"][prev], out_cutoff=s["cutoffs"][idx],
                in_half_width=s["half_widths"][prev], out_half_width=s["half_widths"][idx],
                conv_kernel=config.conv_kernel, filter_size=config.filter_size,
                lrelu_upsampling=config.lrelu_upsampling, use_radial_filters=config.use_radial_filters,
                conv_clamp=config.conv_clamp, magnitude_ema_beta=config.magnitude_ema_beta)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    has_input_transform = True

    def style_layers(self, include_torgb: bool = False) -> list[StyleLayer]:
        """Layer ``L{i}`` is driven by ``ws[i + 1]`` (``ws[0]`` drives the Fourier-feature input)."""
        return [StyleLayer(i + 1, name, getattr(self, name).affine, is_torgb=getattr(self, name).is_torgb)
                for i, name in enumerate(self.layer_names) if include_torgb or not getattr(self, name).is_torgb]

    @property
    def layer_resolutions(self) -> list[int]:
        """A layer belongs to the smallest resolution whose Nyquist frequency covers its output cutoff,
        ``2**ceil(log2(2 * cutoff))`` (the input: its bandwidth), clipped to [4, img_resolution]."""
        cutoffs = [self.input.bandwidth] + [float(getattr(self, name).out_cutoff) for name in self.layer_names]
        res = [2 ** math.ceil(round(math.log2(2 * c), 6)) for c in cutoffs]
        return [int(min(max(r, 4), self.img_resolution)) for r in res]

    def noise_maps(self, canvas=None, **_unused) -> dict[str, torch.Tensor]:
        """StyleGAN3 has no per-pixel noise inputs (on any canvas)."""
        return {}

    #: Canvas sides are even: every layer's sample grid then lies on the training grid's lattice.
    canvas_stride = 2

    def canvas_size(self, canvas) -> tuple[int, int]:
        """The size rendered for ``canvas=(H, W)``: each side rounded up to an even number."""
        canvas = check_canvas(canvas, self.img_shape)
        return tuple(self.img_shape) if canvas is None else round_canvas(canvas, self.canvas_stride)

    def canvas_sizes(self, canvas) -> list[tuple[int, int]]:
        """``[width, height]`` of the input grid and of every layer's output for ``canvas`` (None: the
        model's own :attr:`img_shape`): the same
        sampling rates and margins over a field ``W / R`` by ``H / R`` image widths; a layer sampled at
        ``sr`` below the image rate gets ``sr * side / R`` samples rounded up to an even count (so its
        grid stays on the training lattice) plus the margins; the last two layers the canvas itself."""
        h, w = self.canvas_size(canvas)
        layers = [self.input] + [getattr(self, name) for name in self.layer_names]
        rates = [self.input.sampling_rate] + [float(layer.out_sampling_rate) for layer in layers[1:]]
        defaults = [self.input.size] + [layer.out_size for layer in layers[1:]]
        out = []
        for i, (rate, default) in enumerate(zip(rates, defaults)):
            if i >= len(layers) - 2:
                out.append((w, h))
                continue
            margin = (int(default[0]) - int(rate)) // 2
            out.append(tuple(int(2 * math.ceil(rate * side / self.img_resolution / 2) + 2 * margin)
                             for side in (w, h)))
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = False,
                update_emas: bool = False, fused_modconv: bool | None = None, noise: dict | None = None,
                transform=None, impl: str = "fast", canvas=None, **_unused) -> torch.Tensor:
        """``noise_mode`` is accepted for API symmetry (StyleGAN3 has no noise inputs); ``transform``: a 3x3
        inverse image transform for this call instead of the stored ``input.transform``; ``canvas=(H, W)``:
        a wider (or other) field of view of the same continuous image (:meth:`canvas_sizes`), centre-cropped
        to ``canvas``."""
        check_ws(ws, self.num_ws, self.w_dim)
        check_call(noise_mode, impl)
        if noise:
            check_noise(noise, {}, ws.shape[0])
        canvas = check_canvas(canvas, self.img_shape)
        if one_at_a_time(ws, fused_modconv, impl):
            return torch.cat([self.forward(w, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas,
                                           fused_modconv=True, transform=transform, canvas=canvas)
                              for w in ws.split(1)])
        square = self.img_shape[0] == self.img_shape[1]
        sizes = self.canvas_sizes(canvas) if canvas is not None or not square else None
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform, size=None if sizes is None else sizes[0])
        fmt = memory_format_for(self.channels_last, x.device, self.half_dtype or torch.float32, impl)
        x = x.contiguous(memory_format=fmt)
        for i, (name, w) in enumerate(zip(self.layer_names, ws[1:])):
            layer = getattr(self, name)
            padding = None if sizes is None else layer.padding_for(sizes[i], sizes[i + 1])
            x = layer(x, w, force_fp32=force_fp32, update_emas=update_emas, fused_modconv=fused_modconv,
                      half_dtype=self.half_dtype, impl=impl, padding=padding)
        if self.output_scale != 1:
            x = x * self.output_scale
        x = x.to(torch.float32)
        return x.contiguous() if canvas is None else centre_crop(x, canvas).contiguous()

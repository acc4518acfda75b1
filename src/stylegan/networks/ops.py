"""Low-level operations shared by every StyleGAN generation, in pure PyTorch.

Each op is defined once by its mathematical meaning (the "reference" semantics of the official
code: zero-insert upsampling, padding, true FIR convolution, subsampling) and executed by the
cheapest equivalent PyTorch primitives: separable passes for 1-D filters, strided convolutions
instead of explicit subsampling, transposed (polyphase) convolutions instead of zero-stuffed
intermediates. All filters in StyleGAN are symmetric, but flips are honoured anyway.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Padding = int | tuple[int, int] | tuple[int, int, int, int] | list[int]

ACTIVATIONS: dict[str, tuple[float, float]] = {
    # name: (default alpha, default gain)
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2)),
    "lrelu": (0.2, math.sqrt(2)),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    """Default output gain of an activation (keeps activations at unit variance)."""
    return ACTIVATIONS[act][1]


def _activate(x: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    if act == "linear":
        return x
    if act == "lrelu":
        return F.leaky_relu(x, alpha)
    if act == "relu":
        return F.relu(x)
    if act == "tanh":
        return torch.tanh(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "elu":
        return F.elu(x)
    if act == "selu":
        return F.selu(x)
    if act == "softplus":
        return F.softplus(x)
    if act == "swish":
        return x * torch.sigmoid(x)
    raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Bias, activation, gain and clamp, in that order: ``clip(act(x + b) * gain, -clamp, clamp)``."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    default_alpha, default_gain = ACTIVATIONS[act]
    alpha = default_alpha if alpha is None else float(alpha)
    gain = default_gain if gain is None else float(gain)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    x = _activate(x, act, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (pixel norm of the mapping input)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def setup_filter(f, normalize: bool = True, separable: bool | None = None) -> torch.Tensor:
    """Turn a list of taps into a float32 FIR filter as StyleGAN2 stores it.

    A 1-D list with fewer than 8 taps becomes its 2-D outer product ([1,3,3,1] -> 4x4/64);
    longer 1-D filters stay 1-D (separable).
    """
    f = torch.as_tensor([1.0] if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    return f


def _parse_pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v[0], v[0]
    return v[0], v[1]


def _parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(i) for i in padding]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must have 1, 2 or 4 values, got {padding!r}")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; 1-D filters are applied along both axes."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def _pad_or_crop(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    if px0 > 0 or px1 > 0 or py0 > 0 or py1 > 0:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if px0 < 0 or px1 < 0 or py0 < 0 or py1 < 0:
        x = x[..., max(-py0, 0) : x.shape[-2] - max(-py1, 0), max(-px0, 0) : x.shape[-1] - max(-px1, 0)]
    return x


def _depthwise(x: torch.Tensor, taps: torch.Tensor, axis: str, stride: int, transposed: bool,
               pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """One depthwise correlation (or transposed convolution) pass of a 1-D or 2-D filter.

    ``pad`` = (along y, along x): implicit zero padding of a correlation, or for a transposed
    convolution the samples cropped from both ends of its output (oneDNN does either for free).
    """
    c = x.shape[1]
    if axis == "x":
        w = taps.reshape(1, 1, 1, -1)
        s = (1, stride)
    elif axis == "y":
        w = taps.reshape(1, 1, -1, 1)
        s = (stride, 1)
    else:
        w = taps[None, None]
        s = (stride, stride)
    w = w.expand(c, 1, *w.shape[2:])
    if transposed:
        return F.conv_transpose2d(x, w, stride=s, padding=pad, groups=c)
    return F.conv2d(x, w, stride=s, padding=pad, groups=c)


def _shared_margin(p0: int, p1: int, sign: int) -> tuple[int, int, int]:
    """Split (p0, p1) into the margin m >= 0 that both ends share with ``sign`` (+1: padding, which a
    correlation applies for free; -1: a crop, which a transposed convolution applies for free) and
    the rest: ``(m, p0 - sign * m, p1 - sign * m)``."""
    m = max(min(sign * p0, sign * p1), 0)
    return m, p0 - sign * m, p1 - sign * m


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | tuple[int, int] = 1,
    down: int | tuple[int, int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "fast",
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with a FIR filter, subsample.

    Semantics (per axis): sample i moves to i*up followed by up-1 zeros; pad by (p0, p1)
    (negative crops); true convolution with ``f`` in valid mode (correlation if ``flip_filter``);
    keep every ``down``-th sample. Output size ``(in*up + p0 + p1 - taps) // down + 1``.
    A 2-D filter is scaled by ``gain``; a 1-D filter runs along x then y, each pass by sqrt(gain).

    Implementation: upsampling is a stride-``up`` transposed convolution (no zero-stuffed
    tensor), subsampling a strided convolution, 1-D filters two cheap passes. ``impl='reference'``
    runs :func:`upfirdn2d_reference` instead.
    """
    if impl == "reference":
        return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got shape {tuple(x.shape)}")
    upx, upy = _parse_pair(up)
    downx, downy = _parse_pair(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    if f is None:
        if (upx, upy, downx, downy) == (1, 1, 1, 1):  # no filter, no resampling: just pad and scale
            x = _pad_or_crop(x, px0, px1, py0, py1)
            return x * gain if gain != 1 else x
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # true convolution == correlation with the flipped filter
    if f.ndim == 1:
        passes = [("x", f * math.sqrt(gain) if gain != 1 else f, upx, downx, px0, px1),
                  ("y", f * math.sqrt(gain) if gain != 1 else f, upy, downy, py0, py1)]
        if (upx > 1 or upy > 1) and x.device.type == "cpu":
            passes.reverse()  # oneDNN's transposed convolution is faster along x: give it the larger input
        for axis, taps, u, d, p0, p1 in passes:
            x = _resample_1d(x, taps, axis, u, d, p0, p1)
        return x
    f = f * gain if gain != 1 else f
    return _resample_2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1)


def _resample_1d(x, taps, axis, up, down, p0, p1):
    k = taps.shape[0]
    if up == 1:
        m, p0, p1 = _shared_margin(p0, p1, +1)
        x = _pad_or_crop(x, *((p0, p1, 0, 0) if axis == "x" else (0, 0, p0, p1)))
        return _depthwise(x, taps, axis, down, transposed=False, pad=(0, m) if axis == "x" else (m, 0))
    # Zero-insert + pad + correlate(flipped f) == transposed conv (true conv with f) then shift.
    # The transposed conv of length L gives (L-1)*up + k samples; zero-insertion with trailing
    # zeros then padding by (p0, p1) and a valid correlation starts k-1-p0 samples later.
    lo = p0 - (k - 1)
    hi = p1 - (k - 1) + (up - 1)
    m, lo, hi = _shared_margin(lo, hi, -1)
    y = _depthwise(x, taps.flip(0), axis, up, transposed=True, pad=(0, m) if axis == "x" else (m, 0))
    y = _pad_or_crop(y, *((lo, hi, 0, 0) if axis == "x" else (0, 0, lo, hi)))
    if down > 1:
        y = y[..., ::down] if axis == "x" else y[..., ::down, :]
    return y


def _resample_2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1):
    kh, kw = f.shape
    if upx == 1 and upy == 1:
        cx, px0, px1 = _shared_margin(px0, px1, +1)
        cy, py0, py1 = _shared_margin(py0, py1, +1)
        x = _pad_or_crop(x, px0, px1, py0, py1)
        if downx == downy:
            return _depthwise(x, f, "xy", downx, transposed=False, pad=(cy, cx))
        return _depthwise(x, f, "xy", 1, transposed=False, pad=(cy, cx))[..., ::downy, ::downx]
    if upx == upy:
        lox, hix = px0 - (kw - 1), px1 - (kw - 1) + upx - 1
        loy, hiy = py0 - (kh - 1), py1 - (kh - 1) + upy - 1
        cx, lox, hix = _shared_margin(lox, hix, -1)
        cy, loy, hiy = _shared_margin(loy, hiy, -1)
        y = _depthwise(x, f.flip([0, 1]), "xy", upx, transposed=True, pad=(cy, cx))
        y = _pad_or_crop(y, lox, hix, loy, hiy)
        return y[..., ::downy, ::downx] if (downx > 1 or downy > 1) else y
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)
    x = _pad_or_crop(x, px0, px1, py0, py1)
    return _depthwise(x, f, "xy", 1, transposed=False)[..., ::downy, ::downx]


def upfirdn2d_reference(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1) -> torch.Tensor:
    """Literal, slow definition of :func:`upfirdn2d`: zero-stuffing, padding, full-rate depthwise
    filtering (two passes for a 1-D filter), then discarding samples.

    Kept as the executable specification the fast path is tested against, and as the
    official-equivalent baseline in ``benchmarks/``.
    """
    upx, upy = _parse_pair(up)
    downx, downy = _parse_pair(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1])
    f = f.to(device=x.device, dtype=x.dtype)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)
    x = _pad_or_crop(x, px0, px1, py0, py1)
    f = f * gain ** (f.ndim / 2)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    else:
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, f.shape[0]), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, f.shape[0], 1), groups=c)
    return x[:, :, ::downy, ::downx]


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1, impl: str = "fast") -> torch.Tensor:
    """Upsample by ``up`` with FIR filter ``f`` (output exactly ``up`` times larger)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * up * up, impl=impl)


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down: int = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1, impl: str = "fast") -> torch.Tensor:
    """Downsample by ``down`` with FIR filter ``f`` (output exactly ``down`` times smaller)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def filter2d(x: torch.Tensor, f: torch.Tensor | None, padding: Padding = 0,
             flip_filter: bool = False, gain: float = 1, impl: str = "fast") -> torch.Tensor:
    """Filter with ``f`` keeping the size (same-padding)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    bias: torch.Tensor | None = None,
    impl: str = "fast",
) -> torch.Tensor:
    """2-D convolution with optional FIR up- or down-sampling (and an optional bias added last).

    Meaning: up>1 = ``upfirdn2d(x, f, up, pad, gain=up^2)`` then a valid convolution with ``w``;
    down>1 = ``upfirdn2d(x, f, pad)`` then a stride-``down`` convolution. ``flip_weight=True``
    is a correlation (``F.conv2d``), ``False`` a true convolution (kernel flipped), as StyleGAN2's
    upsampling layers use. Up-sampling runs as one transposed convolution followed by the FIR
    filter, never materialising a zero-stuffed tensor (``impl`` selects the FIR filter's implementation).
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and down-sampling at once is not supported")
    if bias is not None and (up > 1 or down > 1):
        y = conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter, impl=impl)
        return y + bias.reshape(1, -1, 1, 1).to(y.dtype)
    out_ch, in_ch_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    if up > 1:
        px0 = padding + (fw + up - 1) // 2
        px1 = padding + (fw - up) // 2
        py0 = padding + (fh + up - 1) // 2
        py1 = padding + (fh - up) // 2
        if kw == 1 and kh == 1:
            x = F.conv2d(x, w, groups=groups)
            return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter,
                             impl=impl)
        # Transposed conv computes a *true* convolution of the zero-inserted input with its kernel.
        wt = w if not flip_weight else w.flip([2, 3])
        wt = wt.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
        p = [px0 - (kw - 1), px1 - (kw - 1) + up - 1, py0 - (kh - 1), py1 - (kh - 1) + up - 1]
        return upfirdn2d(x, f, padding=p, gain=up * up, flip_filter=flip_filter, impl=impl)
    if not flip_weight:
        w = w.flip([2, 3])
    if down > 1:
        px0 = padding + (fw - down + 1) // 2
        px1 = padding + (fw - down) // 2
        py0 = padding + (fh - down + 1) // 2
        py1 = padding + (fh - down) // 2
        if kw == 1 and kh == 1:
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, stride=down, groups=groups)
    return F.conv2d(x, w, bias=bias, padding=padding, groups=groups)


# Channel-chunk budget for CPU inference: the upsampled intermediate of one chunk stays around this
# size, so it is reused from the allocator's cache and mostly from the CPU's L3 cache instead of
# being page-faulted in fresh for every layer (measured: a 562x562 intermediate of 512 channels takes
# 0.60 s whole, 0.24 s in 16-channel chunks on a 2-core EPYC).
CPU_CHUNK_BYTES = 16 << 20


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = "fast",
) -> torch.Tensor:
    """StyleGAN3's alias-free nonlinearity: bias, upsample with ``fu``, leaky ReLU, clamp, downsample with ``fd``.

    ``= upfirdn2d(clip(lrelu(upfirdn2d(x + b, fu, up, padding, gain=up^2)) * gain), fd, down)``.
    The upsampling is polyphase (transposed convolution) and the downsampling a strided
    convolution, so neither the zero-stuffed input nor the full-rate filtered output that the
    downsampler discards are ever computed. CPU inference runs in channel chunks (every step is
    per channel), keeping the large upsampled intermediate small and cached. ``impl='reference'`` runs
    :func:`filtered_lrelu_reference` instead.
    """
    if impl == "reference":
        return filtered_lrelu_reference(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope,
                                        clamp=clamp, flip_filter=flip_filter)
    args = (fu, fd, up, down, padding, gain, slope, clamp, flip_filter)
    grad = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    if x.device.type == "cpu" and not grad and x.ndim == 4:
        fw, fh = filter_size(fu)
        px0, px1, py0, py1 = _parse_padding(padding)
        upx, upy = _parse_pair(up)
        tmp_bytes = (x.shape[0] * x.element_size() * max(x.shape[2] * upy + py0 + py1 - fh + 1, 1)
                     * max(x.shape[3] * upx + px0 + px1 - fw + 1, 1))  # per channel
        chunk = max(16, CPU_CHUNK_BYTES // tmp_bytes // 16 * 16)
        if x.shape[1] > chunk:
            return _filtered_lrelu_in_chunks(x, b, chunk, args)
    return _filtered_lrelu(x, b, *args)


def _filtered_lrelu_in_chunks(x, b, chunk, args):
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = None
    for c0 in range(0, x.shape[1], chunk):
        xc = x[:, c0 : c0 + chunk].contiguous(memory_format=fmt)
        y = _filtered_lrelu(xc, None if b is None else b[c0 : c0 + chunk], *args)
        if out is None:
            out = torch.empty([x.shape[0], x.shape[1], *y.shape[2:]], dtype=y.dtype, device=y.device,
                              memory_format=fmt)
        out[:, c0 : c0 + chunk] = y
    return out


def _filtered_lrelu(x, b, fu, fd, up, down, padding, gain, slope, clamp, flip_filter):
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    # lrelu(x) * g == lrelu(g * x) for g > 0: the gain rides on the upsampling filter's taps.
    fold = gain > 0
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up * up * (gain if fold else 1), flip_filter=flip_filter)
    inplace = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu_(x, slope) if inplace else F.leaky_relu(x, slope)
    if not fold:
        x = x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)


def filtered_lrelu_reference(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2,
                             clamp=None, flip_filter=False) -> torch.Tensor:
    """Literal definition of :func:`filtered_lrelu` (zero-stuffed upsampling, full-rate filtering
    before subsampling, separate bias/activation/gain/clamp passes): the executable specification,
    and the official-equivalent baseline in ``benchmarks/``."""
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d_reference(x, fu, up=up, padding=padding, gain=up * up, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d_reference(x, fd, down=down, flip_filter=flip_filter)

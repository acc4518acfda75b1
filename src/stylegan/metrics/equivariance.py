"""Equivariance of StyleGAN3 generators (Karras et al. 2021, Sec. 3 and Appendix E): how closely
moving the input grid (``G.synthesis.input.transform``) moves the image, as a PSNR in dB.

* EQ-T (``eqt50k_int``): integer-pixel translation; the reference is shifted by whole pixels.
* EQ-T_frac (``eqt50k_frac``): sub-pixel translation; the reference is shifted with Lanczos-3
  (windowed sinc) interpolation.
* EQ-R (``eqr50k``): rotation; the reference is rotated with band-limited resampling (a filter
  whose pass band is the intersection of the image's and the rotated image's Nyquist squares,
  applied on a 4x finer grid, then bilinear sampling) and the generated image goes through the
  same band limit without resampling ("pseudo-rotation"), so both carry the same frequencies.

Only pixels whose values are fully defined in both images count (a mask). The MSE is pooled over all
samples and channels; PSNR = 20 log10(2) - 10 log10(MSE) for images in [-1, 1]. No detector is used.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .. import devices
from ..errors import UserInputError
from ..latent.sampling import has_transform, transform_matrix
from ..progress import progress
from .distributed import Shard, batch_seeds, current_shard, sharded_map
from .features import random_labels

LANCZOS_A = 3
#: EQ-R's band-limited rotation: Lanczos-a windows, filter support ±ROTATION_SUPPORT input pixels,
#: built on a ±ROTATION_GRID pixel grid, the reference upsampled ROTATION_UP times before sampling.
ROTATION_SUPPORT = 6
ROTATION_GRID = 64
ROTATION_UP = 4


def translate_integer(x: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift images [N, C, H, W] right by ``dx`` and down by ``dy`` whole pixels:
    ``out[y, x] = in[y - dy, x - dx]``. Returns (shifted, mask [1, 1, H, W]) with mask = 1 where the
    source pixel exists."""
    h, w = x.shape[2], x.shape[3]
    out = torch.zeros_like(x)
    mask = torch.zeros([1, 1, h, w], dtype=x.dtype, device=x.device)
    if abs(dx) >= w or abs(dy) >= h:
        return out, mask
    ys, yd = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    xs, xd = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[:, :, yd, xd] = x[:, :, ys, xs]
    mask[:, :, yd, xd] = 1
    return out, mask


def lanczos(u: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """The Lanczos-a kernel ``sinc(u) sinc(u/a)`` for |u| < a, else 0."""
    return torch.where(u.abs() < a, torch.sinc(u) * torch.sinc(u / a), torch.zeros_like(u))


def _lanczos_shift_matrix(size: int, shift: float, a: int, device,
                          dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """M [size, size] with ``(M @ v)[i] ≈ v(i - shift)`` and which rows use only in-range samples."""
    i = torch.arange(size, dtype=dtype, device=device)
    src = i - shift
    m = lanczos(src[:, None] - i[None, :], a)
    m = m / m.sum(dim=1, keepdim=True).clamp(min=1e-12)
    # NVIDIA's mask: with ix = floor(shift), pixel i counts when samples i - ix - a .. i - ix + a - 1 exist.
    ix = math.floor(shift)
    valid = (i - ix - a >= 0) & (i - ix + a - 1 <= size - 1)
    return m, valid


def translate_fractional(x: torch.Tensor, dx: float, dy: float, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift images [N, C, H, W] right by ``dx`` and down by ``dy`` pixels (any real numbers) with
    separable Lanczos-a interpolation. Returns (shifted, mask [1, 1, H, W])."""
    h, w = x.shape[2], x.shape[3]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    my, vy = _lanczos_shift_matrix(h, dy, a, x.device, dtype)
    mx, vx = _lanczos_shift_matrix(w, dx, a, x.device, dtype)
    out = torch.einsum("yi,ncij,xj->ncyx", my.to(x.dtype), x, mx.to(x.dtype))
    mask = (vy[:, None] & vx[None, :]).to(x.dtype)[None, None]
    return out, mask


def bandlimit_filter(matrix, up: int, a: int = LANCZOS_A, support: int = ROTATION_SUPPORT,
                     grid: int = ROTATION_GRID, device: torch.device | str = "cpu") -> torch.Tensor:
    """The FIR filter [2·support·up − 1]² (taps 1/``up`` pixel apart) that band-limits an image to
    the intersection of its Nyquist square and the square turned by the 2x2 ``matrix``.

    On a grid of offsets ±``grid`` pixels: the product of two separable sincs (cutoff = Nyquist), one
    in the input axes and one in the axes ``matrix`` maps them to, are circularly convolved; so are
    two Lanczos-``a`` windows in the same two axes; the filter is their product, cut to ±``support``
    pixels, and each polyphase component (taps a whole number of pixels apart) is scaled to sum
    1/up² (StyleGAN3 paper, Appendix E; the construction of NVIDIA's EQ-R). float64 on the CPU,
    float32 (as NVIDIA's) on other devices."""
    device = torch.device(device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    x, y, spectra = _filter_grid(up, a, grid, device, dtype)
    m = [[float(v) for v in row] for row in np.asarray(matrix, dtype=np.float64)]
    xo, yo = m[0][0] * x + m[0][1] * y, m[1][0] * x + m[1][1] * y
    band = torch.fft.irfft2(spectra[0] * torch.fft.rfft2(torch.fft.ifftshift(torch.sinc(xo) * torch.sinc(yo))),
                            s=x.shape)
    win = torch.fft.irfft2(spectra[1] * torch.fft.rfft2(torch.fft.ifftshift(_window(xo, a) * _window(yo, a))),
                           s=x.shape)
    n, r = grid * up, support * up - 1
    f = torch.fft.fftshift(band * win)[n - 1 - r:n + r, n - 1 - r:n + r]
    phase = torch.arange(-r, r + 1, device=device) % up
    cls = phase[:, None] * up + phase[None, :]                 # polyphase component of every tap
    sums = torch.zeros(up * up, dtype=dtype, device=device).index_add_(0, cls.flatten(), f.flatten())
    return f / (sums[cls] * up * up)


def _window(u: torch.Tensor, a: int) -> torch.Tensor:
    return torch.where(u.abs() < a, torch.sinc(u / a), torch.zeros_like(u))


@functools.lru_cache(maxsize=8)
def _filter_grid(up: int, a: int, grid: int, device: torch.device, dtype: torch.dtype):
    """The offset grid of :func:`bandlimit_filter` (x along columns) and the spectra of its
    angle-independent halves (input-axis sinc and window), in FFT order."""
    n = grid * up
    t = torch.arange(-(n - 1), n, device=device, dtype=dtype) / up
    y, x = torch.meshgrid(t, t, indexing="ij")
    spectra = (torch.fft.rfft2(torch.fft.ifftshift(torch.sinc(x) * torch.sinc(y))),
               torch.fft.rfft2(torch.fft.ifftshift(_window(x, a) * _window(y, a))))
    return x, y, spectra


def _rotation(angle: float) -> np.ndarray:
    """NVIDIA's ``rotation_matrix(angle)`` (2x2) for ``angle`` in degrees: [[c, s], [-s, c]]."""
    a = math.radians(angle)
    return np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])


def rotate_reference(x: torch.Tensor, angle: float, up: int = ROTATION_UP,
                     max_bytes: int = 1 << 28) -> tuple[torch.Tensor, torch.Tensor]:
    """EQ-R's reference: images [N, C, H, W] rotated by ``angle`` degrees about the centre (the
    direction StyleGAN3's ``transform_matrix(rotate=angle)`` turns the image), in float32.

    The image is upsampled ``up`` times with :func:`bandlimit_filter` (gain up²), sampled
    bilinearly at the rotated pixel centres; a pixel counts (mask) when the nearest upsampled sample
    lies at least one filter length inside the upsampled image (NVIDIA's padded layout). Returns
    (rotated, mask [1, 1, H, W])."""
    n, c, h, w = x.shape
    f = bandlimit_filter(_rotation(angle), up, device=x.device)
    fw = f.shape[0]
    r = fw // 2
    kernel = (f * up * up).to(torch.float32)
    a = math.radians(angle)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing="ij")
    u = math.cos(a) * xx - math.sin(a) * yy + (w - 1) / 2     # source position, input pixels
    v = math.sin(a) * xx + math.cos(a) * yy + (h - 1) / 2
    taps = -(-fw // up)
    hy, wy = up * (h + taps - 1), up * (w + taps - 1)          # upsampled size; sample o at (o - r) / up
    grid = torch.stack([(up * u + r) / (wy - 1) * 2 - 1, (up * v + r) / (hy - 1) * 2 - 1], dim=-1)
    grid = grid.to(x.device, torch.float32)[None]
    maps = x.reshape(n * c, 1, h, w).to(torch.float32)
    out = []
    step = max(1, max_bytes // (hy * wy * 4))
    for i in range(0, n * c, step):
        y = _upsample(maps[i:i + step], kernel, up, taps)
        out.append(torch.nn.functional.grid_sample(y, grid.expand(len(y), -1, -1, -1), mode="bilinear",
                                                   padding_mode="zeros", align_corners=True))
    mask = _reference_mask(u, w, up, fw) & _reference_mask(v, h, up, fw)
    return torch.cat(out).reshape(n, c, h, w), mask.to(x.device, x.dtype)[None, None]


def _upsample(maps: torch.Tensor, kernel: torch.Tensor, up: int, taps: int) -> torch.Tensor:
    """Zero-insertion upsampling by ``up`` followed by a full convolution with ``kernel`` [fw, fw]:
    sample o of the output lies at input position (o - fw // 2) / up. Computed as ``up``² polyphase
    convolutions of ``taps``² (one conv2d) interleaved by ``pixel_shuffle``."""
    fw = kernel.shape[0]
    padded = torch.nn.functional.pad(kernel, [0, up * taps - fw, 0, up * taps - fw])
    phases = padded.reshape(taps, up, taps, up).permute(1, 3, 0, 2).reshape(up * up, 1, taps, taps)
    y = torch.nn.functional.conv2d(maps, phases.flip(2, 3), padding=taps - 1)
    return torch.nn.functional.pixel_shuffle(y, up)


def _reference_mask(pos: torch.Tensor, size: int, up: int, fw: int) -> torch.Tensor:
    """NVIDIA's layout upsamples with ``pos = (m - (fw + up - 1) // 2) / up`` for samples m of an
    array of ``up·size + (fw + up - 1)//2 + (fw - up)//2`` samples (``fw - 1`` of padding); a pixel
    counts when its nearest sample m is at least ``fw`` samples from either end."""
    length = up * size + (fw + up - 1) // 2 + (fw - up) // 2
    m = torch.round(up * pos + (fw + up - 1) // 2)
    return (m >= fw) & (m < length - fw)


def pseudo_rotate(x: torch.Tensor, angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    """EQ-R's treatment of the generated image: the band limit of a rotation by ``angle`` degrees
    (:func:`bandlimit_filter` of the inverse rotation, on the pixel grid) without moving anything.
    Returns (filtered float32, mask [1, 1, H, W] of pixels at least half a filter from the border)."""
    n, c, h, w = x.shape
    f = bandlimit_filter(_rotation(-angle), 1, device=x.device)
    p = f.shape[0] // 2
    out = torch.nn.functional.conv2d(x.reshape(n * c, 1, h, w).to(torch.float32),
                                     f.to(torch.float32)[None, None], padding=p)
    mask = torch.zeros([1, 1, h, w], dtype=x.dtype, device=x.device)
    mask[:, :, p:h - p, p:w - p] = 1
    return out.reshape(n, c, h, w), mask


def psnr(sum_sq: float, count: float) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2) from a pooled squared error."""
    if count <= 0:
        raise ValueError("no valid pixels to compare")
    mse = sum_sq / count
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


def check_model(shape: tuple[int, int], variant: str, has_input_transform: bool, name: str | None = None) -> None:
    """UserInputError unless the model (``variant``, images ``shape = (H, W)``) is a StyleGAN3 one (with an
    input transform) drawing square images: what the metrics are defined on."""
    if not has_input_transform:
        subject = f"{name} needs" if name else "equivariance metrics need"
        raise UserInputError(f"{subject} a StyleGAN3 model (one with an input transform); this is a {variant} model")
    if shape[0] != shape[1]:
        raise UserInputError(f"{name or 'equivariance metrics'}: measured on square models only (this one draws "
                             f"{shape[1]}x{shape[0]})")


def compute_equivariance(G, kind: str, *, num_samples: int = 50_000, batch_size: int = 4, seed: int = 0,
                         translate_max: float = 0.125, rotate_max: float = 180.0,
                         labels: np.ndarray | None = None, name: str | None = None,
                         shard: Shard | None = None) -> dict | None:
    """EQ-T (``kind='int'``), EQ-T_frac (``'frac'``) or EQ-R (``'rot'``) of a StyleGAN3 generator, in dB.

    Whole batches of ``batch_size`` samples (``num_samples`` rounded up), as NVIDIA's; each batch
    shares one random transform: a translation uniform in ±``translate_max`` image widths per axis
    (rounded to whole pixels for ``'int'``), or a rotation uniform in ±``rotate_max`` degrees.
    None outside process 0 of a multi-process run.
    """
    if kind not in ("int", "frac", "rot"):
        raise ValueError(f"unknown equivariance kind {kind!r}; use 'int', 'frac' or 'rot'")
    check_model(G.img_shape, getattr(G.config, "variant", G.generation), has_transform(G), name)
    shard = shard or current_shard()
    buf = G.synthesis.input.transform
    saved = buf.clone()
    run = functools.partial(_equivariance_batch, G, kind, batch_size=batch_size, seed=seed,
                            translate_max=translate_max, rotate_max=rotate_max, labels=labels)
    num_batches = -(-num_samples // batch_size)
    sum_sq = count = 0.0
    try:
        with progress(total=num_batches, desc=name or f"eq-{kind}", unit="batch", disable=not shard.is_main) as bar:
            for part in sharded_map(run, num_batches, shard, dtype=torch.float64):
                sum_sq, count = sum_sq + float(part[0, 0]), count + float(part[0, 1])
                bar.update(1)
    finally:
        buf.copy_(saved)
    return {"psnr": psnr(sum_sq, count)} if shard.is_main else None


def _equivariance_batch(G, kind: str, b: int, *, batch_size: int, seed: int, translate_max: float,
                        rotate_max: float, labels: np.ndarray | None) -> torch.Tensor:
    """Batch ``b``: [[sum of masked squared differences, number of masked values]] (float64)."""
    device = next(G.parameters()).device
    acc = devices.accumulation_dtype(device)
    res = G.img_resolution
    draw_seed, label_seed = batch_seeds(seed, b, 2)
    gen = torch.Generator().manual_seed(draw_seed)
    buf = G.synthesis.input.transform
    z = torch.randn([batch_size, G.z_dim], generator=gen).to(device)
    c = random_labels(G.c_dim, batch_size, np.random.RandomState(label_seed), labels).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c)
        buf.copy_(torch.eye(3))
        ref = G.synthesis(ws, noise_mode="const", force_fp32=True).to(acc)
        if kind == "rot":
            angle = _host_uniform(gen, [], rotate_max)
            buf.copy_(torch.from_numpy(transform_matrix(rotate=angle).astype(np.float32)).to(buf.device))
            img = G.synthesis(ws, noise_mode="const", force_fp32=True)
            ref, ref_mask = rotate_reference(ref, angle)
            img, img_mask = pseudo_rotate(img, angle)
            ref, img, mask = ref.to(acc), img.to(acc), ref_mask * img_mask
        else:
            tx, ty = _host_uniform(gen, [2], translate_max, res if kind == "int" else None)
            buf.copy_(torch.from_numpy(transform_matrix(translate=(tx, ty)).astype(np.float32)).to(buf.device))
            img = G.synthesis(ws, noise_mode="const", force_fp32=True).to(acc)
            if kind == "int":
                ref, mask = translate_integer(ref, round(tx * res), round(ty * res))
            else:
                ref, mask = translate_fractional(ref, tx * res, ty * res)
    sum_sq = float(((img - ref).square() * mask).sum())
    count = float(mask.sum()) * batch_size * img.shape[1]
    return _host_row(sum_sq, count)


def _host_uniform(gen: torch.Generator, shape: list[int], scale: float = 1.0, grid: int | None = None):
    """Uniform draws in [-scale, scale) from the CPU generator ``gen``, in float64 on the host (never on
    the device: MPS has no float64); rounded to multiples of 1/``grid`` when given. [] -> a float,
    [2] -> two floats."""
    t = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
    if grid is not None:
        t = torch.round(t * grid) / grid
    return float(t) if not shape else tuple(t.tolist())


def _host_row(*values: float) -> torch.Tensor:
    """A batch's sums as one float64 row on the host (what :func:`sharded_map` collects)."""
    return torch.tensor([list(values)], dtype=torch.float64)

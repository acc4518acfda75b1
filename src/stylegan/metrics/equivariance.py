"""Equivariance of StyleGAN3 generators (Karras et al. 2021, Sec. 3 and Appendix E): how closely
moving the input grid (``G.synthesis.input.transform``) moves the image, as a PSNR in dB.

* EQ-T (``eqt50k_int``): integer-pixel translation; the reference is shifted by whole pixels.
* EQ-T_frac (``eqt50k_frac``): sub-pixel translation; the reference is shifted with Lanczos-3
  (windowed sinc) interpolation.
* EQ-R (``eqr50k``): rotation; the reference is resampled with a band-limited (radially symmetric,
  Kaiser-windowed jinc) kernel at the rotated positions, and the generated image goes through the
  same kernel without rotation, so both carry the same band limit.

Only pixels whose values are fully defined in both images count (a mask). The MSE is pooled over all
samples and channels; PSNR = 20 log10(2) - 10 log10(MSE) for images in [-1, 1]. No detector is used.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

from ..errors import UserInputError
from ..latent.sampling import has_transform, transform_matrix
from ..progress import progress
from .features import random_labels

LANCZOS_A = 3
#: Band limit of the rotation kernel: a disc of this radius in cycles/pixel (0.5 = Nyquist), and the
#: kernel's support radius and Kaiser beta. Chosen so that resampling at any sub-pixel position
#: differs from resampling on the grid by < -75 dB for every frequency an image can hold.
ROTATION_CUTOFF = 0.32
ROTATION_RADIUS = 8
ROTATION_BETA = 8.0


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


def _lanczos_shift_matrix(size: int, shift: float, a: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """M [size, size] with ``(M @ v)[i] ≈ v(i - shift)`` and which rows use only in-range samples."""
    i = torch.arange(size, dtype=torch.float64, device=device)
    src = i - shift
    m = lanczos(src[:, None] - i[None, :], a)
    m = m / m.sum(dim=1, keepdim=True).clamp(min=1e-12)
    first = torch.floor(src - a) + 1          # taps j with |src - j| < a
    last = torch.ceil(src + a) - 1
    valid = (first >= 0) & (last <= size - 1)
    return m, valid


def translate_fractional(x: torch.Tensor, dx: float, dy: float, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift images [N, C, H, W] right by ``dx`` and down by ``dy`` pixels (any real numbers) with
    separable Lanczos-a interpolation. Returns (shifted, mask [1, 1, H, W])."""
    h, w = x.shape[2], x.shape[3]
    my, vy = _lanczos_shift_matrix(h, dy, a, x.device)
    mx, vx = _lanczos_shift_matrix(w, dx, a, x.device)
    out = torch.einsum("yi,ncij,xj->ncyx", my.to(x.dtype), x, mx.to(x.dtype))
    mask = (vy[:, None] & vx[None, :]).to(x.dtype)[None, None]
    return out, mask


def jinc_kernel(r: torch.Tensor, cutoff: float = ROTATION_CUTOFF, radius: float = ROTATION_RADIUS,
                beta: float = ROTATION_BETA) -> torch.Tensor:
    """Radially symmetric low-pass: the ideal disc filter of radius ``cutoff`` (cycles/pixel),
    ``cutoff * J1(2π cutoff r) / r``, times a Kaiser window of ``radius`` pixels."""
    r = r.to(torch.float64)
    safe = r.clamp(min=1e-9)
    ideal = torch.where(r < 1e-9, torch.full_like(r, math.pi * cutoff ** 2),
                        cutoff * torch.special.bessel_j1(2 * math.pi * cutoff * safe) / safe)
    inside = (1 - (r / radius).square()).clamp(min=0)
    window = torch.special.i0(beta * inside.sqrt()) / torch.special.i0(torch.tensor(beta, dtype=torch.float64))
    return torch.where(r < radius, ideal * window, torch.zeros_like(r))


@functools.lru_cache(maxsize=8)
def _kernel_table(cutoff: float, radius: float, beta: float, size: int = 1 << 14) -> torch.Tensor:
    """:func:`jinc_kernel` sampled finely on [0, radius] (linear interpolation error < 1e-7)."""
    return jinc_kernel(torch.linspace(0, radius, size, dtype=torch.float64), cutoff, radius, beta)


def _kernel_lookup(r: torch.Tensor, table: torch.Tensor, radius: float) -> torch.Tensor:
    pos = (r / radius * (len(table) - 1)).clamp(max=len(table) - 1)
    i = pos.floor().long().clamp(max=len(table) - 2)
    frac = pos - i
    k = table[i] * (1 - frac) + table[i + 1] * frac
    return torch.where(r < radius, k, torch.zeros_like(k))


def rotate_bandlimited(x: torch.Tensor, angle: float, cutoff: float = ROTATION_CUTOFF,
                       radius: int = ROTATION_RADIUS, beta: float = ROTATION_BETA,
                       chunk: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate images [N, C, H, W] by ``angle`` degrees about the image centre (positive = the
    direction StyleGAN3's ``transform_matrix(rotate=angle)`` turns the image), low-passed to a disc
    of radius ``cutoff``: ``out(p) = sum_j in(j) k(|R⁻¹p - j|) / sum_j k(|R⁻¹p - j|)``.
    ``angle = 0`` gives the same low-pass without rotation. Returns (rotated, mask [1, 1, H, W]);
    the mask keeps pixels whose kernel support lies inside the image (values outside it are not
    meaningful)."""
    n, c, h, w = x.shape
    dev = x.device
    table = _kernel_table(float(cutoff), float(radius), float(beta)).to(dev)
    if angle % 360 == 0:
        # On the grid the kernel is the same for every pixel: a plain convolution.
        offs = torch.arange(-radius + 1, radius, dtype=torch.float64, device=dev)
        k = _kernel_lookup(torch.hypot(offs[:, None], offs[None, :]), table, radius)
        k = (k / k.sum()).to(x.dtype)
        out = torch.nn.functional.conv2d(x.reshape(n * c, 1, h, w), k[None, None], padding=radius - 1)
        mask = torch.zeros([1, 1, h, w], dtype=x.dtype, device=dev)
        mask[:, :, radius - 1:h - radius, radius - 1:w - radius] = 1
        return out.reshape(n, c, h, w), mask
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    py, px = torch.meshgrid(torch.arange(h, dtype=torch.float64, device=dev) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float64, device=dev) - (w - 1) / 2, indexing="ij")
    # Source position of every output pixel (inverse rotation), in pixel coordinates.
    qx = (cos * px - sin * py + (w - 1) / 2).reshape(-1)
    qy = (sin * px + cos * py + (h - 1) / 2).reshape(-1)
    bx, by = torch.floor(qx), torch.floor(qy)
    fx, fy = (qx - bx).to(torch.float32), (qy - by).to(torch.float32)
    offs = torch.arange(-radius + 1, radius + 1, device=dev)
    oy, ox = (o.reshape(-1) for o in torch.meshgrid(offs, offs, indexing="ij"))
    mask = ((bx - radius + 1 >= 0) & (bx + radius <= w - 1) & (by - radius + 1 >= 0) & (by + radius <= h - 1))
    base = (by * w + bx).long()
    tap = oy * w + ox
    table32 = table.to(torch.float32)
    flat = x.reshape(n * c, h * w)
    out = torch.empty([n * c, h * w], dtype=x.dtype, device=dev)
    step = max(1, chunk // oy.numel())
    for s in range(0, h * w, step):
        # Taps outside the image only feed pixels outside the mask; clamping keeps the reads valid.
        r = torch.hypot(fx[s:s + step, None] - ox[None], fy[s:s + step, None] - oy[None])
        k = _kernel_lookup(r, table32, radius)
        k = (k / k.sum(dim=1, keepdim=True)).to(x.dtype)
        idx = (base[s:s + step, None] + tap[None]).clamp(0, h * w - 1)
        out[:, s:s + step] = _apply_taps(flat, idx, k)
    return out.reshape(n, c, h, w), mask.reshape(1, 1, h, w).to(x.dtype)


def _apply_taps(flat: torch.Tensor, idx: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``out[:, p] = sum_t flat[:, idx[p, t]] * k[p, t]``: a sparse matrix product where supported."""
    if flat.device.type not in ("cpu", "cuda"):
        return (flat[:, idx] * k[None]).sum(dim=2)
    p, t = idx.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "sparse CSR support is in beta"
        m = torch.sparse_csr_tensor(torch.arange(0, p * t + 1, t, device=flat.device), idx.reshape(-1),
                                    k.reshape(-1), size=(p, flat.shape[1]), check_invariants=False)
        return (m @ flat.T).T


def psnr(sum_sq: float, count: float) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2) from a pooled squared error."""
    if count <= 0:
        raise ValueError("no valid pixels to compare")
    mse = sum_sq / count
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


def compute_equivariance(G, kind: str, *, num_samples: int = 50_000, batch_size: int = 4, seed: int = 0,
                         translate_max: float = 0.125, rotate_max: float = 180.0,
                         labels: np.ndarray | None = None, name: str | None = None) -> dict:
    """EQ-T (``kind='int'``), EQ-T_frac (``'frac'``) or EQ-R (``'rot'``) of a StyleGAN3 generator, in dB.

    Each batch shares one random transform: a translation uniform in ±``translate_max`` (image widths)
    per axis (rounded to whole pixels for ``'int'``), or a rotation uniform in ±``rotate_max`` degrees.
    """
    if kind not in ("int", "frac", "rot"):
        raise ValueError(f"unknown equivariance kind {kind!r}; use 'int', 'frac' or 'rot'")
    if not has_transform(G):
        raise UserInputError(f"{name or 'equivariance metrics'} need a StyleGAN3 model (one with an input "
                             f"transform); this is a {getattr(G.config, 'variant', G.generation)} model")
    device = next(G.parameters()).device
    res = G.img_resolution
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.RandomState(seed)
    buf = G.synthesis.input.transform
    saved = buf.clone()
    sum_sq = count = 0.0
    try:
        for start in progress(range(0, num_samples, batch_size), desc=name or f"eq-{kind}", unit="batch"):
            n = min(batch_size, num_samples - start)
            z = torch.randn([n, G.z_dim], generator=gen).to(device)
            c = random_labels(G.c_dim, n, rng, labels).to(device)
            with torch.no_grad():
                ws = G.mapping(z, c)
                buf.copy_(torch.eye(3))
                ref = G.synthesis(ws, noise_mode="const", force_fp32=True).to(torch.float64)
                if kind == "rot":
                    angle = float((torch.rand([], generator=gen, dtype=torch.float64) * 2 - 1) * rotate_max)
                    buf.copy_(torch.from_numpy(transform_matrix(rotate=angle)).to(buf))
                    img = G.synthesis(ws, noise_mode="const", force_fp32=True).to(torch.float64)
                    ref, ref_mask = rotate_bandlimited(ref, angle)
                    img, img_mask = rotate_bandlimited(img, 0.0)
                    mask = ref_mask * img_mask
                else:
                    t = (torch.rand([2], generator=gen, dtype=torch.float64) * 2 - 1) * translate_max
                    if kind == "int":
                        t = torch.round(t * res) / res
                    tx, ty = float(t[0]), float(t[1])
                    buf.copy_(torch.from_numpy(transform_matrix(translate=(tx, ty))).to(buf))
                    img = G.synthesis(ws, noise_mode="const", force_fp32=True).to(torch.float64)
                    if kind == "int":
                        ref, mask = translate_integer(ref, round(tx * res), round(ty * res))
                    else:
                        ref, mask = translate_fractional(ref, tx * res, ty * res)
            sum_sq += float(((img - ref).square() * mask).sum())
            count += float(mask.sum()) * n * img.shape[1]
    finally:
        buf.copy_(saved)
    return {"psnr": psnr(sum_sq, count)}

"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", Sec. 2-3 and Appendix B).

Every augmentation fires independently per image with probability ``multiplier * p``; all of it
is differentiable, so the generator learns through ``D(augment(G(z)))``. The groups:

* blit: x-flip, 90-degree rotations, integer translation -- exact index remapping (one gather).
* geom: isotropic scale, rotation (before and after), anisotropic scale, fractional translation
  -- composed into one inverse matrix per image and executed once: reflect-pad, 2x low-pass
  upsample, bilinear ``grid_sample``, low-pass 2x downsample (so no aliasing is introduced).
* color: brightness, contrast, luma flip, hue rotation, saturation -- one 4x4 matrix per image.
* filter: random gains of four frequency bands; noise: additive Gaussian; cutout: a zeroed square.

Images that no augmentation touched come out bit-identical, and ``p = 0`` is the identity.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..networks import ops

PRESETS: dict[str, dict[str, float]] = {
    "blit": {"xflip": 1, "rotate90": 1, "xint": 1},
    "geom": {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1},
    "color": {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1},
    "filter": {"imgfilter": 1},
    "noise": {"noise": 1},
    "cutout": {"cutout": 1},
}
PRESETS["bg"] = {**PRESETS["blit"], **PRESETS["geom"]}
PRESETS["bgc"] = {**PRESETS["bg"], **PRESETS["color"]}
PRESETS["bgcf"] = {**PRESETS["bgc"], **PRESETS["filter"]}
PRESETS["bgcfn"] = {**PRESETS["bgcf"], **PRESETS["noise"]}
PRESETS["bgcfnc"] = {**PRESETS["bgcfn"], **PRESETS["cutout"]}

_RESAMPLE_TAPS = 12     # low-pass used around grid_sample (half-band, at the 2x rate)
_BAND_TAPS = 13         # band-split filters of the 'filter' augmentation
_BAND_EDGES = (0.125, 0.25, 0.5)  # band edges, as fractions of the Nyquist frequency


def _lowpass(numtaps: int, cutoff: float, fs: float = 2.0) -> np.ndarray:
    import scipy.signal  # imported here: it costs a second or more at every start
    return scipy.signal.firwin(numtaps, cutoff, fs=fs, window=("kaiser", 6.0)).astype(np.float32)


class AugmentPipe(nn.Module):
    """``images [N, C, H, W] -> augmented images``, probability ``self.p`` (a buffer, saved with D)."""

    def __init__(
        self,
        xflip: float = 0, rotate90: float = 0, xint: float = 0,          # blit multipliers
        scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0,  # geom multipliers
        brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0, saturation: float = 0,
        imgfilter: float = 0, noise: float = 0, cutout: float = 0,
        xint_max: float = 0.125,           # integer translation, fraction of the image size
        scale_std: float = 0.2,            # log2 std of the isotropic scale
        rotate_max: float = 1.0,           # rotation range, fraction of 180 degrees
        aniso_std: float = 0.2,            # log2 std of the anisotropic scale
        xfrac_std: float = 0.125,          # std of the fractional translation, fraction of the size
        brightness_std: float = 0.2,       # std of the added brightness
        contrast_std: float = 0.5,         # log2 std of the contrast factor
        hue_max: float = 1.0,              # hue rotation range, fraction of 180 degrees
        saturation_std: float = 1.0,       # log2 std of the saturation factor
        imgfilter_bands=(1, 1, 1, 1),      # per-band multipliers of the filter augmentation
        imgfilter_std: float = 1.0,        # log2 std of the band gains
        noise_std: float = 0.1,            # std of the noise std
        cutout_size: float = 0.5,          # side of the cutout square, fraction of the size
    ):
        super().__init__()
        self.settings = {k: float(v) if not isinstance(v, (tuple, list)) else [float(x) for x in v]
                         for k, v in locals().items() if k not in ("self", "__class__")}
        for k, v in self.settings.items():
            setattr(self, k, v)
        self.register_buffer("p", torch.zeros([]))
        up = _lowpass(_RESAMPLE_TAPS, 0.5)
        self.register_buffer("resample_filter", torch.from_numpy(up / up.sum()))
        lows = [_lowpass(_BAND_TAPS, edge, fs=2.0) for edge in _BAND_EDGES]
        delta = np.zeros(_BAND_TAPS, np.float32)
        delta[_BAND_TAPS // 2] = 1
        bands = [lows[0], lows[1] - lows[0], lows[2] - lows[1], delta - lows[2]]
        self.register_buffer("band_filters", torch.from_numpy(np.stack(bands)))   # [4, taps], sums to delta
        self._matrix_cache: dict = {}

    @classmethod
    def from_preset(cls, name: str) -> AugmentPipe:
        if name not in PRESETS:
            raise ValueError(f"unknown augmentation preset {name!r}; use one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    @classmethod
    def from_settings(cls, settings: dict) -> AugmentPipe:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})

    def extra_repr(self) -> str:
        on = [k for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                          "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")
              if self.settings[k] > 0]
        return f"ops={on}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"augment expects [N, C, H, W] images, got {tuple(images.shape)}")
        p = float(self.p)
        if p <= 0:
            return images
        images = self._blit(images, p)
        images = self._geom(images, p)
        images = self._color(images, p)
        images = self._filter(images, p)
        images = self._noise_cutout(images, p)
        return images

    def _gate(self, n: int, prob: float, value: torch.Tensor, neutral: float, device) -> torch.Tensor:
        """``value`` where a per-sample coin with probability ``prob`` fires, ``neutral`` elsewhere."""
        fire = torch.rand([n], device=device) < prob
        return torch.where(fire.reshape([n] + [1] * (value.ndim - 1)), value, torch.full_like(value, neutral))

    def _blit(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """x-flip, 90° rotations (square images only: a non-square one would change shape), integer
        translation: exact pixel remapping (no resampling)."""
        if self.xflip <= 0 and self.rotate90 <= 0 and self.xint <= 0:
            return x
        n, c, h, w = x.shape
        dev = x.device
        m = torch.eye(3, device=dev).repeat(n, 1, 1)  # inverse map, centred pixel coordinates
        if self.xflip > 0:
            flip = self._gate(n, self.xflip * p, torch.randint(2, [n], device=dev).float(), 0, dev)
            m = m @ _scale2d(1 - 2 * flip, torch.ones_like(flip))
        if self.rotate90 > 0 and h == w:
            k = self._gate(n, self.rotate90 * p, torch.randint(4, [n], device=dev).float(), 0, dev)
            m = m @ _rotate2d(-k * (math.pi / 2))
        if self.xint > 0:
            t = (torch.rand([n, 2], device=dev) * 2 - 1) * self.xint_max
            t = self._gate(n, self.xint * p, t, 0, dev)
            m = m @ _translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        changed = (m - torch.eye(3, device=dev)).abs().amax(dim=[1, 2]) > 1e-6
        if not changed.any():
            return x
        ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32) - (h - 1) / 2,
                                torch.arange(w, device=dev, dtype=torch.float32) - (w - 1) / 2, indexing="ij")
        coords = torch.stack([xs.flatten(), ys.flatten(), torch.ones(h * w, device=dev)])   # [3, HW]
        src = m @ coords                                                                   # [N, 3, HW]
        sx = _reflect(torch.round(src[:, 0] + (w - 1) / 2).long(), w)
        sy = _reflect(torch.round(src[:, 1] + (h - 1) / 2).long(), h)
        idx = (sy * w + sx).unsqueeze(1).expand(n, c, h * w)
        out = x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w)
        return torch.where(changed.reshape(n, 1, 1, 1), out, x)

    def _geom(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Scale, rotations, anisotropy, fractional translation: one matrix per image, resampled once, band-limited.
        Rotations stay rotations on non-square images; translations are fractions of each side."""
        if self.scale <= 0 and self.rotate <= 0 and self.aniso <= 0 and self.xfrac <= 0:
            return x
        n = x.shape[0]
        dev = x.device
        g = torch.eye(3, device=dev).repeat(n, 1, 1)  # output -> input, normalised coordinates [-1, 1]
        if self.scale > 0:
            s = self._gate(n, self.scale * p, torch.exp2(torch.randn([n], device=dev) * self.scale_std), 1, dev)
            g = g @ _scale2d(1 / s, 1 / s)
        # Rotation is applied twice (around the anisotropic scale); each fires with 1-sqrt(1-p) so
        # that the chance of any rotation is p.
        p_rot = 1 - math.sqrt(max(1 - self.rotate * p, 0)) if self.rotate > 0 else 0
        if self.rotate > 0:
            theta = (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max
            g = g @ _rotate2d(-self._gate(n, p_rot, theta, 0, dev))
        if self.aniso > 0:
            s = self._gate(n, self.aniso * p, torch.exp2(torch.randn([n], device=dev) * self.aniso_std), 1, dev)
            g = g @ _scale2d(1 / s, s)
        if self.rotate > 0:
            theta = (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max
            g = g @ _rotate2d(-self._gate(n, p_rot, theta, 0, dev))
        h, w = x.shape[2:]
        if h != w:       # non-square: scale/rotate in isotropic coordinates (the longer side spans [-1, 1])
            a = torch.diag(torch.tensor([w / max(h, w), h / max(h, w), 1.0], device=dev))
            g = torch.linalg.inv(a) @ g @ a
        if self.xfrac > 0:
            t = self._gate(n, self.xfrac * p, torch.randn([n, 2], device=dev) * self.xfrac_std, 0, dev)
            g = g @ _translate2d(-t[:, 0] * 2, -t[:, 1] * 2)
        changed = (g - torch.eye(3, device=dev)).abs().amax(dim=[1, 2]) > 1e-6
        if not changed.any():
            return x
        sel = changed.nonzero().squeeze(1)
        return x.index_copy(0, sel, self._resample(x.index_select(0, sel), g.index_select(0, sel)))

    def _resample(self, x: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        up_x, down_x, e = self._matrices(w, x.device, x.dtype)
        up_y, down_y, _ = self._matrices(h, x.device, x.dtype)
        up = up_y @ (x @ up_x.t())                           # [N, C, 2H, 2W], band-limited 2x upsample
        ext_w, ext_h = 2 * w + 2 * e, 2 * h + 2 * e          # margin so the downsampler returns H x W
        gx = (2 * (torch.arange(ext_w, device=x.device, dtype=x.dtype) - e) + 1) / (2 * w) - 1
        gy = (2 * (torch.arange(ext_h, device=x.device, dtype=x.dtype) - e) + 1) / (2 * h) - 1
        yy, xx = torch.meshgrid(gy, gx, indexing="ij")
        coords = torch.stack([xx.flatten(), yy.flatten(), torch.ones_like(xx).flatten()])  # [3, P]
        src = (g_inv.to(x.dtype) @ coords)[:, :2].transpose(1, 2).reshape(n, ext_h, ext_w, 2)
        y = F.grid_sample(up, src, mode="bilinear", padding_mode="reflection", align_corners=False)
        return down_y @ (y @ down_x.t())

    def _matrices(self, size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor, int]:
        """1-D resampling as matrices (reflect padding folded in): up [2S, S], down [S, 2S + 2e], e.

        Applying them with two matmuls is far faster than depthwise FIR convolutions, on CPUs and GPUs.
        """
        key = (size, str(device), dtype)
        cached = self._matrix_cache.get(key)
        if cached is not None:
            return cached
        f = self.resample_filter.cpu().to(torch.float64)              # built on the host (MPS has no float64)
        taps = f.numel()
        r = (taps // 2 + 1) // 2                             # source pixels of context the upsampler needs
        padded = _reflect(torch.arange(size + 2 * r) - r, size)
        basis = torch.eye(size, dtype=torch.float64)[padded].t().reshape(size, 1, 1, size + 2 * r)
        p0, p1 = (taps + 1) // 2 - 2 * r, (taps - 2) // 2 - 2 * r
        up = ops.upfirdn2d(basis, f[None] * 2, up=(2, 1), padding=[p0, p1, 0, 0]).reshape(size, 2 * size).t()
        e = (taps - 2) // 2
        basis = torch.eye(2 * size + 2 * e, dtype=torch.float64).reshape(-1, 1, 1, 2 * size + 2 * e)
        down = ops.upfirdn2d(basis, f[None], down=(2, 1)).reshape(2 * size + 2 * e, size).t()
        out = (up.to(device, dtype).contiguous(), down.to(device, dtype).contiguous(), e)
        self._matrix_cache[key] = out
        return out

    def _color(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Brightness, contrast, luma flip, hue, saturation: one 4x4 colour matrix per image."""
        if not any(getattr(self, k) > 0 for k in ("brightness", "contrast", "lumaflip", "hue", "saturation")):
            return x
        n, c = x.shape[:2]
        dev = x.device
        mat = torch.eye(4, device=dev).repeat(n, 1, 1)
        v = torch.tensor([1, 1, 1, 0], device=dev, dtype=torch.float32) / math.sqrt(3)  # luma axis
        vv = torch.outer(v, v)
        if self.brightness > 0:
            b = self._gate(n, self.brightness * p, torch.randn([n], device=dev) * self.brightness_std, 0, dev)
            mat = _translate3d(b, b, b) @ mat
        if self.contrast > 0:
            s = self._gate(n, self.contrast * p, torch.exp2(torch.randn([n], device=dev) * self.contrast_std), 1,
                           dev)
            mat = _scale3d(s, s, s) @ mat
        if self.lumaflip > 0:
            i = self._gate(n, self.lumaflip * p, torch.randint(2, [n], device=dev).float(), 0, dev)
            mat = (torch.eye(4, device=dev) - 2 * vv * i.reshape(n, 1, 1)) @ mat
        if self.hue > 0 and c in (3, 4):
            theta = self._gate(n, self.hue * p, (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.hue_max, 0,
                               dev)
            mat = _rotate3d(v[:3], theta) @ mat
        if self.saturation > 0 and c in (3, 4):
            s = self._gate(n, self.saturation * p,
                           torch.exp2(torch.randn([n], device=dev) * self.saturation_std), 1, dev)
            mat = (vv + (torch.eye(4, device=dev) - vv) * s.reshape(n, 1, 1)) @ mat
        changed = (mat - torch.eye(4, device=dev)).abs().amax(dim=[1, 2]) > 1e-7
        if not changed.any():
            return x
        mat = mat.to(x.dtype)
        h, w = x.shape[2:]
        if c == 1:
            gain = mat[:, :3, :3].sum(dim=2).mean(dim=1)             # grey: r = g = b, average the result
            bias = mat[:, :3, 3].mean(dim=1)
            out = x * gain.reshape(n, 1, 1, 1) + bias.reshape(n, 1, 1, 1)
        else:
            rgb = x[:, :3].reshape(n, 3, h * w)
            rgb = (mat[:, :3, :3] @ rgb + mat[:, :3, 3:]).reshape(n, 3, h, w)
            out = torch.cat([rgb, x[:, 3:]], dim=1) if c > 3 else rgb
        return torch.where(changed.reshape(n, 1, 1, 1), out, x)

    def _filter(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Random gains of four frequency bands, expected power preserved."""
        if self.imgfilter <= 0:
            return x
        n, c, h, w = x.shape
        dev = x.device
        num_bands = self.band_filters.shape[0]
        expected_power = torch.tensor([10.0, 1.0, 1.0, 1.0], device=dev) / 13  # natural images' spectrum
        gains = torch.ones([n, num_bands], device=dev)
        for i, band_mult in enumerate(self.imgfilter_bands):
            t_i = self._gate(n, self.imgfilter * band_mult * p,
                             torch.exp2(torch.randn([n], device=dev) * self.imgfilter_std), 1, dev)
            t = torch.ones([n, num_bands], device=dev)
            t[:, i] = t_i
            t = t / (expected_power * t.square()).sum(dim=1, keepdim=True).sqrt()  # keep the expected power
            gains = gains * t
        changed = (gains - 1).abs().amax(dim=1) > 1e-6
        if not changed.any():
            return x
        kernels = (gains @ self.band_filters.to(gains.dtype)).to(x.dtype)     # [N, taps] 1-D, symmetric
        taps = kernels.shape[1]
        pad = taps // 2
        k = kernels.repeat_interleave(c, dim=0)                               # [N*C, taps]
        # Mirrored indices rather than F.pad(mode="reflect"): the same pixels where a side exceeds the
        # padding, and still defined (mirrored repeatedly) on a short side such as the 2 of an 8x2 image.
        cols = _reflect(torch.arange(-pad, w + pad, device=dev), w)
        rows = _reflect(torch.arange(-pad, h + pad, device=dev), h)
        y = x.reshape(1, n * c, h, w).index_select(3, cols)
        y = F.conv2d(y, k.reshape(n * c, 1, 1, taps), groups=n * c)
        y = y.index_select(2, rows)
        y = F.conv2d(y, k.reshape(n * c, 1, taps, 1), groups=n * c).reshape(n, c, h, w)
        return torch.where(changed.reshape(n, 1, 1, 1), y, x)

    def _noise_cutout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Additive Gaussian noise and cutout."""
        n, _, h, w = x.shape
        dev = x.device
        if self.noise > 0:
            sigma = self._gate(n, self.noise * p, (torch.randn([n], device=dev) * self.noise_std).abs(), 0, dev)
            if (sigma > 0).any():
                x = x + torch.randn_like(x) * sigma.to(x.dtype).reshape(n, 1, 1, 1)
        if self.cutout > 0:
            size = self._gate(n, self.cutout * p, torch.full([n], self.cutout_size, device=dev), 0, dev)
            centre = torch.rand([n, 2], device=dev)
            if (size > 0).any():
                cx = (torch.arange(w, device=dev) + 0.5) / w
                cy = (torch.arange(h, device=dev) + 0.5) / h
                outside_x = ((cx.reshape(1, 1, w) - centre[:, 0].reshape(n, 1, 1)).abs()
                             >= size.reshape(n, 1, 1) / 2)
                outside_y = ((cy.reshape(1, h, 1) - centre[:, 1].reshape(n, 1, 1)).abs()
                             >= size.reshape(n, 1, 1) / 2)
                keep = (outside_x | outside_y).to(x.dtype).unsqueeze(1)
                x = x * keep
        return x


def _reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror indices into ``[0, size)`` without repeating the edge pixel (like ``mode='reflect'``)."""
    if size == 1:
        return torch.zeros_like(i)
    period = 2 * (size - 1)
    i = i.abs() % period
    return torch.where(i >= size, period - i, i)


def _mat3(rows) -> torch.Tensor:
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    o, z = torch.ones_like(sx), torch.zeros_like(sx)
    return _mat3([[sx, z, z], [z, sy, z], [z, z, o]])


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return _mat3([[o, z, tx], [z, o, ty], [z, z, o]])


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    o, z = torch.ones_like(theta), torch.zeros_like(theta)
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat3([[c, -s, z], [s, c, z], [z, z, o]])


def _translate3d(tx, ty, tz) -> torch.Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return _mat3([[o, z, z, tx], [z, o, z, ty], [z, z, o, tz], [z, z, z, o]])


def _scale3d(sx, sy, sz) -> torch.Tensor:
    o, z = torch.ones_like(sx), torch.zeros_like(sx)
    return _mat3([[sx, z, z, z], [z, sy, z, z], [z, z, sz, z], [z, z, z, o]])


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` about the unit ``axis`` (Rodrigues), as 4x4 homogeneous matrices."""
    ax, ay, az = axis[0], axis[1], axis[2]
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    o, z = torch.ones_like(theta), torch.zeros_like(theta)
    return _mat3([
        [ax * ax * cc + c, ax * ay * cc - az * s, ax * az * cc + ay * s, z],
        [ay * ax * cc + az * s, ay * ay * cc + c, ay * az * cc - ax * s, z],
        [az * ax * cc - ay * s, az * ay * cc + ax * s, az * az * cc + c, z],
        [z, z, z, o],
    ])

import math
from unittest import mock

import numpy as np
import pytest
import torch
from support.models import make_tiny_checkpoint, reference_checkpoint

import stylegan.metrics.equivariance as eq
from stylegan.errors import UserInputError
from stylegan.metrics import compute_metric


def _pattern(h=48, w=48, angle=0.0, shift=(0.0, 0.0)):
    """A band-limited test image (sum of low-frequency waves) sampled after shifting it by ``shift``
    pixels and rotating it by ``angle`` degrees about the centre (StyleGAN3's direction)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                          torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing="ij")
    x, y = x - shift[0], y - shift[1]
    a = math.radians(angle)
    u, v = math.cos(a) * x - math.sin(a) * y, math.sin(a) * x + math.cos(a) * y
    img = (0.5 * torch.sin(2 * math.pi * (0.09 * u + 0.05 * v) + 0.3) + 0.3 * torch.cos(2 * math.pi * (-0.04 * u + 0.12 * v))
           + 0.2 * torch.sin(2 * math.pi * 0.15 * u))
    return img[None, None].repeat(1, 3, 1, 1)


def _psnr(a, b, mask):
    return eq.psnr(float(((a - b).square() * mask).sum()), float(mask.sum()) * a.shape[1])


def test_integer_translation_moves_pixels_and_masks_the_uncovered_border():
    x = torch.arange(2 * 3 * 6 * 7, dtype=torch.float64).reshape(2, 3, 6, 7)
    out, mask = eq.translate_integer(x, dx=2, dy=-1)
    assert torch.equal(out[:, :, 0:5, 2:7], x[:, :, 1:6, 0:5])
    assert mask.sum() == 5 * 5 and torch.all(out[:, :, :, :2] == 0)
    same, full = eq.translate_integer(x, 0, 0)
    assert torch.equal(same, x) and _psnr(same, x, full) == math.inf


def test_fractional_translation_is_exact_for_whole_pixels_and_accurate_between_them():
    x = _pattern()
    frac, fmask = eq.translate_fractional(x, 3.0, -2.0)
    whole, _ = eq.translate_integer(x, 3, -2)
    assert torch.allclose(frac * fmask, whole * fmask, atol=1e-12)
    shifted, mask = eq.translate_fractional(x, 2.4, -1.3)
    assert _psnr(shifted, _pattern(shift=(2.4, -1.3)), mask) > 45
    assert _psnr(x, _pattern(shift=(2.4, -1.3)), mask) < 25


def _reference_filter(matrix, up, a=3, support=3, grid=8):
    """docs/metrics.md, EQ-R, written out with direct sums: on offsets k/up, |k| < grid·up, the
    circular convolution of sinc(x)sinc(y) with sinc(x')sinc(y') ((x', y') = matrix (x, y)), times
    that of the Lanczos windows; cut to |k| < support·up; each polyphase class scaled to sum 1/up²."""
    n = grid * up
    k = np.arange(-(n - 1), n)
    size = len(k)
    y, x = np.meshgrid(k / up, k / up, indexing="ij")
    xo, yo = matrix[0][0] * x + matrix[0][1] * y, matrix[1][0] * x + matrix[1][1] * y
    lw = lambda u: np.where(np.abs(u) < a, np.sinc(u / a), 0.0)
    pairs = ((np.sinc(x) * np.sinc(y), np.sinc(xo) * np.sinc(yo)), (lw(x) * lw(y), lw(xo) * lw(yo)))
    r = support * up - 1
    out = np.zeros([2 * r + 1, 2 * r + 1])
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            # (p * q)(o) = sum_m p(m) q(o - m), offsets taken modulo the grid size
            iy = (oy - k[:, None] + n - 1) % size
            ix = (ox - k[None, :] + n - 1) % size
            band, win = (float((p * q[iy, ix]).sum()) for p, q in pairs)
            out[oy + r, ox + r] = band * win
    cls = np.arange(-r, r + 1) % up
    for py in range(up):
        for px in range(up):
            sel = (cls[:, None] == py) & (cls[None, :] == px)
            out[sel] /= out[sel].sum() * up * up
    return out


@pytest.mark.parametrize("up,angle", [(4, 27.0), (1, -140.0)])
def test_the_rotation_filter_is_the_documented_construction(up, angle):
    m = eq._rotation(angle)
    ours = eq.bandlimit_filter(m, up, support=3, grid=8).numpy()
    np.testing.assert_allclose(ours, _reference_filter(m, up), rtol=1e-9, atol=1e-13)
    full = eq.bandlimit_filter(m, up)
    assert full.shape == (47, 47) if up == 4 else (11, 11)
    assert torch.allclose(full, full.flip(0, 1))        # point-symmetric, so convolution = correlation


def test_the_reference_rotation_is_upsampling_then_bilinear_sampling_at_the_rotated_centres():
    rng = np.random.RandomState(0)
    x = rng.randn(1, 1, 26, 22)
    angle, up = 38.0, 4
    ours, mask = eq.rotate_reference(torch.from_numpy(x), angle)
    f = eq.bandlimit_filter(eq._rotation(angle), up).numpy() * up * up
    r = f.shape[0] // 2
    h, w = x.shape[2:]

    def upsampled(sy, sx):   # the upsampled image at (sy/up, sx/up) input pixels, by direct sum
        iy, ix = np.arange(h)[:, None], np.arange(w)[None, :]
        ky, kx = sy - up * iy + r, sx - up * ix + r
        ok = (ky >= 0) & (ky < f.shape[0]) & (kx >= 0) & (kx < f.shape[1])
        return float((x[0, 0] * np.where(ok, f[ky.clip(0, 2 * r), kx.clip(0, 2 * r)], 0)).sum())

    a = np.radians(angle)
    checked = 0
    for i in range(h):
        for j in range(w):
            if not mask[0, 0, i, j]:
                continue
            cx, cy = j - (w - 1) / 2, i - (h - 1) / 2
            u = np.cos(a) * cx - np.sin(a) * cy + (w - 1) / 2       # source, input pixels
            v = np.sin(a) * cx + np.cos(a) * cy + (h - 1) / 2
            sx, sy = int(np.floor(u * up)), int(np.floor(v * up))
            fx, fy = u * up - sx, v * up - sy
            expected = ((1 - fy) * ((1 - fx) * upsampled(sy, sx) + fx * upsampled(sy, sx + 1))
                        + fy * ((1 - fx) * upsampled(sy + 1, sx) + fx * upsampled(sy + 1, sx + 1)))
            assert float(ours[0, 0, i, j]) == pytest.approx(expected, abs=2e-5)
            checked += 1
    # The mask: the nearest 1/up sample at least one filter length (47) inside NVIDIA's padded
    # upsampled image of up·size + 46 samples, whose sample m lies at (m - 25) / up.
    cx, cy = np.meshgrid(np.arange(w) - (w - 1) / 2, np.arange(h) - (h - 1) / 2)
    inside = lambda pos, size: (np.round(up * pos + 25) >= 47) & (np.round(up * pos + 25) < up * size + 46 - 47)
    expected_mask = inside(np.cos(a) * cx - np.sin(a) * cy + (w - 1) / 2, w) & \
        inside(np.sin(a) * cx + np.cos(a) * cy + (h - 1) / 2, h)
    np.testing.assert_array_equal(mask[0, 0].numpy().astype(bool), expected_mask)
    assert checked == expected_mask.sum() > 20


def test_band_limited_rotation_matches_the_rotated_continuous_image():
    x = _pattern()
    for angle in (33.0, -150.0):
        rotated, mask = eq.rotate_reference(x, angle)
        truth, tmask = eq.pseudo_rotate(_pattern(angle=angle), angle)   # the same band limit, no resampling
        assert mask.sum() > 100
        assert _psnr(rotated.double(), truth.double(), mask * tmask) > 55
        wrong, _ = eq.rotate_reference(x, -angle)
        assert _psnr(wrong.double(), truth.double(), mask * tmask) < 20


def test_stylegan3_r_is_rotation_equivariant_and_stylegan3_t_is_not():
    r = make_tiny_checkpoint("stylegan3", variant="r").G_ema
    t = make_tiny_checkpoint("stylegan3", variant="t").G_ema
    eqr_r = eq.compute_equivariance(r, "rot", num_samples=4, seed=1)["psnr"]
    eqr_t = eq.compute_equivariance(t, "rot", num_samples=4, seed=1)["psnr"]
    assert eqr_r > 60 and eqr_t < eqr_r - 25


@pytest.fixture(scope="module")
def sg3t(reference_dir):
    return reference_checkpoint("sg3t").G_ema


def test_stylegan3_is_translation_equivariant_and_a_broken_transform_is_caught(sg3t):
    good = eq.compute_equivariance(sg3t, "int", num_samples=2, batch_size=2)["psnr"]
    with mock.patch.object(eq, "transform_matrix", lambda translate=(0, 0), rotate=0: np.eye(3)):
        broken = eq.compute_equivariance(sg3t, "int", num_samples=2, batch_size=2)["psnr"]
    assert good > 70 and broken < 50


def test_only_stylegan3_r_is_rotation_equivariant(sg3t, reference_dir):
    sg3r = reference_checkpoint("sg3r").G_ema
    r = eq.compute_equivariance(sg3r, "rot", num_samples=2, batch_size=2, seed=1)["psnr"]
    t = eq.compute_equivariance(sg3t, "rot", num_samples=2, batch_size=2, seed=1)["psnr"]
    assert r > 70 and t < r - 25


def test_the_metric_restores_the_models_transform_and_needs_no_detector(sg3t):
    before = torch.tensor([[1.0, 0, 0.1], [0, 1, 0], [0, 0, 1]])
    sg3t.synthesis.input.transform.copy_(before)
    try:
        result = compute_metric("eqt50k_frac", sg3t, num_gen=2)
        assert torch.equal(sg3t.synthesis.input.transform, before)
    finally:
        sg3t.synthesis.input.transform.copy_(torch.eye(3))
    assert result.metric == "eqt2_frac" and result.detector == "none" and result.results["eqt2_frac"] > 60


def test_stylegan2_models_are_refused():
    G = make_tiny_checkpoint("stylegan2").G_ema
    with pytest.raises(UserInputError, match="needs a StyleGAN3 model"):
        compute_metric("eqr50k", G, num_gen=4)

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


def test_band_limited_rotation_matches_the_rotated_continuous_image():
    x = _pattern()
    rotated, mask = eq.rotate_bandlimited(x, 33.0)
    truth, tmask = eq.rotate_bandlimited(_pattern(angle=33.0), 0.0)   # same band limit, no resampling
    assert mask.sum() > 100
    assert _psnr(rotated, truth, mask * tmask) > 60
    assert _psnr(eq.rotate_bandlimited(x, -33.0)[0], truth, mask * tmask) < 30
    quarter, qmask = eq.rotate_bandlimited(x, 90.0)
    filtered, _ = eq.rotate_bandlimited(x, 0.0)
    assert torch.allclose((quarter * qmask)[..., 10:-10, 10:-10],
                          (torch.rot90(filtered, 1, dims=(2, 3)) * qmask)[..., 10:-10, 10:-10], atol=1e-6)


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
    with pytest.raises(UserInputError, match="need a StyleGAN3 model"):
        compute_metric("eqr50k", G, num_gen=4)

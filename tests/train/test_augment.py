"""The ADA pipeline: identity at p=0, exact blits, band-limited geometry, colour invariants, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from stylegan.train.augment import PRESETS, AugmentPipe


def smooth_images(n=4, c=3, size=32, seed=0):
    """Band-limited test images (a few low-frequency sinusoids), so resampling can be exact-ish."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    out = torch.zeros(n, c, size, size)
    for _ in range(3):
        fx, fy = torch.randint(0, 3, [2], generator=g).tolist()
        phase = torch.rand([n, c, 1, 1], generator=g) * 2 * math.pi
        out += torch.sin(2 * math.pi * (fx * xs + fy * ys) / size + phase) / 3
    return out


def pipe(p=1.0, **ops):
    a = AugmentPipe(**ops)
    a.p.fill_(p)
    return a


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_zero_probability_is_the_identity_and_full_probability_is_differentiable(preset):
    x = torch.randn(6, 3, 16, 16)
    a = AugmentPipe.from_preset(preset)
    assert torch.equal(a(x), x)
    a.p.fill_(1.0)
    torch.manual_seed(0)
    xx = x.clone().requires_grad_(True)
    y = a(xx)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(y, x)
    y.square().sum().backward()
    assert torch.isfinite(xx.grad).all() and xx.grad.abs().sum() > 0


def test_blits_are_exact_pixel_permutations():
    torch.manual_seed(1)
    x = torch.randn(16, 3, 8, 8)
    y = pipe(xflip=1)(x)
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(16)]
    assert all(f or torch.equal(y[i], x[i]) for i, f in enumerate(flipped)) and 0 < sum(flipped) < 16
    y = pipe(rotate90=1)(x)
    for i in range(16):
        assert any(torch.equal(y[i], torch.rot90(x[i], k, dims=(1, 2))) for k in range(4))


def test_integer_translation_shifts_pixels_and_reflects_at_the_border():
    torch.manual_seed(3)
    x = torch.randn(32, 1, 16, 16)
    y = pipe(xint=1)(x)
    shifted = 0
    for i in range(32):
        match = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
                 if torch.equal(y[i, :, 2:-2, 2:-2], x[i].roll((dy, dx), dims=(1, 2))[:, 2:-2, 2:-2])]
        assert match, f"sample {i} is not an integer translation"
        shifted += match[0] != (0, 0)
    assert shifted > 16


def test_geometric_translation_and_rotation_match_the_exact_transform():
    a = AugmentPipe(xfrac=1)
    x = smooth_images()
    g = torch.eye(3).repeat(4, 1, 1)
    g[:, 0, 2] = 2 * 1.5 / 32                            # read 1.5 pixels to the right
    y = a._resample(x, g)
    shifted = torch.roll(x, -1, dims=3) * 0.5 + torch.roll(x, -2, dims=3) * 0.5  # crude reference
    err_interp = (y - shifted)[..., 4:-4, 4:-4].abs().max()
    assert err_interp < 0.05
    identity = a._resample(x, torch.eye(3).repeat(4, 1, 1))
    assert (identity - x)[..., 3:-3, 3:-3].abs().max() < 5e-3   # band-limited content passes unchanged
    rot = torch.eye(3).repeat(4, 1, 1)
    rot[:, :2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    y = a._resample(x, rot)
    errors = [(y - torch.rot90(x, k, dims=(2, 3)))[..., 4:-4, 4:-4].abs().max().item() for k in (1, 3)]
    assert min(errors) < 1e-2


def test_scale_fires_with_probability_p_and_leaves_other_images_bit_identical():
    torch.manual_seed(0)
    x = torch.randn(2000, 1, 8, 8)
    y = pipe(p=0.3, scale=1)(x)
    changed = (y != x).flatten(1).any(dim=1).float().mean().item()
    assert abs(changed - 0.3) < 0.05


def test_colour_matrix_keeps_luma_for_hue_and_saturation_and_shifts_for_brightness():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    y = pipe(hue=1, saturation=1)(x)
    assert torch.allclose(y.sum(dim=1), x.sum(dim=1), atol=1e-5)   # rotation/scaling about the luma axis
    assert not torch.allclose(y, x)
    y = pipe(brightness=1)(x)
    offset = (y - x).flatten(1)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)


def test_grey_and_rgba_images():
    torch.manual_seed(0)
    grey = torch.rand(8, 1, 8, 8)
    assert pipe(**PRESETS["bgc"])(grey).shape == grey.shape
    rgba = torch.rand(8, 4, 8, 8)
    y = pipe(**PRESETS["color"])(rgba)
    assert torch.equal(y[:, 3], rgba[:, 3])


def test_filter_bands_sum_to_a_unit_impulse():
    a = AugmentPipe(imgfilter=1)
    total = a.band_filters.sum(dim=0)
    impulse = torch.zeros_like(total)
    impulse[total.numel() // 2] = 1
    assert torch.allclose(total, impulse, atol=1e-6)


def test_settings_round_trip():
    a = AugmentPipe.from_preset("bgcfnc")
    b = AugmentPipe.from_settings(a.settings)
    assert b.settings == a.settings


@pytest.mark.parametrize("shape", [(32, 64), (64, 32)])
def test_non_square_images_keep_their_shape_and_rotations_stay_rotations(shape):
    """A blurred disc in the middle of a non-square image stays a disc under any rotation (it would become
    a tilted ellipse if the rotation ran in coordinates normalised per side); every preset keeps the shape.
    Compared inside the circle that every rotation maps into the image (outside it, the reflected
    padding brings in mirror images of the disc, as it does for square images)."""
    h, w = shape
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    r = xs.hypot(ys)
    disc = torch.sigmoid(6 - r).expand(8, 1, h, w).contiguous()
    inside = r < min(h, w) / 2 - 3
    torch.manual_seed(0)
    y = pipe(rotate=1)(disc)
    assert y.shape == disc.shape
    assert (y - disc)[..., inside].abs().max() < 0.02
    stretched = AugmentPipe(rotate=1)._resample(disc[:1], torch.tensor([[[0.0, -1.0, 0], [1.0, 0, 0], [0, 0, 1]]]))
    assert (stretched - disc[:1])[..., inside].abs().max() > 0.5   # a per-side normalised 90° turn is no rotation
    for preset in ("bgc", "bgcfnc"):
        a = AugmentPipe.from_preset(preset)
        a.p.fill_(1.0)
        x = torch.randn(4, 3, h, w, requires_grad=True)
        out = a(x)
        assert out.shape == x.shape and torch.isfinite(out).all()
        out.square().sum().backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(8, 2), (2, 8), (16, 4)])
def test_filter_works_on_short_sides_and_matches_reflect_padding_elsewhere(shape):
    """The 13-tap filter pads 6 pixels: a side of 2 or 4 (an 8x2 or 16x4 dataset, which the shape checks
    accept) is mirrored repeatedly instead of crashing; on a 16x16 image the result is F.pad's reflection."""
    torch.manual_seed(0)
    full = pipe(**PRESETS["bgcfnc"])
    x = torch.randn(4, 3, *shape, requires_grad=True)
    y = full(x)
    y.square().sum().backward()
    assert y.shape == x.shape and torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    a = pipe(imgfilter=1)
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(1)
    y = a(x)
    torch.manual_seed(1)
    gains = torch.ones(4, a.band_filters.shape[0])
    for i, band_mult in enumerate(a.imgfilter_bands):
        t_i = a._gate(4, a.imgfilter * band_mult * 1.0, torch.exp2(torch.randn([4]) * a.imgfilter_std), 1, "cpu")
        t = torch.ones_like(gains)
        t[:, i] = t_i
        gains = gains * t / (torch.tensor([10.0, 1, 1, 1]) / 13 * t.square()).sum(dim=1, keepdim=True).sqrt()
    k = (gains @ a.band_filters).repeat_interleave(3, dim=0)
    ref = torch.nn.functional.pad(x.reshape(1, 12, 16, 16), [6, 6, 6, 6], mode="reflect")
    ref = torch.nn.functional.conv2d(ref, k.reshape(12, 1, 1, 13), groups=12)
    ref = torch.nn.functional.conv2d(ref, k.reshape(12, 1, 13, 1), groups=12).reshape(4, 3, 16, 16)
    assert torch.allclose(y, ref, atol=1e-5)

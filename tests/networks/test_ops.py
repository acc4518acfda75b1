"""The fast resampling paths compute exactly what the literal definitions say."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from stylegan.networks import ops


def _rand_filter(ndim, taps, gen):
    return torch.rand([taps] * ndim, generator=gen, dtype=torch.float64) + 0.1


@pytest.mark.parametrize("ndim", [1, 2])
def test_upfirdn2d_matches_zero_stuffing_definition(ndim):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 9, 11], generator=gen, dtype=torch.float64)
    for taps, (up, down), pad, flip in itertools.product(
            [1, 2, 4, 7], [(1, 1), (2, 1), (1, 2), (4, 2), (2, 4), (3, 1)],
            [0, 2, -2, [3, 1, 2, 0], [-1, 2, 4, -2], [-3, -5, -4, -1], [5, 3, -6, -6]], [False, True]):
        f = _rand_filter(ndim, taps, gen)  # asymmetric on purpose: flips must be right
        try:
            expected = ops.upfirdn2d_reference(x, f, up, down, pad, flip, gain=3.0)
        except RuntimeError:
            continue  # output would be empty
        for fmt in (torch.contiguous_format, torch.channels_last):
            got = ops.upfirdn2d(x.contiguous(memory_format=fmt), f, up, down, pad, flip, gain=3.0)
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, atol=1e-12), (taps, up, down, pad, flip, fmt)


def test_upfirdn2d_output_size_formula():
    x = torch.zeros([1, 1, 10, 10])
    f = torch.ones([6]) / 6
    y = ops.upfirdn2d(x, f, up=2, down=1, padding=[3, 2, 3, 2])
    assert y.shape[-1] == (10 * 2 + 3 + 2 - 6) // 1 + 1


@pytest.mark.parametrize("k,up,down,flip_weight", [(3, 2, 1, False), (3, 2, 1, True), (1, 2, 1, False),
                                                     (3, 1, 2, True), (1, 1, 2, True), (3, 1, 1, True)])
def test_conv2d_resample_matches_filter_then_convolve(k, up, down, flip_weight):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([2, 4, 8, 8], generator=gen, dtype=torch.float64)
    w = torch.randn([5, 4, k, k], generator=gen, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    pad = k // 2
    got = ops.conv2d_resample(x, w, f=f, up=up, down=down, padding=pad, flip_weight=flip_weight)
    # Definition: FIR resample (with the padding the layer needs), then a valid convolution.
    wc = w if flip_weight else w.flip([2, 3])
    fw = 4
    if up > 1:
        p = [pad + (fw + up - 1) // 2, pad + (fw - up) // 2] * 2
        p = [p[0], p[1], p[0], p[1]]
        ref = F.conv2d(ops.upfirdn2d_reference(x, f, up=up, padding=p, gain=up * up), wc)
    elif down > 1:
        p = [pad + (fw - down + 1) // 2, pad + (fw - down) // 2]
        p = [p[0], p[1], p[0], p[1]]
        ref = F.conv2d(ops.upfirdn2d_reference(x, f, padding=p), wc, stride=down)
    else:
        ref = F.conv2d(x, wc, padding=pad)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-10)


def test_filtered_lrelu_matches_definition():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([2, 3, 12, 12], generator=gen, dtype=torch.float64) * 3
    b = torch.randn([3], generator=gen, dtype=torch.float64)
    fu = _rand_filter(1, 12, gen)
    fd = _rand_filter(2, 12, gen)
    got = ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[5, 4, 5, 4], gain=1.4, slope=0.2, clamp=2.0)
    y = ops.upfirdn2d_reference(x + b.reshape(1, -1, 1, 1), fu, up=2, padding=[5, 4, 5, 4], gain=4)
    y = (F.leaky_relu(y, 0.2) * 1.4).clamp(-2, 2)
    ref = ops.upfirdn2d_reference(y, fd, down=2)
    assert torch.allclose(got, ref, atol=1e-10)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_filtered_lrelu_in_channel_chunks_matches_definition(monkeypatch, fmt):
    """CPU inference splits the channels into chunks (here 16 + 16 + 8): same numbers, same layout."""
    monkeypatch.setattr(ops, "CPU_CHUNK_BYTES", 1)
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn([1, 40, 10, 10], generator=gen) * 3).contiguous(memory_format=fmt)
    b = torch.randn([40], generator=gen)
    fu = _rand_filter(1, 8, gen).float()
    fd = _rand_filter(2, 8, gen).float()
    with torch.inference_mode():
        got = ops.filtered_lrelu(x, fu, fd, b, up=4, down=2, padding=[-1, -2, -1, -2], clamp=3.0)
    ref = ops.filtered_lrelu_reference(x, fu, fd, b, up=4, down=2, padding=[-1, -2, -1, -2], clamp=3.0)
    assert got.shape == ref.shape
    assert got.is_contiguous(memory_format=fmt)
    assert torch.allclose(got, ref, atol=1e-5)


def test_bias_act_order_is_bias_activation_gain_clamp():
    x = torch.tensor([[-2.0, 0.5, 3.0]]).T.reshape(1, 3, 1, 1)
    y = ops.bias_act(x, torch.tensor([1.0, 0.0, 0.0]), act="lrelu", gain=2.0, clamp=5.0)
    assert torch.allclose(y.flatten(), torch.tensor([-0.4, 1.0, 5.0]))
    with pytest.raises(ValueError, match="unknown activation"):
        ops.bias_act(x, act="gelu2")


def test_setup_filter_matches_the_official_buffer():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4)
    assert torch.allclose(f[0], torch.tensor([0.015625, 0.046875, 0.046875, 0.015625]))
